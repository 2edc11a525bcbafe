-- The ledger's schema. Version 1. Every statement is idempotent: many Tether processes may
-- open a fresh ledger at the same moment, and they run this inside one IMMEDIATE transaction.

-- One row per Tether process that owns instances: a `tether wrap` shim standing alone, or a
-- gateway. `pid` + `start_ticks` (+ `pidfs_inode`) on `boot_id` prove whether it still lives.
CREATE TABLE IF NOT EXISTS owners (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL,
    boot_id       TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    start_ticks   INTEGER NOT NULL,
    pidfs_inode   INTEGER,
    started_ms    INTEGER NOT NULL,
    ended_ms      INTEGER
);

-- One row per instance (one running MCP server and its tree). Written as an intent before the
-- server exists; `holder_*` is the shim responsible for the tree, whose death makes the
-- instance an orphan. `state`: intent | running | ended | reaped | lost.
CREATE TABLE IF NOT EXISTS instances (
    id                TEXT PRIMARY KEY,
    owner_id          TEXT NOT NULL,
    scope             TEXT NOT NULL,
    server            TEXT NOT NULL,
    command           TEXT NOT NULL,
    boot_id           TEXT NOT NULL,
    holder_pid        INTEGER NOT NULL,
    holder_start      INTEGER NOT NULL,
    holder_inode      INTEGER,
    cgroup            TEXT,
    cgroup_v1         TEXT,
    layers            TEXT NOT NULL,
    state             TEXT NOT NULL,
    intent_ms         INTEGER NOT NULL,
    spawned_ms        INTEGER,
    ended_ms          INTEGER,
    end_reason        TEXT,
    remote            TEXT,
    upstream_session  TEXT
);
CREATE INDEX IF NOT EXISTS instances_by_state ON instances(state);
CREATE INDEX IF NOT EXISTS instances_by_owner ON instances(owner_id);

-- Processes of an instance that a sweep must be able to find by identity: the server itself
-- (`leader`) and every descendant the cookie cannot find (`adopted`: it scrubbed its
-- environment). Cookie carriers are found by the /proc sweep and need no row.
CREATE TABLE IF NOT EXISTS processes (
    instance_id   TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    pid           INTEGER NOT NULL,
    start_ticks   INTEGER NOT NULL,
    pidfs_inode   INTEGER,
    role          TEXT NOT NULL,
    pgid          INTEGER,
    has_cookie    INTEGER NOT NULL,
    seen_ms       INTEGER NOT NULL,
    PRIMARY KEY (instance_id, pid, start_ticks)
);
