-- Daiban device store, schema 1. Frozen once released: add 002_*.sql, never edit this file.

-- Settings and identity. Values are opaque blobs (JSON, CSV or sealed bytes).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

-- One row per ticket: index columns kept in step with the document. Small rows, so scans and
-- sorts for lists stay fast; the documents live in `docs`. No column holds a name, ID number or
-- phone in clear: `summary` is sealed, the *_hash columns are keyed hashes.
CREATE TABLE tickets (
    id               INTEGER PRIMARY KEY,
    number           TEXT NOT NULL UNIQUE,
    item_code        TEXT NOT NULL,
    status           TEXT NOT NULL,
    needs_review     INTEGER NOT NULL,
    registered_on    TEXT NOT NULL,      -- device date, YYYY-MM-DD
    accepted_on      TEXT,               -- legal date
    clock            TEXT NOT NULL,      -- not_started / running / paused / finished / unknown
    due_on           TEXT,               -- while running
    frozen_remaining INTEGER,            -- while paused: working days left when the pause began
    id_hash          BLOB NOT NULL,      -- keyed hashes (8 bytes) for exact lookups
    phone_hash       BLOB,
    name_hash        BLOB NOT NULL,
    summary          BLOB NOT NULL,      -- sealed JSON for list rows
    sync_state       TEXT NOT NULL DEFAULT 'pending',
    sync_reason      TEXT
) STRICT;

-- Few indexes: each costs bytes per ticket (goal: 2 KB a ticket on disk). Status and name
-- filters scan the small index rows instead (a few ms for 10,000 tickets).
CREATE INDEX tickets_registered ON tickets (registered_on, number);
CREATE INDEX tickets_item ON tickets (item_code, registered_on);
CREATE INDEX tickets_due ON tickets (clock, due_on);
CREATE INDEX tickets_id ON tickets (id_hash);
CREATE INDEX tickets_phone ON tickets (phone_hash);
CREATE INDEX tickets_unsynced ON tickets (sync_state) WHERE sync_state <> 'synced';

-- The sealed full Automerge save of each ticket, and how many chunks (and bytes) follow it.
CREATE TABLE docs (
    ticket      INTEGER PRIMARY KEY REFERENCES tickets (id) ON DELETE CASCADE,
    doc         BLOB NOT NULL,
    chunks      INTEGER NOT NULL DEFAULT 0,
    chunk_bytes INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Incremental Automerge chunks saved after `docs.doc`; folded into it on compaction.
CREATE TABLE doc_chunks (
    ticket INTEGER NOT NULL REFERENCES docs (ticket) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    chunk  BLOB NOT NULL,
    PRIMARY KEY (ticket, seq)
) STRICT, WITHOUT ROWID;

-- Documents that failed to open: moved here, never deleted, for recovery.
CREATE TABLE quarantine (
    id       INTEGER PRIMARY KEY,
    number   TEXT NOT NULL,
    reason   TEXT NOT NULL,
    moved_at TEXT NOT NULL,
    doc      BLOB NOT NULL,
    chunks   TEXT NOT NULL               -- JSON array of sealed chunks, hex
) STRICT;
