-- Indicator read from social_payments (ioc_views.md, "Indicator catalog"). Flow: January 1 of
-- the as-of date's year to the as-of date, by paid_on.
INSERT INTO mart.indicator_catalog
    (indicator_code, name_vi, name_en, sector, unit, kind, levels, target_value, source_codes, definition)
VALUES
    ('SOCIAL_NONCASH_PCT', 'Tỷ lệ chi trả trợ cấp an sinh xã hội không dùng tiền mặt',
     'Social allowance payments made without cash',
     'social', 'percent', 'flow', 'province,commune', 100, 'social_payments',
     'Social allowance payments by bank transfer or e-wallet, over all payments (postal cash and cash included) made from January 1 to the as-of date.')
ON CONFLICT (indicator_code) DO UPDATE SET
    name_vi = EXCLUDED.name_vi, name_en = EXCLUDED.name_en, sector = EXCLUDED.sector,
    unit = EXCLUDED.unit, kind = EXCLUDED.kind, levels = EXCLUDED.levels,
    target_value = EXCLUDED.target_value, source_codes = EXCLUDED.source_codes,
    definition = EXCLUDED.definition;
