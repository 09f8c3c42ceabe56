-- Server store, schema 1. Frozen once released; add 002_*.sql for changes.

-- Settings imported by the admin: `calendar` (CSV), `catalog` (JSON), `actor` (hex).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- The full Automerge save per ticket, in clear (the deployment protects server disks).
CREATE TABLE docs (
    ticket TEXT PRIMARY KEY,
    point  INTEGER NOT NULL,
    doc    BLOB NOT NULL
);

-- Every batch of new changes, in the order the server stored them; `seq` is the cursor
-- clients keep. origin: `device:<point>:<device>`, `server`, `staff:<name>`.
CREATE TABLE changes (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket TEXT NOT NULL,
    point  INTEGER NOT NULL,
    origin TEXT NOT NULL,
    bytes  BLOB NOT NULL
);
CREATE INDEX changes_point_seq ON changes (point, seq);

-- Last request counter and response per device: an exact retry gets the same bytes.
CREATE TABLE devices (
    point         INTEGER NOT NULL,
    device        INTEGER NOT NULL,
    last_counter  INTEGER NOT NULL,
    last_response BLOB NOT NULL,
    PRIMARY KEY (point, device)
);
