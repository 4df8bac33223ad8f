-- Merge one validated delivery of the Project 06 tracker into core.project06_item.
-- {staging}: the deduplicated staging table (both sheets); {rejects}: its quarantined row ids.
-- Params: batch_id, file_name, file_date (NULL: the tracker has no named date, so only a new
-- delivery of the same file replaces a row). The pipeline then removes the keys this delivery
-- no longer contains, so the newest workbook is the truth.
INSERT INTO core.project06_item AS c (
    sheet, item_id, group_no, title, name, owner_unit, deadline, status, completed_on,
    started_on, source_file, file_date, batch_id)
SELECT s.sheet,
       s.item_id,
       s.group_no::integer,
       s.title,
       s.name,
       s.owner_unit,
       util.try_date(s.deadline),
       s.status,
       util.try_date(s.completed_on),
       util.try_date(s.started_on),
       %(file_name)s,
       %(file_date)s::date,
       %(batch_id)s
  FROM {staging} s
 WHERE NOT EXISTS (SELECT 1 FROM {rejects} r WHERE r._row_id = s._row_id)
ON CONFLICT (sheet, item_id) DO UPDATE SET
    group_no     = EXCLUDED.group_no,
    title        = EXCLUDED.title,
    name         = EXCLUDED.name,
    owner_unit   = EXCLUDED.owner_unit,
    deadline     = EXCLUDED.deadline,
    status       = EXCLUDED.status,
    completed_on = EXCLUDED.completed_on,
    started_on   = EXCLUDED.started_on,
    source_file  = EXCLUDED.source_file,
    file_date    = EXCLUDED.file_date,
    batch_id     = EXCLUDED.batch_id
WHERE c.source_file = EXCLUDED.source_file OR c.file_date <= EXCLUDED.file_date;
