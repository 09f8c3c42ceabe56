-- Server store, schema 6: the legal dates and the result in the ticket index, for the public
-- disclosure board (办件公示). Frozen once released.
ALTER TABLE ticket_index ADD COLUMN accepted TEXT;
-- Completed, rejected or withdrawn: the day the clock stopped.
ALTER TABLE ticket_index ADD COLUMN finished TEXT;
-- `approved` / `denied` once completed.
ALTER TABLE ticket_index ADD COLUMN outcome TEXT;
-- Fold every ticket again to fill them.
DELETE FROM meta WHERE key = 'index_seq';
