-- The as-of date ioc.indicator_values holds (the page's default date).
SELECT max(as_of_date) AS as_of_date FROM ioc.indicator_values;
