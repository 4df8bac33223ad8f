"""Orchestration: the Airflow DAGs built from the catalog, as-of dates, notices, triggers."""
