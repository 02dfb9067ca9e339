-- 0002 (PostgreSQL): the outbox of deliveries to Sentry and webhooks, written in the same transaction as
-- the report that brings them (see src/store/outbox.rs). Times are UTC milliseconds.

CREATE TABLE outbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    target       TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('report', 'new_group', 'threshold')),
    group_key    TEXT COLLATE "C" NOT NULL,
    report_id    BIGINT,
    count        BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    next_at      BIGINT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    -- who holds the row while delivering it, and until when
    lease_token  TEXT,
    lease_until  BIGINT NOT NULL DEFAULT 0,
    delivered_at BIGINT,
    failed_at    BIGINT
);
CREATE INDEX outbox_due ON outbox (next_at) WHERE delivered_at IS NULL AND failed_at IS NULL;
-- A group is announced new (or past the threshold) once per target.
CREATE UNIQUE INDEX outbox_group_events ON outbox (target, kind, group_key) WHERE kind <> 'report';
