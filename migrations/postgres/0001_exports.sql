-- The exports table (SPEC section 6), PostgreSQL flavour: TIMESTAMPTZ, JSONB,
-- a GIN index on selector, an updated_at trigger and row-level security.

CREATE TABLE exports (
    id                 TEXT PRIMARY KEY CHECK (id ~ '^exp_[0-9a-f]{32}$'),
    user_id            TEXT NOT NULL CHECK (user_id <> ''),
    loader             TEXT NOT NULL,
    format             TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'processing', 'completed', 'expired', 'failed', 'cancelled')),
    selector           JSONB NOT NULL DEFAULT '{}',
    options            JSONB NOT NULL DEFAULT '{}',
    metadata           JSONB NOT NULL DEFAULT '{}',
    file_name          TEXT,
    storage_key        TEXT,
    mime_type          TEXT,
    size_bytes         BIGINT CHECK (size_bytes >= 0),
    row_count          BIGINT CHECK (row_count >= 0),
    sha256             TEXT,
    error              TEXT,
    attempts           INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    lease_owner        TEXT,
    lease_expires_at   TIMESTAMPTZ,
    download_count     BIGINT NOT NULL DEFAULT 0 CHECK (download_count >= 0),
    last_downloaded_at TIMESTAMPTZ,
    request_hash       TEXT,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at         TIMESTAMPTZ,
    completed_at       TIMESTAMPTZ,
    expires_at         TIMESTAMPTZ,

    -- A completed export always points at its file, and a claimed one always
    -- has an owner and a deadline: the queue and cleanup rely on both.
    CONSTRAINT exports_completed_has_file CHECK (status <> 'completed' OR storage_key IS NOT NULL),
    CONSTRAINT exports_processing_has_lease
        CHECK (status <> 'processing' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
);

-- A user's list, newest first, optionally by status; the (created_at, id)
-- suffix is the pagination cursor. Also serves count_active (user, status).
CREATE INDEX exports_user_created ON exports (user_id, created_at DESC, id DESC);
CREATE INDEX exports_user_status_created ON exports (user_id, status, created_at DESC, id DESC);
-- The admin list (every user), optionally by status.
CREATE INDEX exports_created ON exports (created_at DESC, id DESC);
CREATE INDEX exports_status_created ON exports (status, created_at DESC, id DESC);
-- The queue: the oldest pending export first (claimed with FOR UPDATE SKIP LOCKED).
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
-- Containment queries on the selector (selector @> '{"path": "..."}').
CREATE INDEX exports_selector ON exports USING GIN (selector);

-- updated_at follows every change, even one made by hand or by a writer
-- that forgot it. The host sets updated_at itself, from the clock it is
-- given (tests control it, and the purge horizon is computed from it), so
-- the trigger must tell "the UPDATE set updated_at" (keep that value, even
-- if it equals the old one) from "it did not" (stamp now()). Only a column
-- trigger (`UPDATE OF updated_at`) can see that, so it notes it for the row
-- in a transaction-local flag and the stamping trigger, which runs right
-- after it (same-event triggers fire in name order), reads and clears it.
CREATE FUNCTION exports_note_updated_at_given() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('export_host.updated_at_given', 'on', true);
    RETURN NEW;
END
$$;

CREATE FUNCTION exports_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('export_host.updated_at_given', true) = 'on' THEN
        PERFORM set_config('export_host.updated_at_given', 'off', true);
    ELSE
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER exports_10_updated_at_given
    BEFORE UPDATE OF updated_at ON exports
    FOR EACH ROW EXECUTE FUNCTION exports_note_updated_at_given();

CREATE TRIGGER exports_20_touch_updated_at
    BEFORE UPDATE ON exports
    FOR EACH ROW EXECUTE FUNCTION exports_touch_updated_at();

-- Row-level security, defence in depth behind the host's own user filters.
--
-- Superusers and roles with BYPASSRLS skip every policy, and FORCE is what
-- makes the table owner obey them, so a user-scoped transaction does
-- `SET LOCAL ROLE export_host_user` (this NOLOGIN role) and sets
-- export_host.user_id; the policy then hides every other user's rows even
-- from a query that forgot its user filter. Admin and maintenance paths
-- (queue, lease sweep, cleanup, admin list) stay in the connecting role and
-- set export_host.maintenance = 'on' for their transaction: an explicit
-- bypass. A connection that sets neither sees no rows at all (unless it is a
-- superuser, which PostgreSQL never restricts).
--
-- Roles are cluster-wide while migrations run per database, and many
-- databases may migrate at once (parallel tests, several daemons): creating
-- the role tolerates it already existing or being created concurrently.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'export_host_user') THEN
        BEGIN
            CREATE ROLE export_host_user NOLOGIN;
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL; -- another migration created it first
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'export-host needs the role export_host_user and the migrating role % may not create roles', current_user
                    USING HINT = format('as a superuser run: CREATE ROLE export_host_user NOLOGIN; GRANT export_host_user TO %I; then run export-host migrate again', current_user);
        END;
    END IF;
END
$$;

-- The connecting role must be allowed to SET ROLE export_host_user.
-- Superusers already are; an ordinary application role is granted membership
-- (it created the role, or an administrator did as the hint above says).
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'export_host_user', 'MEMBER') THEN
        BEGIN
            EXECUTE format('GRANT export_host_user TO %I', current_user);
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL;
            WHEN insufficient_privilege THEN
                RAISE EXCEPTION 'the role % must be a member of export_host_user', current_user
                    USING HINT = format('as a superuser run: GRANT export_host_user TO %I; then run export-host migrate again', current_user);
        END;
    END IF;
END
$$;

-- The table may live outside the public schema; the scoped role needs to
-- reach it. Only the schema's owner may grant this, and in the default public
-- schema everyone already has USAGE, so a refusal is not fatal.
DO $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO export_host_user', current_schema());
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'could not grant USAGE on schema % to export_host_user; make sure it has it', current_schema();
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON exports TO export_host_user;

ALTER TABLE exports ENABLE ROW LEVEL SECURITY;
ALTER TABLE exports FORCE ROW LEVEL SECURITY;

-- A user-scoped transaction sees and writes only its user's rows. The `true`
-- makes current_setting return NULL when unset, so an unset user matches
-- nothing instead of raising.
CREATE POLICY exports_user_isolation ON exports
    FOR ALL
    TO export_host_user
    USING (user_id = current_setting('export_host.user_id', true))
    WITH CHECK (user_id = current_setting('export_host.user_id', true));

-- The explicit maintenance bypass for the owner (FORCE applies policies to it
-- too). export_host_user never gets it, whatever it sets.
CREATE POLICY exports_maintenance ON exports
    FOR ALL
    TO PUBLIC
    USING (current_user <> 'export_host_user'
           AND current_setting('export_host.maintenance', true) = 'on')
    WITH CHECK (current_user <> 'export_host_user'
                AND current_setting('export_host.maintenance', true) = 'on');
