"""The IOC operators' page (read-only): every indicator per province and commune, trends,
targets, freshness and data quality, read only from schema `ioc` through a login IN ROLE
ioc_reader. `python -m ioc_web --help`; `make web`."""
