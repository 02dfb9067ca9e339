-- 0001: reports with their archives, marks on groups, login failures, console sessions.
-- Times are UTC milliseconds since 1970.

CREATE TABLE reports (
    id                INTEGER PRIMARY KEY,
    received_at       INTEGER NOT NULL,
    group_key         TEXT NOT NULL,
    client_addr       TEXT,
    report_time       TEXT,
    report_uuid       TEXT,
    user_name         TEXT,
    client_id         TEXT,
    os_version        TEXT,
    app_name          TEXT,
    app_version       TEXT,
    platform_type     TEXT,
    config_name       TEXT,
    config_version    TEXT,
    error_text        TEXT,
    user_description  TEXT,
    app_stack_hash    TEXT,
    client_stack_hash TEXT,
    server_stack_hash TEXT,
    screenshot        TEXT,
    -- the whole report.json, unknown fields kept
    report_json       TEXT NOT NULL,
    -- JSON array of {"name": …, "size": …}
    files             TEXT NOT NULL,
    archive_size      INTEGER NOT NULL
);
CREATE INDEX reports_by_group ON reports (group_key, received_at);
CREATE INDEX reports_by_time ON reports (received_at);

-- The archive exactly as the client sent it, apart from the row so that lists never read it.
CREATE TABLE archives (
    report_id INTEGER PRIMARY KEY,
    bytes     BLOB NOT NULL
);

-- Total archive bytes, kept by triggers (what --reports-max-bytes limits).
CREATE TABLE totals (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    bytes INTEGER NOT NULL
);
INSERT INTO totals (id, bytes) VALUES (1, 0);
CREATE TRIGGER reports_add AFTER INSERT ON reports BEGIN
    UPDATE totals SET bytes = bytes + NEW.archive_size WHERE id = 1;
END;
CREATE TRIGGER reports_remove AFTER DELETE ON reports BEGIN
    UPDATE totals SET bytes = bytes - OLD.archive_size WHERE id = 1;
    DELETE FROM archives WHERE report_id = OLD.id;
END;

CREATE TABLE marks (
    group_key TEXT PRIMARY KEY,
    state     TEXT NOT NULL CHECK (state IN ('known', 'fixed')),
    note      TEXT NOT NULL,
    set_by    TEXT NOT NULL,
    set_at    INTEGER NOT NULL
);

CREATE TABLE login_failures (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    client_addr TEXT,
    user_agent  TEXT,
    body        BLOB NOT NULL,
    base        TEXT
);
CREATE INDEX login_failures_by_time ON login_failures (at);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);
