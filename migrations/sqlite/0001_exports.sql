-- The exports table (SPEC section 6), SQLite flavour.
--
-- Timestamps are TEXT in one fixed shape, RFC 3339 UTC with exactly six
-- fractional digits (2024-05-01T10:00:00.000000Z). Only a fixed width makes
-- text order equal time order, which every range query and index below relies
-- on; the CHECKs refuse any other shape (sqlx's own DateTime encoding varies
-- the number of digits, so the host binds its own `Ts` type instead).
-- JSON columns are TEXT checked with json_valid. STRICT makes SQLite refuse
-- values of the wrong type instead of silently storing them.
--
-- PRAGMAs (WAL, busy_timeout, foreign_keys) are connection settings applied by
-- the host when it connects, not here: WAL cannot be switched on inside the
-- transaction a migration runs in.

CREATE TABLE exports (
    id                 TEXT PRIMARY KEY NOT NULL
                       CHECK (length(id) = 36 AND id GLOB 'exp_*' AND substr(id, 5) NOT GLOB '*[^0-9a-f]*'),
    user_id            TEXT NOT NULL CHECK (length(user_id) > 0),
    loader             TEXT NOT NULL,
    format             TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'processing', 'completed', 'expired', 'failed', 'cancelled')),
    selector           TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(selector)),
    options            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(options)),
    metadata           TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(metadata)),
    file_name          TEXT,
    storage_key        TEXT,
    mime_type          TEXT,
    size_bytes         INTEGER CHECK (size_bytes >= 0),
    row_count          INTEGER CHECK (row_count >= 0),
    sha256             TEXT,
    error              TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_owner        TEXT,
    lease_expires_at   TEXT CHECK (lease_expires_at IS NULL OR lease_expires_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    download_count     INTEGER NOT NULL DEFAULT 0 CHECK (download_count >= 0),
    last_downloaded_at TEXT CHECK (last_downloaded_at IS NULL OR last_downloaded_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    request_hash       TEXT,
    created_at         TEXT NOT NULL CHECK (created_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    updated_at         TEXT NOT NULL CHECK (updated_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    started_at         TEXT CHECK (started_at IS NULL OR started_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    completed_at       TEXT CHECK (completed_at IS NULL OR completed_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    expires_at         TEXT CHECK (expires_at IS NULL OR expires_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),

    -- A completed export always points at its file, and a claimed one always
    -- has an owner and a deadline: the queue and cleanup rely on both.
    CHECK (status <> 'completed' OR storage_key IS NOT NULL),
    CHECK (status <> 'processing' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
) STRICT;

-- A user's list, newest first, optionally by status; the (created_at, id)
-- suffix is the pagination cursor. Also serves count_active (user, status).
CREATE INDEX exports_user_created ON exports (user_id, created_at DESC, id DESC);
CREATE INDEX exports_user_status_created ON exports (user_id, status, created_at DESC, id DESC);
-- The admin list (every user), optionally by status.
CREATE INDEX exports_created ON exports (created_at DESC, id DESC);
CREATE INDEX exports_status_created ON exports (status, created_at DESC, id DESC);
-- The queue: the oldest pending export first.
CREATE INDEX exports_queue ON exports (created_at, id) WHERE status = 'pending';
-- Lease sweep: claimed exports whose lease ran out.
CREATE INDEX exports_leases ON exports (lease_expires_at) WHERE status = 'processing';
-- Cleanup: completed exports past expires_at; purge of finished records by age.
CREATE INDEX exports_status_expires ON exports (status, expires_at);
CREATE INDEX exports_status_updated ON exports (status, updated_at);
-- Dedupe: the newest export of a user with the same request hash.
CREATE INDEX exports_dedupe ON exports (user_id, request_hash, created_at DESC) WHERE request_hash IS NOT NULL;
-- Orphan-file cleanup asks whether a key is live; keys are host-made and one
-- file belongs to one export, so uniqueness is also an integrity check.
CREATE UNIQUE INDEX exports_storage_key ON exports (storage_key) WHERE storage_key IS NOT NULL;
