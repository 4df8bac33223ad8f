-- Per indicator on %(as_of)s: how many communes are ranked (not no_data), for "rank r of n".
SELECT indicator_code, count(*) FILTER (WHERE rank_in_province IS NOT NULL) AS ranked,
       max(rank_in_province) AS last_rank
  FROM ioc.indicator_history
 WHERE as_of_date = %(as_of)s AND admin_level = 'commune'
 GROUP BY indicator_code;
