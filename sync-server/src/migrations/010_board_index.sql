-- Server store, schema 10: the supervision board reads the live tickets (a few per cent of
-- all) from one covering index, without visiting the table. Frozen once released.
DROP INDEX ticket_index_live;
CREATE INDEX ticket_index_live ON ticket_index
    (due, paused_light, township, point, window, item_code, stage, stage_start, stage_budget,
     live)
    WHERE live;

-- The reports count a return to the village over its budget on its delivery day.
DROP INDEX ticket_index_report_delivered;
CREATE INDEX ticket_index_report_delivered ON ticket_index
    (delivered, township, point, item_code, stages_over);
