-- Record bodies as `json` rather than `jsonb`. The store writes every body whole and reads it
-- whole (as text, decoded in Rust); no query looks inside one. `jsonb` made PostgreSQL parse each
-- body into its binary form on every write (sorting every object's keys), which was about a tenth
-- of the server's CPU time in the throughput benchmark; `json` only checks the text is JSON and
-- keeps it as sent. The JSON operators (`->`, `->>`) still work on `json` for ad-hoc queries.
--
-- Rewrites the five tables once.

ALTER TABLE jobs             ALTER COLUMN body TYPE json USING body::json;
ALTER TABLE executions       ALTER COLUMN body TYPE json USING body::json;
ALTER TABLE schedules        ALTER COLUMN body TYPE json USING body::json;
ALTER TABLE execution_events ALTER COLUMN body TYPE json USING body::json;
ALTER TABLE deliveries       ALTER COLUMN body TYPE json USING body::json;
