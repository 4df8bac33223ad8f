-- Every refreshed as-of date, newest first: one index probe per date (a loose index scan over
-- the history's primary key) instead of a DISTINCT over every row of a year of history.
WITH RECURSIVE d(as_of_date) AS (
    SELECT max(as_of_date) FROM ioc.indicator_history
    UNION ALL
    SELECT (SELECT max(h.as_of_date) FROM ioc.indicator_history h WHERE h.as_of_date < d.as_of_date)
      FROM d WHERE d.as_of_date IS NOT NULL
)
SELECT as_of_date FROM d WHERE as_of_date IS NOT NULL ORDER BY as_of_date DESC;
