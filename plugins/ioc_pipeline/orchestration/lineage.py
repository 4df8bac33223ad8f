"""OpenLineage datasets of each task, named the way OpenLineage names them, so a lineage tool can
trace an indicator back to its sources.

The Airflow OpenLineage provider emits a START and a COMPLETE (or FAIL) event for every task of
every run; `IocTaskExtractor` (registered with `[openlineage] extractors`) tells it the datasets:

  ingest_<source>.extract / load_files   input:  the source, by its connection
  ingest_<source>.publish / load_files   inputs: the source; output: its core table
  refresh_ioc_views.refresh_views        inputs: every core table; outputs: mart.indicator_history
                                         and the ioc views that read it

Names (OpenLineage naming): a PostgreSQL table is namespace `postgres://host:port`, name
`database.schema.table` (the warehouse from connection `ioc_warehouse`, a SQL source from its
own connection); a REST source is namespace `<scheme>://host:port`, name its path; a landing
folder is namespace `file`, name `<folder>/<file pattern>`. Airflow Assets name the same core
tables with the standard `postgres://` URI of the warehouse's logical host, fixed at parse time
(config.warehouse_asset_uri).
"""
from __future__ import annotations

import logging

from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage
from openlineage.client.event_v2 import Dataset

from ioc_pipeline import config
from ioc_pipeline.declaration import catalog
from ioc_pipeline.declaration.catalog import Source

log = logging.getLogger(__name__)

# the ioc views refresh_ioc_views rewrites (views over mart.indicator_history)
IOC_VIEWS = ("ioc.indicator_values", "ioc.indicator_history")


def _postgres_namespace(params: config.PgParams) -> str:
    host = "localhost" if params.host.startswith("/") else params.host   # a Unix socket is this host
    return f"postgres://{host}:{params.port or 5432}"


def postgres_table(conn_id: str, qualified_table: str) -> Dataset:
    params = config.postgres_params(conn_id)
    schema, table = qualified_table.split(".", 1) if "." in qualified_table else ("public", qualified_table)
    return Dataset(namespace=_postgres_namespace(params), name=f"{params.dbname}.{schema}.{table}")


def warehouse_table(qualified_table: str) -> Dataset:
    return postgres_table(config.WAREHOUSE_CONN_ID, qualified_table)


def source_dataset(source: Source) -> Dataset:
    """The source as its connection names it."""
    if source.kind == "sql":
        from ioc_pipeline.extract.sql_source import table_of

        return postgres_table(source.connection, ".".join(table_of(source)))
    if source.kind == "rest":
        from urllib.parse import urlsplit

        from ioc_pipeline.extract.rest import endpoint_from_airflow_connection

        base = urlsplit(endpoint_from_airflow_connection(source.connection, source.path).base_url)
        port = base.port or (443 if base.scheme == "https" else 80)
        return Dataset(namespace=f"{base.scheme}://{base.hostname}:{port}", name=source.path)
    from ioc_pipeline.extract.file_source import landing_root

    return Dataset(namespace="file", name=f"{landing_root(source)}/{source.files.pattern}")


def task_lineage(dag_id: str, task_id: str) -> tuple[list[Dataset], list[Dataset]]:
    """(inputs, outputs) of one task of our DAGs; empty for tasks that move no data between datasets."""
    sources = catalog.load()
    if dag_id == "refresh_ioc_views":
        if task_id != "refresh_views":
            return [], []
        inputs = [warehouse_table(s.core_table) for s in sources.values()] + [warehouse_table("core.admin_unit")]
        return inputs, [warehouse_table("mart.indicator_history")] + [warehouse_table(v) for v in IOC_VIEWS]
    source = next((s for s in sources.values() if s.dag_id == dag_id), None)
    if source is None:
        return [], []
    if task_id == "extract":
        return [source_dataset(source)], []
    if task_id in ("publish", "load_files"):
        return [source_dataset(source)], [warehouse_table(source.core_table)]
    return [], []


class IocTaskExtractor(BaseExtractor):
    """The datasets of our @task tasks for the OpenLineage provider (task_lineage)."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["_PythonDecoratedOperator"]

    def _execute_extraction(self) -> OperatorLineage | None:
        try:
            inputs, outputs = task_lineage(self.operator.dag_id, self.operator.task_id)
        except Exception as exc:  # noqa: BLE001 - a missing connection must not fail the task: no lineage then
            log.warning("no lineage for %s.%s: %s", self.operator.dag_id, self.operator.task_id, exc)
            return OperatorLineage()
        return OperatorLineage(inputs=inputs, outputs=outputs)
