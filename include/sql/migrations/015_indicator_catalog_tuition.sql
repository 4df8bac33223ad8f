-- Indicator read from tuition (ioc_views.md, "Indicator catalog"). Flow: January 1 of the
-- as-of date's year to the as-of date, by the local (Asia/Ho_Chi_Minh) date of paid_at.
INSERT INTO mart.indicator_catalog
    (indicator_code, name_vi, name_en, sector, unit, kind, levels, target_value, source_codes, definition)
VALUES
    ('TUITION_NONCASH_PCT', 'Tỷ lệ thu học phí không dùng tiền mặt',
     'School fee payments made without cash',
     'education', 'percent', 'flow', 'province,commune', 100, 'tuition',
     'School fee payments by any channel other than cash (bank transfer, QR, card, e-wallet), over all payments made from January 1 to the as-of date.')
ON CONFLICT (indicator_code) DO UPDATE SET
    name_vi = EXCLUDED.name_vi, name_en = EXCLUDED.name_en, sector = EXCLUDED.sector,
    unit = EXCLUDED.unit, kind = EXCLUDED.kind, levels = EXCLUDED.levels,
    target_value = EXCLUDED.target_value, source_codes = EXCLUDED.source_codes,
    definition = EXCLUDED.definition;
