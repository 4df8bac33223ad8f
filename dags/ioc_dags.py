"""Project 06 IOC pipeline: the Airflow DAGs, one ingest DAG per sector source and
refresh_ioc_views.

Sources are declared in include/sources.yaml; the DAG shape lives in
plugins/ioc_pipeline/orchestration/dag_factory.py. This file only registers what the factory builds
(Airflow's safe-mode parser looks for the words "airflow" and "dag" in this file).
"""
from ioc_pipeline.orchestration.dag_factory import build_all

globals().update(build_all())
