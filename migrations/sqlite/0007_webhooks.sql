-- Webhooks: where an export's end is announced and how far that delivery
-- has come (docs/operations.md, "Webhooks"). The state lives on the export
-- row so every record read shows it and a restarted daemon, or another
-- daemon on the same database, picks up where the last attempt stopped.
--
-- webhook_next_attempt_at NULL means "as soon as the export ends";
-- webhook_claim and webhook_claim_until mark the attempt in flight (a
-- daemon killed mid-attempt leaves a claim that runs out, and the attempt is
-- made again); webhook_ended_at is when the export ended, fixed at the first
-- attempt, from which the retry window is counted.
ALTER TABLE exports ADD COLUMN callback_url TEXT;
ALTER TABLE exports ADD COLUMN webhook_attempts INTEGER NOT NULL DEFAULT 0 CHECK (webhook_attempts >= 0);
ALTER TABLE exports ADD COLUMN webhook_last_status INTEGER;
ALTER TABLE exports ADD COLUMN webhook_delivered_at TEXT CHECK (webhook_delivered_at IS NULL OR webhook_delivered_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z');
ALTER TABLE exports ADD COLUMN webhook_next_attempt_at TEXT CHECK (webhook_next_attempt_at IS NULL OR webhook_next_attempt_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z');
ALTER TABLE exports ADD COLUMN webhook_gave_up_at TEXT CHECK (webhook_gave_up_at IS NULL OR webhook_gave_up_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z');
ALTER TABLE exports ADD COLUMN webhook_ended_at TEXT CHECK (webhook_ended_at IS NULL OR webhook_ended_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z');
ALTER TABLE exports ADD COLUMN webhook_claim TEXT;
ALTER TABLE exports ADD COLUMN webhook_claim_until TEXT CHECK (webhook_claim_until IS NULL OR webhook_claim_until GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z');

-- The deliveries still owed: the delivery loop's scan stays within them.
CREATE INDEX exports_webhooks_owed ON exports (webhook_next_attempt_at)
    WHERE callback_url IS NOT NULL AND webhook_delivered_at IS NULL AND webhook_gave_up_at IS NULL;
