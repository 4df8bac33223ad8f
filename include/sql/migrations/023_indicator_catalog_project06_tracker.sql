-- Indicators read from project06_tracker (ioc_views.md, "Indicator catalog"): province level
-- only, stock over the current tracker (no record date). Counts have no target.
INSERT INTO mart.indicator_catalog
    (indicator_code, name_vi, name_en, sector, unit, kind, levels, target_value, source_codes, definition)
VALUES
    ('P06_TASKS_DONE_PCT', 'Tỷ lệ nhiệm vụ Đề án 06 đã hoàn thành',
     'Project 06 tasks completed',
     'project06', 'percent', 'stock', 'province', 100, 'project06_tracker',
     'Tasks of the current Project 06 tracker with status done, over all its tasks.'),
    ('P06_TASKS_OVERDUE', 'Số nhiệm vụ Đề án 06 quá hạn',
     'Project 06 tasks overdue',
     'project06', 'count', 'stock', 'province', NULL, 'project06_tracker',
     'Number of tasks of the current Project 06 tracker not done whose deadline is before the as-of date.'),
    ('P06_MODELS_DONE', 'Số mô hình điểm Đề án 06 đã hoàn thành',
     'Project 06 pilot models completed',
     'project06', 'count', 'stock', 'province', NULL, 'project06_tracker',
     'Number of pilot models of the current Project 06 tracker with status done.'),
    ('P06_MODELS_IN_PROGRESS', 'Số mô hình điểm Đề án 06 đang triển khai',
     'Project 06 pilot models in progress',
     'project06', 'count', 'stock', 'province', NULL, 'project06_tracker',
     'Number of pilot models of the current Project 06 tracker with status in_progress.'),
    ('P06_MODELS_NOT_STARTED', 'Số mô hình điểm Đề án 06 chưa triển khai',
     'Project 06 pilot models not started',
     'project06', 'count', 'stock', 'province', NULL, 'project06_tracker',
     'Number of pilot models of the current Project 06 tracker with status not_started.')
ON CONFLICT (indicator_code) DO UPDATE SET
    name_vi = EXCLUDED.name_vi, name_en = EXCLUDED.name_en, sector = EXCLUDED.sector,
    unit = EXCLUDED.unit, kind = EXCLUDED.kind, levels = EXCLUDED.levels,
    target_value = EXCLUDED.target_value, source_codes = EXCLUDED.source_codes,
    definition = EXCLUDED.definition;
