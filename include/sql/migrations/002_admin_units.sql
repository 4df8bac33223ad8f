-- Administrative units of both schemes, loaded from the reference package
-- (vietnamadminunits, see plugins/ioc_pipeline/admin_units.py) right after the migrations.
-- Codes are text: leading zeros are part of the code.
CREATE TABLE IF NOT EXISTS core.admin_unit (
    scheme        text NOT NULL CHECK (scheme IN ('legacy', '2025')),
    level         text NOT NULL CHECK (level IN ('province', 'district', 'commune')),
    code          text NOT NULL,
    name          text NOT NULL,
    province_code text NOT NULL,
    district_code text,
    PRIMARY KEY (scheme, level, code)
);

-- Legacy commune -> 2025 commune (sources.md, "Administrative units"): a commune merged
-- whole maps to its new unit ('whole'); a divided one to the new unit the reference data
-- marks as its default ('divided_default').
CREATE TABLE IF NOT EXISTS core.commune_map_legacy_2025 (
    legacy_code text PRIMARY KEY,
    new_code    text NOT NULL,
    rule        text NOT NULL CHECK (rule IN ('whole', 'divided_default'))
);

-- Record date -> current (2025-scheme) commune code, or NULL when the code names no
-- commune in the scheme in force on that date.
CREATE OR REPLACE FUNCTION util.current_commune(p_code text, p_record_date date)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_code IS NULL OR p_record_date IS NULL THEN NULL
        WHEN p_record_date < DATE '2025-07-01' THEN
            (SELECT m.new_code FROM core.commune_map_legacy_2025 m WHERE m.legacy_code = p_code)
        ELSE
            (SELECT a.code FROM core.admin_unit a
              WHERE a.scheme = '2025' AND a.level = 'commune' AND a.code = p_code)
    END
$$;

-- Province (2025 scheme) of a current commune code.
CREATE OR REPLACE FUNCTION util.commune_province(p_code text)
RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT a.province_code FROM core.admin_unit a
     WHERE a.scheme = '2025' AND a.level = 'commune' AND a.code = p_code
$$;
