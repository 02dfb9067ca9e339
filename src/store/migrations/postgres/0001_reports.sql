-- 0001 (PostgreSQL): the same tables as the SQLite 0001 — reports with their archives, marks
-- on groups, login failures, console sessions. Times are UTC milliseconds since 1970, text
-- compares byte-wise (COLLATE "C") so that both stores sort alike.

CREATE TABLE reports (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at       BIGINT NOT NULL,
    group_key         TEXT COLLATE "C" NOT NULL,
    client_addr       TEXT,
    report_time       TEXT,
    report_uuid       TEXT,
    user_name         TEXT COLLATE "C",
    client_id         TEXT COLLATE "C",
    os_version        TEXT,
    app_name          TEXT,
    app_version       TEXT COLLATE "C",
    platform_type     TEXT,
    config_name       TEXT COLLATE "C",
    config_version    TEXT COLLATE "C",
    error_text        TEXT,
    user_description  TEXT,
    app_stack_hash    TEXT,
    client_stack_hash TEXT,
    server_stack_hash TEXT,
    screenshot        TEXT,
    -- the whole report.json, unknown fields kept (as text: byte-for-byte what SQLite keeps)
    report_json       TEXT NOT NULL,
    -- JSON array of {"name": …, "size": …}
    files             TEXT NOT NULL,
    archive_size      BIGINT NOT NULL
);
CREATE INDEX reports_by_group ON reports (group_key, received_at);
CREATE INDEX reports_by_time ON reports (received_at);

-- The archive exactly as the client sent it, apart from the row so that lists never read it.
CREATE TABLE archives (
    report_id BIGINT PRIMARY KEY REFERENCES reports (id) ON DELETE CASCADE,
    bytes     BYTEA NOT NULL
);
ALTER TABLE archives ALTER COLUMN bytes SET STORAGE EXTERNAL;

CREATE TABLE marks (
    group_key TEXT COLLATE "C" PRIMARY KEY,
    state     TEXT NOT NULL CHECK (state IN ('known', 'fixed')),
    note      TEXT NOT NULL,
    set_by    TEXT NOT NULL,
    set_at    BIGINT NOT NULL
);

CREATE TABLE login_failures (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    client_addr TEXT,
    user_agent  TEXT,
    body        BYTEA NOT NULL,
    base        TEXT
);
CREATE INDEX login_failures_by_time ON login_failures (at);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
