-- Whether an execution runs one at a time with the others of its job (its `overlap` is queue or
-- skip; see runner_core::overlap), as a column: the claim's candidate query tests it for every
-- PENDING row it passes, which must not parse each row's JSON body. Set at insert, never changed
-- (an execution keeps the policy it was made under).

ALTER TABLE executions ADD COLUMN one_at_a_time boolean NOT NULL DEFAULT false;

-- The claim and start rules read a job's one-at-a-time executions that hold or wait for its turn.
CREATE INDEX executions_one_at_a_time ON executions (job_id, queue_position)
    WHERE one_at_a_time AND status IN ('PENDING', 'INITIALIZING', 'RUNNING', 'STOPPING', 'KILLING');
