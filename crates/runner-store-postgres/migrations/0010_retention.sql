-- Retention (issue 18): executions that ended before a cut are deleted whole, oldest end first,
-- in small batches (see runner_core::store::RetentionStore).
--
-- ended_time is Execution::ended_time(), written by the store with every status change (the rule
-- lives in runner-core; the expression below only fills it in once for the rows that ended
-- before this migration). NULL while the execution has not ended.
ALTER TABLE executions ADD COLUMN ended_time bigint;
UPDATE executions
   SET ended_time = COALESCE((body->'timers'->-1->>'end')::bigint, created_time)
 WHERE status IN ('SUCCESS', 'FAILURE', 'STOPPED', 'KILLED');
-- purge_ended: the ended rows in the order they ended; live rows are not in it.
CREATE INDEX executions_ended ON executions (ended_time, id) WHERE ended_time IS NOT NULL;

-- How many executions of each job retention deleted. A job's executions are numbered 1, 2, 3, ...
-- (job_seq); with purge holes the count is the highest number less this, and a page is no longer
-- a range of numbers. Keyed by job id, without a foreign key: a deleted job's executions are
-- purged too.
CREATE TABLE execution_purges (
    job_id  uuid   PRIMARY KEY,
    purged  bigint NOT NULL
);
