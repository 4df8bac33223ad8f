-- Cross-source reconciliation warnings of the latest date on or before %(as_of)s, with each
-- commune's name beside its code (ioc.data_quality_reconciliation carries the code only).
SELECT r.as_of_date, r.check_code, r.commune_code, n.admin_name, r.rows_flagged
  FROM ioc.data_quality_reconciliation r
  LEFT JOIN (SELECT DISTINCT admin_code, admin_name FROM ioc.indicator_history
              WHERE as_of_date = %(as_of)s AND admin_level = 'commune') n ON n.admin_code = r.commune_code
 WHERE r.as_of_date = (SELECT max(as_of_date) FROM ioc.data_quality_reconciliation WHERE as_of_date <= %(as_of)s)
 ORDER BY r.rows_flagged DESC, r.check_code, r.commune_code
 LIMIT 30;
