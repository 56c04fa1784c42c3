-- The example schema the sql plugin's presets query (examples/sql/presets.toml),
-- PostgreSQL flavour: the same tables and columns as schema.sqlite.sql, with
-- timestamptz times and jsonb documents. Fill a database with the seeded data:
--   cargo run --release -p export-sql --bin make-example-db -- postgres://postgres@127.0.0.1:5432/example
-- Costs are whole millionths of a US dollar, so sums are exact.

CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL UNIQUE,
    plan        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);

-- One visit to a page with the embedded chat widget; its conversations
-- point at it.
CREATE TABLE widget_sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    widget_id   TEXT NOT NULL,
    origin      TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    ended_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX widget_sessions_by_user ON widget_sessions (user_id, started_at);

CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    title       TEXT NOT NULL,
    model       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    metadata    JSONB NOT NULL,
    -- Set when the conversation came from a chat widget embedded in a page.
    widget_session_id  TEXT REFERENCES widget_sessions (id)
);
CREATE INDEX conversations_by_user ON conversations (user_id, created_at);
CREATE INDEX conversations_by_widget_session ON conversations (widget_session_id);

CREATE TABLE messages (
    id               TEXT PRIMARY KEY,
    conversation_id  TEXT NOT NULL REFERENCES conversations (id),
    role             TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content          TEXT NOT NULL,
    -- Set on assistant messages only.
    model            TEXT,
    input_tokens     INTEGER,
    output_tokens    INTEGER,
    latency_ms       INTEGER,
    cost_micros      INTEGER,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX messages_by_conversation ON messages (conversation_id, created_at);

CREATE TABLE analytics_events (
    id               BIGINT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id),
    conversation_id  TEXT REFERENCES conversations (id),
    message_id       TEXT REFERENCES messages (id),
    -- llm.completion | llm.error (a failed call) | conversation.created | feedback
    event_type       TEXT NOT NULL,
    model            TEXT,
    provider         TEXT,
    input_tokens     INTEGER,
    output_tokens    INTEGER,
    latency_ms       INTEGER,
    cost_micros      INTEGER,
    properties       JSONB NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    -- llm.error only: rate_limit | timeout | server_error | context_length
    error_type       TEXT
);
CREATE INDEX analytics_events_by_time ON analytics_events (event_type, created_at);

-- A thumbs up (1) or down (-1) on an assistant message, by the
-- conversation's user.
CREATE TABLE message_feedback (
    id          BIGINT PRIMARY KEY,
    message_id  TEXT NOT NULL REFERENCES messages (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    rating      INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    comment     TEXT,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX message_feedback_by_time ON message_feedback (created_at);

CREATE TABLE trace_spans (
    trace_id         TEXT NOT NULL,
    span_id          TEXT PRIMARY KEY,
    parent_span_id   TEXT,
    name             TEXT NOT NULL,
    -- server | client | internal
    kind             TEXT NOT NULL,
    start_time       TIMESTAMPTZ NOT NULL,
    end_time         TIMESTAMPTZ NOT NULL,
    -- ok | error
    status           TEXT NOT NULL,
    status_message   TEXT,
    model            TEXT,
    provider         TEXT,
    input_tokens     INTEGER,
    output_tokens    INTEGER,
    cost_micros      INTEGER,
    input            TEXT,
    output           TEXT,
    error            TEXT,
    user_id          TEXT,
    session_id       TEXT,
    conversation_id  TEXT,
    tags             JSONB NOT NULL,
    metadata         JSONB NOT NULL,
    service_name     TEXT NOT NULL,
    environment      TEXT NOT NULL,
    version          TEXT NOT NULL,
    level            TEXT NOT NULL
);
CREATE INDEX trace_spans_by_start ON trace_spans (start_time);
CREATE INDEX trace_spans_by_trace ON trace_spans (trace_id);

CREATE TABLE trace_events (
    id          BIGINT PRIMARY KEY,
    span_id     TEXT NOT NULL REFERENCES trace_spans (span_id),
    name        TEXT NOT NULL,
    time        TIMESTAMPTZ NOT NULL,
    attributes  JSONB NOT NULL
);
CREATE INDEX trace_events_by_span ON trace_events (span_id);
