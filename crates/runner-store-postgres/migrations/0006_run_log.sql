-- Run logs: each attempt's human-readable output (see runner_core::run_log). One meta row per
-- (execution, attempt) and its kept chunks keyed by their offset in the stream; the cap's rule
-- lives in runner_core::run_log, this schema only keeps what it plans. No foreign keys, as in
-- 0001: executions are never deleted.

CREATE TABLE run_logs (
    execution_id  uuid   NOT NULL,
    attempt       bigint NOT NULL,
    -- Bytes appended so far, bytes of the kept head, and the cap of the latest append.
    total         bigint NOT NULL,
    head_len      bigint NOT NULL,
    cap           bigint NOT NULL,
    PRIMARY KEY (execution_id, attempt)
);

CREATE TABLE run_log_chunks (
    execution_id  uuid   NOT NULL,
    attempt       bigint NOT NULL,
    -- The offset of the chunk's first byte in the attempt's stream.
    start_offset  bigint NOT NULL,
    data          bytea  NOT NULL,
    -- Also serves reads (a range of offsets) and the append's drop of old tail chunks.
    PRIMARY KEY (execution_id, attempt, start_offset)
);
