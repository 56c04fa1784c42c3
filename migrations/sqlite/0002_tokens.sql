-- API tokens (SPEC section 7). Only the SHA-256 (hex) of a token is kept; the
-- token itself is shown once, when it is created. Timestamps use the same
-- fixed-width RFC 3339 text as the exports table.

CREATE TABLE tokens (
    id            TEXT PRIMARY KEY NOT NULL CHECK (length(id) > 0),
    user_id       TEXT NOT NULL CHECK (length(user_id) > 0),
    token_hash    TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    admin         INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
    created_at    TEXT NOT NULL,
    revoked_at    TEXT,
    last_used_at  TEXT
) STRICT;

CREATE INDEX tokens_user ON tokens (user_id, created_at);
