-- Server store, schema 5: the list pages' counts by status (and of 需核对) in an account's
-- scope read one covering index instead of every row. Frozen once released.
CREATE INDEX ticket_index_counts ON ticket_index (status, township, window, needs_review);
