-- project06_tracker (sources.md §8): the current Project 06 tracker, one row per task (sheet
-- 'tasks') or pilot model (sheet 'models'). The workbook is re-sent whole and the newest
-- delivery is the truth: the pipeline removes the keys a new delivery no longer contains.
-- No named date: file_date stays NULL, so only the same file name replaces a row.
CREATE TABLE IF NOT EXISTS core.project06_item (
    sheet         text NOT NULL CHECK (sheet IN ('tasks', 'models')),
    item_id       text NOT NULL,                -- task_id or model_id
    group_no      integer CHECK (group_no BETWEEN 1 AND 10),
    title         text,
    name          text,
    owner_unit    text NOT NULL,
    deadline      date,
    status        text NOT NULL CHECK (status IN ('done', 'in_progress', 'not_started')),
    completed_on  date,
    started_on    date,
    source_file   text NOT NULL,
    file_date     date,
    batch_id      bigint NOT NULL,
    PRIMARY KEY (sheet, item_id),
    -- each sheet's required columns (sources.md §8)
    CHECK (sheet <> 'tasks' OR (group_no IS NOT NULL AND title IS NOT NULL AND deadline IS NOT NULL
                                AND (status <> 'done' OR completed_on IS NOT NULL))),
    CHECK (sheet <> 'models' OR name IS NOT NULL)
);
