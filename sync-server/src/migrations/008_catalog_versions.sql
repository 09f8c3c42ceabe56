-- Server store, schema 8: every published definition of each catalog item (事项版本), from
-- the first import on, so the district can show what an item said under each version (a
-- ticket keeps the version it was registered under). Frozen once released.

-- One definition of an item as published: its code and version, the item as JSON, when and
-- by whom (a console login, or "(命令行)" for an import). A row is added only when the
-- definition differs from the last one recorded for the code.
CREATE TABLE catalog_versions (
    id      INTEGER PRIMARY KEY,
    code    TEXT NOT NULL,
    version INTEGER NOT NULL,
    item    TEXT NOT NULL,
    at      TEXT NOT NULL,
    by      TEXT NOT NULL
);
CREATE INDEX catalog_versions_code ON catalog_versions (code, id);
