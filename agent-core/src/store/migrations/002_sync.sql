-- Daiban device store, schema 2: what the township server already has of each document.
-- Frozen once released.

-- Concatenated 32-byte Automerge change hashes: the heads the server acknowledged. An upload
-- sends only the changes after them.
ALTER TABLE docs ADD COLUMN synced_heads BLOB;
