-- Key pairs of each account (see runner_core::key_pair): the whole record, private key
-- included, as JSON in body; listed by name. No foreign keys, as in 0001.

CREATE TABLE key_pairs (
    account_alias  text NOT NULL,
    name           text NOT NULL,
    body           json NOT NULL,
    PRIMARY KEY (account_alias, name)
);
