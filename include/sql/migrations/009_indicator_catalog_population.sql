-- Indicators read from population (ioc_views.md, "Indicator catalog").
INSERT INTO mart.indicator_catalog
    (indicator_code, name_vi, name_en, sector, unit, kind, levels, target_value, source_codes, definition)
VALUES
    ('CCCD_ISSUED_PCT', 'Tỷ lệ người từ 14 tuổi trở lên đã được cấp thẻ Căn cước công dân gắn chip',
     'Residents aged 14+ holding a chip citizen ID',
     'population', 'percent', 'stock', 'province,commune', 100, 'population',
     'Residents holding a chip citizen ID over residents aged 14 and over, from the latest valid snapshot of each commune on or before the as-of date.'),
    ('VNEID_L2_ACTIVE_PCT', 'Tỷ lệ người từ 14 tuổi trở lên đã kích hoạt tài khoản định danh điện tử mức 2',
     'Residents aged 14+ with an activated level-2 VNeID account',
     'population', 'percent', 'stock', 'province,commune', 80, 'population',
     'Residents with an activated level-2 VNeID account over residents aged 14 and over, from the latest valid snapshot of each commune on or before the as-of date.'),
    ('POPULATION_VERIFIED_PCT', 'Tỷ lệ dữ liệu dân cư đã được xác thực "đúng, đủ, sạch, sống"',
     'Population records verified correct, complete, clean and live',
     'population', 'percent', 'stock', 'province,commune', 100, 'population',
     'Population records confirmed correct, complete, clean and live over residents, from the latest valid snapshot of each commune on or before the as-of date.'),
    ('BHYT_VNEID_LINKED_PCT', 'Tỷ lệ thẻ bảo hiểm y tế đã tích hợp vào VNeID',
     'Health-insurance cards integrated into VNeID',
     'population', 'percent', 'stock', 'province,commune', 100, 'population',
     'Health-insurance holders whose card is integrated into VNeID over health-insurance holders, from the latest valid snapshot of each commune on or before the as-of date.')
ON CONFLICT (indicator_code) DO UPDATE SET
    name_vi = EXCLUDED.name_vi, name_en = EXCLUDED.name_en, sector = EXCLUDED.sector,
    unit = EXCLUDED.unit, kind = EXCLUDED.kind, levels = EXCLUDED.levels,
    target_value = EXCLUDED.target_value, source_codes = EXCLUDED.source_codes,
    definition = EXCLUDED.definition;
