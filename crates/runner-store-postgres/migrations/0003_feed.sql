-- The live feed: each execution's numbered events, and the webhook outbox derived from them (see
-- runner_core::feed). Both are written in the transaction that changes the execution (under its
-- row lock), so sequence numbers are dense and in causal order; the execution's event counter
-- lives in its body (executions.body.events).
--
-- No foreign keys, as in 0001 and 0002: executions are never deleted, and the store takes its
-- locks itself.

CREATE TABLE execution_events (
    execution_id  uuid   NOT NULL,
    -- 1, 2, 3, ... per execution (1 is the creation event).
    sequence      bigint NOT NULL,
    -- The runner_core::feed::Event, as served by list_events and posted to callbacks.
    body          jsonb  NOT NULL,
    PRIMARY KEY (execution_id, sequence)
);

-- The outbox: one row per (event, callback that accepts it). Each (execution_id, callback) pair
-- is a queue, delivered in sequence order: claim_deliveries hands out only a queue's head (its
-- lowest pending sequence). Delivered rows are deleted; given-up rows stay, marked 'failed', for
-- operators, and no longer block their queue.
CREATE TABLE deliveries (
    execution_id     uuid    NOT NULL,
    -- The callback's index in the execution's callbacks (body.callbacks).
    callback         integer NOT NULL,
    sequence         bigint  NOT NULL,
    url              text    NOT NULL,
    -- Failed attempts so far.
    attempts         integer NOT NULL DEFAULT 0,
    -- Not before then (the event's time, or a retry after a backoff).
    next_attempt_at  bigint  NOT NULL,
    -- Set by claim_deliveries: hidden from other claimers until then (or until settled).
    held_until       bigint,
    state            text    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'failed')),
    last_error       text,
    -- The event (the POST body).
    body             jsonb   NOT NULL,
    -- The primary key also serves the "is there an earlier pending delivery in this queue?"
    -- probe of claim_deliveries (a backward range scan that stops at the first pending row).
    PRIMARY KEY (execution_id, callback, sequence)
)
-- Every delivery is updated at least once (its hold) and the hold column is not indexed: leave
-- room on each page so those updates stay HOT (no index writes).
WITH (fillfactor = 80);

-- claim_deliveries: due pending rows, earliest first. Only pending rows are indexed, so failed
-- rows cost nothing and delivered rows are gone.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
