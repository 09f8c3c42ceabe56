-- Server store, schema 7: what the supervision board (电子监察) and the reports count, folded
-- into the ticket index so neither loads a document. Frozen once released.

-- The catalog version the ticket was registered under.
ALTER TABLE ticket_index ADD COLUMN item_version INTEGER NOT NULL DEFAULT 0;
-- Fees in fen: charged at the point, and the item's statutory fee when registered.
ALTER TABLE ticket_index ADD COLUMN fee_fen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ticket_index ADD COLUMN statutory_fen INTEGER NOT NULL DEFAULT 0;
-- Finished with a running clock: on or before its due date, and the working days it took
-- (paused days excluded).
ALTER TABLE ticket_index ADD COLUMN on_time INTEGER;
ALTER TABLE ticket_index ADD COLUMN days_taken INTEGER;
-- The stage still open (township_review / window_handling / return_to_village), its first
-- day and its budget in working days; the board counts it against today.
ALTER TABLE ticket_index ADD COLUMN stage TEXT;
ALTER TABLE ticket_index ADD COLUMN stage_start TEXT;
ALTER TABLE ticket_index ADD COLUMN stage_budget INTEGER;
-- Closed stages that went over their budgets, comma-separated.
ALTER TABLE ticket_index ADD COLUMN stages_over TEXT NOT NULL DEFAULT '';
-- The day the result was delivered at the village point.
ALTER TABLE ticket_index ADD COLUMN delivered TEXT;
-- 好差评: the score (1–5) and its legal day (a tablet rating's `arrived` stamp); the day a 不满意 or worse rating was answered (回访).
ALTER TABLE ticket_index ADD COLUMN evaluation INTEGER;
ALTER TABLE ticket_index ADD COLUMN evaluated TEXT;
ALTER TABLE ticket_index ADD COLUMN answered TEXT;
-- Something on the board may concern it: a clock, a paused light or an open stage.
ALTER TABLE ticket_index ADD COLUMN live INTEGER NOT NULL DEFAULT 0;

CREATE INDEX ticket_index_live ON ticket_index (due) WHERE live;
CREATE INDEX ticket_index_fee ON ticket_index (registered, ticket) WHERE fee_fen <> statutory_fen;
CREATE INDEX ticket_index_followup ON ticket_index (evaluated)
    WHERE evaluation <= 2 AND answered IS NULL;
-- The reports count each measure by its own day, per township, point and item.
CREATE INDEX ticket_index_report_registered ON ticket_index (registered, township, point, item_code);
CREATE INDEX ticket_index_report_accepted ON ticket_index (accepted, township, point, item_code);
CREATE INDEX ticket_index_report_finished ON ticket_index
    (finished, township, point, item_code, outcome, on_time, days_taken, stages_over);
CREATE INDEX ticket_index_report_evaluated ON ticket_index
    (evaluated, township, point, item_code, evaluation);
CREATE INDEX ticket_index_report_delivered ON ticket_index (delivered, township, point, item_code);

-- Fold every ticket again to fill them.
DELETE FROM meta WHERE key = 'index_seq';
