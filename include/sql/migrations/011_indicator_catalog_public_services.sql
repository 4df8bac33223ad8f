-- Indicators read from public_services (ioc_views.md, "Indicator catalog"). Flow indicators:
-- January 1 of the as-of date's year to the as-of date, by local (Asia/Ho_Chi_Minh) date.
INSERT INTO mart.indicator_catalog
    (indicator_code, name_vi, name_en, sector, unit, kind, levels, target_value, source_codes, definition)
VALUES
    ('PUBLIC_SERVICE_ONLINE_PCT', 'Tỷ lệ hồ sơ trực tuyến của 25 dịch vụ công thiết yếu',
     'Essential public-service dossiers submitted online',
     'public_services', 'percent', 'flow', 'province,commune', 80, 'public_services',
     'Dossiers of the 25 essential online public services submitted online, over all such dossiers submitted from January 1 to the as-of date, withdrawn dossiers excluded from both.'),
    ('PUBLIC_SERVICE_ONTIME_PCT', 'Tỷ lệ hồ sơ giải quyết đúng hạn',
     'Dossiers completed on time',
     'public_services', 'percent', 'flow', 'province,commune', 95, 'public_services',
     'Completed dossiers whose completion is not later than their due time, over all dossiers completed from January 1 to the as-of date.'),
    ('PUBLIC_SERVICE_RESULT_DIGITIZED_PCT', 'Tỷ lệ số hóa kết quả giải quyết thủ tục hành chính',
     'Completed dossiers with a digitized result',
     'public_services', 'percent', 'flow', 'province,commune', 100, 'public_services',
     'Completed dossiers whose result document was digitized, over all dossiers completed from January 1 to the as-of date.')
ON CONFLICT (indicator_code) DO UPDATE SET
    name_vi = EXCLUDED.name_vi, name_en = EXCLUDED.name_en, sector = EXCLUDED.sector,
    unit = EXCLUDED.unit, kind = EXCLUDED.kind, levels = EXCLUDED.levels,
    target_value = EXCLUDED.target_value, source_codes = EXCLUDED.source_codes,
    definition = EXCLUDED.definition;
