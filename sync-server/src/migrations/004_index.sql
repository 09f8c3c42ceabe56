-- Server store, schema 4: window staff's window, and the ticket index the console searches.
-- Frozen once released.

-- The district window a window-staff account serves (the catalog's window name); NULL: a
-- general window (综合窗口) that sees every forwarded ticket.
ALTER TABLE staff_accounts ADD COLUMN window TEXT;

-- One row per ticket, folded from its document, so lists and searches never load documents.
-- Rebuilt from `changes` past the `index_seq` meta watermark (see index.rs); holds the
-- applicant in clear like `docs` does (the deployment protects server disks; pages mask).
-- `window`: where it was forwarded ('' when never). Dates are YYYY-MM-DD in China time.
-- `due`: the due date while the clock runs; `paused_light`: the light while the clock is
-- paused (it does not change while paused). `light` filters compute the rest per day.
CREATE TABLE ticket_index (
    ticket        TEXT PRIMARY KEY,
    point         INTEGER NOT NULL,
    township      TEXT NOT NULL,
    item_code     TEXT NOT NULL,
    item_name     TEXT NOT NULL,
    applicant     TEXT NOT NULL,
    id_number     TEXT NOT NULL,
    phone         TEXT NOT NULL,
    status        TEXT NOT NULL,
    needs_review  INTEGER NOT NULL,
    window        TEXT NOT NULL,
    registered    TEXT NOT NULL,
    due           TEXT,
    paused_light  TEXT
);
-- Lists are newest first: each filter's index ends in (registered, ticket) so a page is a
-- short index walk. The township is never an index's lead (a township server holds one).
CREATE INDEX ticket_index_registered ON ticket_index (registered, ticket);
CREATE INDEX ticket_index_status ON ticket_index (status, registered, ticket);
CREATE INDEX ticket_index_window ON ticket_index (window, registered, ticket);
CREATE INDEX ticket_index_point ON ticket_index (point, registered, ticket);
CREATE INDEX ticket_index_item ON ticket_index (item_code, registered, ticket);
CREATE INDEX ticket_index_id ON ticket_index (id_number);
CREATE INDEX ticket_index_phone ON ticket_index (phone);
CREATE INDEX ticket_index_applicant ON ticket_index (applicant);
CREATE INDEX ticket_index_due ON ticket_index (due);
CREATE INDEX ticket_index_review ON ticket_index (registered, ticket) WHERE needs_review;
