-- 0005_relay_lease: the outbox relay's truth in Postgres, so that any relay
-- (an active/standby pair on two hosts, or one with a lost journal) can
-- take over without duplicates or stalls (docs/relay.md).
--
-- Contract:
--   relay_lease    one row per outbox: who leads (holder, the relay's
--                  application_name), its epoch (bumped by every takeover)
--                  and until when (expires_at, renewed about every second).
--                  A relay may take the lease when it is free or expired,
--                  or when it is its own (same host and journal: its previous
--                  run died). Every write of a leader below names its epoch
--                  and locks this row, so a takeover and a zombie's write
--                  are serialised and the zombie's write finds nothing.
--   relay_cursors  per topic-partition the next offset after the relay's
--                  last confirmed message: raised in the settle statement.
--   relay_windows  the open window (at most one per outbox): its epoch, its
--                  events (seq, event_id, topic, partition) and per partition
--                  the offset a recovery scan starts from. Written before
--                  anything is produced, deleted in the settle statement.
-- The relay's SQLite journal caches the same; Postgres wins when they differ.

CREATE TABLE relay_lease (
    outbox        text PRIMARY KEY DEFAULT 'outbox',
    holder        text,                      -- application_name of the leader
    holder_pid    int,                       -- its backend pid (pg_backend_pid())
    epoch         bigint NOT NULL DEFAULT 0,
    acquired_at   timestamptz,
    renewed_at    timestamptz,
    expires_at    timestamptz NOT NULL DEFAULT '-infinity',
    -- Takeovers from another (live or expired) holder, and relays that
    -- found themselves fenced and exited: for `payment-relay status`.
    takeovers     bigint NOT NULL DEFAULT 0,
    fenced_exits  bigint NOT NULL DEFAULT 0
);
INSERT INTO relay_lease (outbox) VALUES ('outbox');

CREATE TABLE relay_cursors (
    topic        text NOT NULL,
    partition    int NOT NULL CHECK (partition >= 0),
    next_offset  bigint NOT NULL CHECK (next_offset >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition)
);

CREATE TABLE relay_windows (
    outbox            text PRIMARY KEY REFERENCES relay_lease (outbox),
    epoch             bigint NOT NULL,
    opened_at         timestamptz NOT NULL DEFAULT now(),
    seqs              bigint[] NOT NULL,
    event_ids         text[] NOT NULL,
    topics            text[] NOT NULL,
    partitions        int[] NOT NULL,
    start_topics      text[] NOT NULL,
    start_partitions  int[] NOT NULL,
    start_offsets     bigint[] NOT NULL,
    CHECK (cardinality(seqs) = cardinality(event_ids)
       AND cardinality(seqs) = cardinality(topics)
       AND cardinality(seqs) = cardinality(partitions)
       AND cardinality(start_topics) = cardinality(start_partitions)
       AND cardinality(start_topics) = cardinality(start_offsets))
);
