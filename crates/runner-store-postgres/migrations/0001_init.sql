-- Jobs and executions of Runner. Every row keeps the whole record in `body` (JSON, secrets in
-- clear: the store is their only home); the other columns are copies that queries filter, order
-- and index on. Only runner-store-postgres writes these tables.

CREATE TABLE jobs (
    id             uuid   PRIMARY KEY,
    account_alias  text   NOT NULL,
    created_time   bigint NOT NULL,
    -- How many executions the job has had: the next execution gets execution_seq + 1. Bumped in
    -- the transaction that inserts the execution, so the numbers are dense (see executions.job_seq).
    execution_seq  bigint NOT NULL DEFAULT 0,
    body           jsonb  NOT NULL
);

-- list_jobs: an account's jobs, newest first.
CREATE INDEX jobs_by_account ON jobs (account_alias, created_time DESC, id DESC);

-- The claim queue order: a position is drawn whenever an execution becomes PENDING.
CREATE SEQUENCE execution_queue;

CREATE TABLE executions (
    id             uuid    PRIMARY KEY,
    -- No foreign key: executions stay readable after their job is deleted.
    job_id         uuid    NOT NULL,
    account_alias  text    NOT NULL,
    status         text    NOT NULL,
    created_time   bigint  NOT NULL,
    -- 1, 2, 3, ... per job in insertion order, without gaps (executions are never deleted). A page
    -- of a job's executions is a range of job_seq, so page 10,000 costs what page 1 costs, and
    -- the job's highest job_seq is its execution count.
    job_seq        bigint  NOT NULL,
    -- Claim order among PENDING executions (oldest first).
    queue_position bigint  NOT NULL,
    -- Execution::next_deadline(): the earliest lease expiry, TTL, stop escalation or kill deadline.
    next_deadline  bigint,
    attempt        bigint  NOT NULL,
    body           jsonb   NOT NULL
);

-- list_executions: a job's executions, newest first, by range of job_seq.
CREATE UNIQUE INDEX executions_by_job ON executions (job_id, job_seq DESC);

-- claim: the PENDING queue, oldest first.
CREATE INDEX executions_pending ON executions (queue_position) WHERE status = 'PENDING';

-- due / next_deadline.
CREATE INDEX executions_deadline ON executions (next_deadline) WHERE next_deadline IS NOT NULL;

-- delete_job: does the job still have an execution that has not ended?
CREATE INDEX executions_active ON executions (job_id)
    WHERE status IN ('PENDING', 'INITIALIZING', 'RUNNING', 'STOPPING', 'KILLING');
