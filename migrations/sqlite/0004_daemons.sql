-- One heartbeat row per daemon: the write probe of /readyz and the systemd
-- watchdog upserts it (docs/operations.md), which also shows operators the
-- daemons sharing a database. Timestamps as in 0001 (fixed-width RFC 3339).

CREATE TABLE daemons (
    id           TEXT PRIMARY KEY NOT NULL CHECK (length(id) > 0),
    hostname     TEXT NOT NULL,
    pid          INTEGER NOT NULL CHECK (pid > 0),
    version      TEXT NOT NULL,
    started_at   TEXT NOT NULL CHECK (started_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'),
    last_seen_at TEXT NOT NULL CHECK (last_seen_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z')
) STRICT;

CREATE INDEX daemons_last_seen ON daemons (last_seen_at);
