-- Server store, schema 2: enrollment codes. Frozen once released.

-- One-time codes an admin issued: for a device of a point (township server) or for a
-- township server (district). Only the SHA-256 of the normalised code is kept. `peer` is the
-- `Peer::origin` the code enrolls; `used_by` the `actor:key` that used it (an exact retry of
-- that enrollment is answered again).
CREATE TABLE enroll_codes (
    digest     BLOB PRIMARY KEY,
    peer       TEXT NOT NULL,
    issued_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_by    TEXT,
    used_at    TEXT
);
