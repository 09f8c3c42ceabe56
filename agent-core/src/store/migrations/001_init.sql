-- Daiban device store, schema 1. Frozen once released: add 002_*.sql, never edit this file.

-- Settings and identity. Values are opaque blobs (JSON, CSV or sealed bytes).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

-- One row per ticket: index columns kept in step with the document, plus the sealed document.
-- No column holds a name, ID number or phone in clear: `summary` and `doc` are sealed,
-- the *_hash columns are keyed hashes.
CREATE TABLE tickets (
    number           TEXT PRIMARY KEY,
    item_code        TEXT NOT NULL,
    status           TEXT NOT NULL,
    needs_review     INTEGER NOT NULL,
    registered_on    TEXT NOT NULL,      -- device date, YYYY-MM-DD
    accepted_on      TEXT,               -- legal date
    clock            TEXT NOT NULL,      -- not_started / running / paused / finished / unknown
    due_on           TEXT,               -- while running
    frozen_remaining INTEGER,            -- while paused: working days left when the pause began
    id_hash          BLOB NOT NULL,
    phone_hash       BLOB,
    name_hash        BLOB NOT NULL,
    summary          BLOB NOT NULL,      -- sealed JSON for list rows
    sync_state       TEXT NOT NULL DEFAULT 'pending',
    sync_reason      TEXT,
    updated_at       TEXT NOT NULL,
    doc              BLOB NOT NULL,      -- sealed full Automerge save
    doc_chunks       INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX tickets_status ON tickets (status, registered_on);
CREATE INDEX tickets_item ON tickets (item_code, registered_on);
CREATE INDEX tickets_registered ON tickets (registered_on);
CREATE INDEX tickets_due ON tickets (clock, due_on);
CREATE INDEX tickets_id ON tickets (id_hash);
CREATE INDEX tickets_phone ON tickets (phone_hash);
CREATE INDEX tickets_name ON tickets (name_hash);
CREATE INDEX tickets_sync ON tickets (sync_state);

-- Incremental Automerge chunks saved after `tickets.doc`; folded into it on compaction.
CREATE TABLE doc_chunks (
    number TEXT NOT NULL REFERENCES tickets (number) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    chunk  BLOB NOT NULL,
    PRIMARY KEY (number, seq)
) STRICT;

-- Documents that failed to open: moved here, never deleted, for recovery.
CREATE TABLE quarantine (
    id       INTEGER PRIMARY KEY,
    number   TEXT NOT NULL,
    reason   TEXT NOT NULL,
    moved_at TEXT NOT NULL,
    doc      BLOB NOT NULL,
    chunks   TEXT NOT NULL               -- JSON array of sealed chunks, hex
) STRICT;
