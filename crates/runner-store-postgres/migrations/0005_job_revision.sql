-- A job's revision: bumped by every update of the job (and by nothing else; execution_seq
-- changes with every start). A node keeps copies of the jobs it read, with their revision, and
-- starts executions from a copy with an insert that checks the revision is still the stored one
-- (see the job_cache module): a start then needs no read of its job.

ALTER TABLE jobs ADD COLUMN revision bigint NOT NULL DEFAULT 0;
