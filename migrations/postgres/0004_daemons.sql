-- One heartbeat row per daemon: the write probe of /readyz and the systemd
-- watchdog upserts it (docs/operations.md), which also shows operators the
-- daemons sharing this database. Only the daemons' own role touches it (the
-- admin scope); the user-scoped role gets no grant.

CREATE TABLE daemons (
    id           TEXT PRIMARY KEY CHECK (id <> ''),
    hostname     TEXT NOT NULL,
    pid          BIGINT NOT NULL CHECK (pid > 0),
    version      TEXT NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX daemons_last_seen ON daemons (last_seen_at);
