-- The five best and five worst ranked communes of every indicator on %(as_of)s (the wall view).
SELECT indicator_code, admin_name, value, best, worst
  FROM (SELECT indicator_code, admin_name, value,
               row_number() OVER (PARTITION BY indicator_code ORDER BY value DESC, admin_name) AS best,
               row_number() OVER (PARTITION BY indicator_code ORDER BY value ASC, admin_name) AS worst
          FROM ioc.indicator_history
         WHERE as_of_date = %(as_of)s AND admin_level = 'commune' AND rank_in_province IS NOT NULL) r
 WHERE best <= 5 OR worst <= 5
 ORDER BY indicator_code, best;
