-- Server store, schema 1. Frozen once released; add 002_*.sql for changes.

-- Settings: `actor` (hex), `epoch` (new after every restore), and the township's upward
-- sync state (`upstream_cursor`, `upstream_counter`, `upstream_epoch`, `upstream_floor`,
-- `upstream_shared:<name>`).
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

-- Shared documents (catalog, calendar, directory parts): the highest version seen.
CREATE TABLE shared (
    name    TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    body    BLOB NOT NULL
);

-- Every batch of new changes, in the order the server stored them; `seq` is the cursor
-- clients keep. A ticket's row carries its point and township; a shared document's row has
-- ticket `@<name>`, point 0, no bytes (the body is in `shared`) and township '' when every
-- replica holds it. origin: `device:<point>:<device>`, `township:<code>`, `parent`,
-- `server`, `staff:<name>`, `admin`.
CREATE TABLE changes (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket   TEXT NOT NULL,
    point    INTEGER NOT NULL,
    township TEXT NOT NULL,
    origin   TEXT NOT NULL,
    bytes    BLOB NOT NULL
);
CREATE INDEX changes_point_seq ON changes (point, seq);
CREATE INDEX changes_township_seq ON changes (township, seq);

-- Last request counter, request digest and response per peer (`Peer::origin`): an exact
-- retry (same counter, same body) gets the same bytes.
CREATE TABLE peers (
    peer          TEXT PRIMARY KEY,
    last_counter  INTEGER NOT NULL,
    last_digest   BLOB NOT NULL,
    last_response BLOB NOT NULL
);

-- A township's uploads to its district: how far in `changes` each ticket was sent and
-- acknowledged, the district's reason when it refused, and whether the district asked for
-- the whole ticket (it lost history in a restore).
CREATE TABLE upstream (
    ticket  TEXT PRIMARY KEY,
    seq     INTEGER NOT NULL,
    refused TEXT,
    whole   INTEGER NOT NULL DEFAULT 0
);
