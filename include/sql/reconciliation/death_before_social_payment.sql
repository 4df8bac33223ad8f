-- requires: core.social_payments core.civil_status
-- Social payments made to a person whose death was registered BEFORE the payment date (a death
-- registered on the payment day itself is not flagged: the payment may precede the registration).
-- Joined on the keyed hash of the citizen ID; counted per 2025 commune of the payment, for
-- payments up to the as-of date in the IOC's province.
-- Output contract of every file in this folder: check_code, commune_code, rows_flagged,
-- persons_flagged. Params: as_of, province.
SELECT 'DEATH_BEFORE_SOCIAL_PAYMENT' AS check_code,
       p.commune_code_2025 AS commune_code,
       count(*) AS rows_flagged,
       count(DISTINCT p.beneficiary_cccd_hash) AS persons_flagged
  FROM core.social_payments p
  JOIN core.admin_unit u
    ON u.scheme = '2025' AND u.level = 'commune' AND u.code = p.commune_code_2025
   AND u.province_code = %(province)s
 WHERE p.paid_on <= %(as_of)s
   AND p.beneficiary_cccd_hash IS NOT NULL
   AND EXISTS (SELECT 1 FROM core.civil_status d
                WHERE d.registration_type = 'death'
                  AND d.subject_cccd_hash = p.beneficiary_cccd_hash
                  AND d.registered_on < p.paid_on)
 GROUP BY p.commune_code_2025
