-- The province's communes on %(as_of)s, by name (the commune index).
SELECT DISTINCT admin_code, admin_name
  FROM ioc.indicator_history
 WHERE as_of_date = %(as_of)s AND admin_level = 'commune'
 ORDER BY admin_name, admin_code;
