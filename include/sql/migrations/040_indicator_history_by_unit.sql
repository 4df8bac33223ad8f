-- The IOC page (ioc_web) reads one administrative unit's values over a year (trend lines of the
-- province and of one commune). The primary key leads with as_of_date, which makes such a read
-- walk every row of the year; this index finds them directly, value included so the read needs
-- no table row. ~1,800 rows a day to maintain.
CREATE INDEX IF NOT EXISTS indicator_history_by_unit
    ON mart.indicator_history (admin_level, admin_code, indicator_code, as_of_date) INCLUDE (value);
