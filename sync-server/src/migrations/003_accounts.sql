-- Server store, schema 3: staff accounts, console sessions, the audit log. Frozen once released.

-- A staff account of this server. `township`: the township whose points a township account
-- sees (NULL on a district). `password` is an argon2id PHC string. `actor`: the Automerge
-- actor the account's events are written with. Failed sign-ins count up to a lockout.
CREATE TABLE staff_accounts (
    login        TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL,
    township     TEXT,
    password     TEXT NOT NULL,
    actor        TEXT NOT NULL UNIQUE,
    disabled     INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT,
    created_at   TEXT NOT NULL
);

-- A signed-in console session: only the SHA-256 of its cookie token is kept, with the CSRF
-- token its forms carry.
CREATE TABLE staff_sessions (
    digest     BLOB PRIMARY KEY,
    login      TEXT NOT NULL REFERENCES staff_accounts (login),
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

-- Every staff action and every unmasking: who, when, what, on which ticket, and why.
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY,
    at     TEXT NOT NULL,
    login  TEXT NOT NULL,
    action TEXT NOT NULL,
    ticket TEXT,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_ticket ON audit_log (ticket);
