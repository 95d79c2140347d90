-- One value sealed with the key the store's secrets are sealed with (runner_core::seal): a node
-- checks it at start-up, so a node given another key refuses to start rather than fail on every
-- record it reads. No row while the store keeps secrets in clear.

CREATE TABLE secret_canary (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    canary    text NOT NULL
);
