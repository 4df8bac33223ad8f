-- Indicator read from health_visits (ioc_views.md, "Indicator catalog"). Flow: January 1 of the
-- as-of date's year to the as-of date, by the local (Asia/Ho_Chi_Minh) date of visit_at.
INSERT INTO mart.indicator_catalog
    (indicator_code, name_vi, name_en, sector, unit, kind, levels, target_value, source_codes, definition)
VALUES
    ('BHYT_CHIP_ID_VISITS_PCT', 'Tỷ lệ lượt khám chữa bệnh BHYT sử dụng thẻ CCCD gắn chip hoặc VNeID',
     'Health-insurance visits identified by chip citizen ID or VNeID QR code',
     'health', 'percent', 'flow', 'province,commune', 100, 'health_visits',
     'Health-insurance examinations whose patient was identified by chip citizen ID card or VNeID QR code, over all examinations from January 1 to the as-of date.')
ON CONFLICT (indicator_code) DO UPDATE SET
    name_vi = EXCLUDED.name_vi, name_en = EXCLUDED.name_en, sector = EXCLUDED.sector,
    unit = EXCLUDED.unit, kind = EXCLUDED.kind, levels = EXCLUDED.levels,
    target_value = EXCLUDED.target_value, source_codes = EXCLUDED.source_codes,
    definition = EXCLUDED.definition;
