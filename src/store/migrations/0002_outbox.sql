-- 0002: the outbox of deliveries to Sentry and webhooks, written in the same transaction as
-- the report that brings them (see src/store/outbox.rs). Times are UTC milliseconds.

CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    target       TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('report', 'new_group', 'threshold')),
    group_key    TEXT NOT NULL,
    report_id    INTEGER,
    count        INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    next_at      INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    -- who holds the row while delivering it, and until when
    lease_token  TEXT,
    lease_until  INTEGER NOT NULL DEFAULT 0,
    delivered_at INTEGER,
    failed_at    INTEGER
);
CREATE INDEX outbox_due ON outbox (next_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
-- A group is announced new (or past the threshold) once per target.
CREATE UNIQUE INDEX outbox_group_events ON outbox (target, kind, group_key) WHERE kind <> 'report';
