SELECT indicator_code, name_vi, name_en, sector, unit, kind, levels, target_value, source_codes, definition
  FROM ioc.indicator_catalog
 ORDER BY indicator_code;
