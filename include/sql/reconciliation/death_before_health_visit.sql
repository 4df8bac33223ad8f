-- requires: core.health_visits core.civil_status
-- Health-insurance visits by a person whose death was registered BEFORE the (local) visit date;
-- a visit on the day of the registration is not flagged. Joined on the keyed hash of the
-- citizen ID (visits identified by insurance card only cannot be matched); counted per 2025
-- commune of the visit, for visits up to the as-of date in the IOC's province.
-- Params: as_of, province.
SELECT 'DEATH_BEFORE_HEALTH_VISIT' AS check_code,
       v.commune_code_2025 AS commune_code,
       count(*) AS rows_flagged,
       count(DISTINCT v.patient_cccd_hash) AS persons_flagged
  FROM core.health_visits v
  JOIN core.admin_unit u
    ON u.scheme = '2025' AND u.level = 'commune' AND u.code = v.commune_code_2025
   AND u.province_code = %(province)s
 WHERE v.visit_on <= %(as_of)s
   AND v.patient_cccd_hash IS NOT NULL
   AND EXISTS (SELECT 1 FROM core.civil_status d
                WHERE d.registration_type = 'death'
                  AND d.subject_cccd_hash = v.patient_cccd_hash
                  AND d.registered_on < v.visit_on)
 GROUP BY v.commune_code_2025
