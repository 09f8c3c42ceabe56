-- Server store, schema 9: SMS. Frozen once released.

-- The outbox: every message is stored here before a gateway is given it, and given it until
-- it is taken (retried with backoff), at most once per `reason`.
CREATE TABLE sms_outbox (
    id        INTEGER PRIMARY KEY,
    -- Why it is sent, unique: `supplement:<event id>`, `reply:<inbound reference>`,
    -- `overdue:<ticket>:<due>:agent` … so one event never makes two messages.
    reason    TEXT NOT NULL UNIQUE,
    -- The ticket it concerns and its township (scope in the console); NULL for none.
    ticket    TEXT,
    township  TEXT,
    phone     TEXT NOT NULL,
    template  TEXT NOT NULL,
    -- The template's named parameters: JSON [[name, value], …].
    params    TEXT NOT NULL,
    text      TEXT NOT NULL,
    -- queued / sent / failed / cancelled (a notice to a phone that sent 退订 meanwhile)
    state     TEXT NOT NULL DEFAULT 'queued',
    attempts  INTEGER NOT NULL DEFAULT 0,
    -- RFC 3339: not before this (backoff after a failed attempt).
    next_try  TEXT NOT NULL,
    -- The gateway's reference once taken; the last failure's reason.
    reference TEXT,
    error     TEXT,
    created   TEXT NOT NULL,
    sent      TEXT
);
CREATE INDEX sms_outbox_queue ON sms_outbox (next_try) WHERE state = 'queued';
CREATE INDEX sms_outbox_created ON sms_outbox (created);

-- Inbound messages handled, by the gateway's reference (one seen twice is handled once), and
-- the per-phone rate limit's memory. `asked`: what the text was read as.
CREATE TABLE sms_inbox (
    reference TEXT PRIMARY KEY,
    phone     TEXT NOT NULL,
    text      TEXT NOT NULL,
    received  TEXT NOT NULL,
    asked     TEXT NOT NULL,
    ticket    TEXT
);
CREATE INDEX sms_inbox_phone ON sms_inbox (phone, received);

-- Phones that sent 退订 / TD: no invitations or notifications, answers to their own texts only.
CREATE TABLE sms_optout (
    phone TEXT PRIMARY KEY,
    at    TEXT NOT NULL
);
