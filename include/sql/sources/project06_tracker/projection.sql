-- project06_tracker: staging row s (both sheets) -> core.project06_tracker columns (the merge
-- around it: ingest/merge.py; the pipeline then removes the keys a new delivery no longer contains).
s.sheet                       AS sheet,
s.item_id                     AS item_id,
s.group_no::integer           AS group_no,
s.title                       AS title,
s.name                        AS name,
s.owner_unit                  AS owner_unit,
util.try_date(s.deadline)     AS deadline,
s.status                      AS status,
util.try_date(s.completed_on) AS completed_on,
util.try_date(s.started_on)   AS started_on
