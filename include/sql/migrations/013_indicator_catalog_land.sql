-- Indicators read from land (ioc_views.md, "Indicator catalog").
INSERT INTO mart.indicator_catalog
    (indicator_code, name_vi, name_en, sector, unit, kind, levels, target_value, source_codes, definition)
VALUES
    ('LAND_CERT_DIGITIZED_PCT', 'Tỷ lệ giấy chứng nhận quyền sử dụng đất đã số hóa', 'Land-use right certificates digitized',
     'land', 'percent', 'stock', 'province,commune', 100, 'land',
     'Land-use right certificates scanned and entered, over all certificates issued on or before the as-of date.'),
    ('LAND_CERT_CLEANED_PCT', 'Tỷ lệ giấy chứng nhận của cá nhân đã làm sạch dữ liệu chủ sử dụng', 'Personal land certificates with cleaned owner data',
     'land', 'percent', 'stock', 'province,commune', 100, 'land',
     'Certificates of owner kind person whose owner data is matched against the national population database, over all certificates of owner kind person issued on or before the as-of date.')
ON CONFLICT (indicator_code) DO UPDATE SET
    name_vi = EXCLUDED.name_vi, name_en = EXCLUDED.name_en, sector = EXCLUDED.sector,
    unit = EXCLUDED.unit, kind = EXCLUDED.kind, levels = EXCLUDED.levels,
    target_value = EXCLUDED.target_value, source_codes = EXCLUDED.source_codes,
    definition = EXCLUDED.definition;
