-- Faults are attributed: which plugin an export's daemon was calling, and
-- every fault of a plugin by user, so that quarantine is one decision shared
-- by every daemon and the CLI (docs/operations.md, "Quarantine").
--
-- exports.in_plugin: the plugins (comma-separated table names) an export is
-- calling into while its lease is held; NULL outside those calls. When the
-- lease runs out with it set, the daemon died inside those plugins.
-- exports.died_in: what in_plugin was when a previous attempt's daemon died;
-- a second death inside the same plugins fails the export naming them.

ALTER TABLE exports ADD COLUMN in_plugin TEXT;
ALTER TABLE exports ADD COLUMN died_in TEXT;

-- One row per fault: a worker crash, timeout, protocol fault or exit, or a
-- daemon that died twice inside the plugin on one export. Only the daemons'
-- own role touches it (the admin scope); the user-scoped role gets no grant.
-- Rows older than a day (or the plugin's window) are deleted as new faults
-- arrive.
CREATE TABLE plugin_faults (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plugin     TEXT NOT NULL CHECK (plugin <> ''),
    -- The library's SHA-256 when known: a new library starts afresh.
    sha256     TEXT,
    user_id    TEXT NOT NULL CHECK (user_id <> ''),
    cause      TEXT NOT NULL CHECK (cause <> ''),
    message    TEXT NOT NULL,
    export_id  TEXT,
    at         TIMESTAMPTZ NOT NULL
);

-- The quarantine questions: a plugin's faults in a window, by user.
CREATE INDEX plugin_faults_plugin_at ON plugin_faults (plugin, at);
CREATE INDEX plugin_faults_plugin_user_at ON plugin_faults (plugin, user_id, at);
