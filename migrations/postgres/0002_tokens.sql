-- API tokens (SPEC section 7). Only the SHA-256 (hex) of a token is kept; the
-- token itself is shown once, when it is created. The table is read and
-- written by the host's maintenance path only (never under the scoped role),
-- so it has no row-level security.

CREATE TABLE tokens (
    id            TEXT PRIMARY KEY CHECK (length(id) > 0),
    user_id       TEXT NOT NULL CHECK (length(user_id) > 0),
    token_hash    TEXT NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    admin         BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMPTZ NOT NULL,
    revoked_at    TIMESTAMPTZ,
    last_used_at  TIMESTAMPTZ
);

CREATE INDEX tokens_user ON tokens (user_id, created_at);
