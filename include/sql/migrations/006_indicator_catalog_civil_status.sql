-- Indicators read from civil_status (ioc_views.md, "Indicator catalog").
INSERT INTO mart.indicator_catalog
    (indicator_code, name_vi, name_en, sector, unit, kind, levels, target_value, source_codes, definition)
VALUES
    ('CIVIL_BOOK_DIGITIZED_PCT', 'Tỷ lệ sổ hộ tịch đã số hóa', 'Civil-status book entries digitized',
     'justice', 'percent', 'stock', 'province,commune', 100, 'civil_status',
     'Civil-status records whose paper book entry is digitized, over all civil-status records registered on or before the as-of date.'),
    ('CIVIL_SYNCED_PCT', 'Tỷ lệ dữ liệu hộ tịch đồng bộ về Bộ Tư pháp', 'Civil-status records synced to the Ministry of Justice',
     'justice', 'percent', 'stock', 'province,commune', 100, 'civil_status',
     'Civil-status records present in the Ministry of Justice electronic database, over all civil-status records registered on or before the as-of date.')
ON CONFLICT (indicator_code) DO UPDATE SET
    name_vi = EXCLUDED.name_vi, name_en = EXCLUDED.name_en, sector = EXCLUDED.sector,
    unit = EXCLUDED.unit, kind = EXCLUDED.kind, levels = EXCLUDED.levels,
    target_value = EXCLUDED.target_value, source_codes = EXCLUDED.source_codes,
    definition = EXCLUDED.definition;
