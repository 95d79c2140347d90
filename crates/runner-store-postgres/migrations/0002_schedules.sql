-- Service accounts and job schedules (the Job Schedule Service), and the key that makes one due
-- time of a schedule create one execution however many nodes fire it.
--
-- No foreign keys, as in 0001: the store takes the row locks itself, in one order everywhere
-- (schedules, then jobs; jobs, then service accounts), which foreign-key triggers would not keep.

CREATE TABLE service_accounts (
    account_alias  text   NOT NULL,
    alias          text   NOT NULL,
    description    text,
    created_time   bigint NOT NULL,
    -- Insertion order: ties of created_time list the later insert first.
    position       bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (account_alias, alias)
);

-- list_service_accounts: an account's service accounts, newest first.
CREATE INDEX service_accounts_newest
    ON service_accounts (account_alias, created_time DESC, position DESC);

CREATE TABLE schedules (
    id                     uuid   PRIMARY KEY,
    job_id                 uuid   NOT NULL,
    account_alias          text   NOT NULL,
    service_account_alias  text   NOT NULL,
    -- Copy of body.nextFireTime; NULL once a date schedule fired.
    next_fire_time         bigint,
    created_time           bigint NOT NULL,
    body                   jsonb  NOT NULL
);

-- list_schedules: a job's schedules, newest first (ids are time-ordered v7 UUIDs).
CREATE INDEX schedules_by_job ON schedules (job_id, created_time DESC, id DESC);

-- fire_due_schedules / next_fire_time.
CREATE INDEX schedules_due ON schedules (next_fire_time) WHERE next_fire_time IS NOT NULL;

-- delete_service_account: is a schedule still using it?
CREATE INDEX schedules_by_service_account ON schedules (account_alias, service_account_alias);

-- The schedule and due time that created an execution (copies of body.scheduled); NULL for
-- executions started by hand. Adding nullable columns without a default rewrites nothing.
ALTER TABLE executions ADD COLUMN schedule_id uuid, ADD COLUMN due_time bigint;

-- One execution per (schedule, due time): the second guard behind the schedule's row lock.
CREATE UNIQUE INDEX executions_by_fire ON executions (schedule_id, due_time)
    WHERE schedule_id IS NOT NULL;
