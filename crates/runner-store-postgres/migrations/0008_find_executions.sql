-- Finding executions (issue 18): an account's executions across its jobs, or one job's, filtered by
-- status and a creation-time range, newest first. find_executions walks one of these indexes per
-- wanted status (every status when the filter names none) and merges the walks in order, so a
-- page reads about offset + size index entries whatever the table holds. The count of a search
-- reads the matching entries (index only) up to runner_core::search::count_limit.
CREATE INDEX executions_by_account_status
    ON executions (account_alias, status, created_time DESC, id DESC);

CREATE INDEX executions_by_job_status
    ON executions (job_id, status, created_time DESC, id DESC);
