-- The hosts of each account's inventory (see runner_core::inventory): the whole record, secrets
-- included, as JSON in body; listed by id. No foreign keys, as in 0001.

CREATE TABLE inventory_hosts (
    account_alias  text NOT NULL,
    id             text NOT NULL,
    body           json NOT NULL,
    PRIMARY KEY (account_alias, id)
);
