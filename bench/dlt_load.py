"""The dlt comparison of bench_ingest: the same rows loaded by dlt into the same PostgreSQL.

dlt's fastest PostgreSQL path for rows it does not have to normalise: pyarrow tables written
as `csv` load files, which its PostgreSQL destination loads with COPY, then merged on the
business key (`delete-insert`, which also keeps one row per key of the batch). No checks, no
pseudonymisation, no quarantine: it is a floor for a loader, not the same work as the pipeline's.

Three ways in:
- `load`: the rows from a local CSV file (every column a string). dlt does not pay for the
  extraction: the floor of its load alone.
- `load_sql`: the SQL source's window read from the source database by dlt's own `sql_table`
  (connectorx backend, typed Arrow columns), as the pipeline reads it.
- `load_rest`: the REST source's window paged from the simulator's API by dlt's `RESTClient`
  (bearer token, page numbers, one page at a time, as the pipeline pages).

Runs in a spawned child (benchlib.run_in_child) for its own peak RSS. dlt runs offline: its
telemetry is off and its home is a temporary folder.
"""
from __future__ import annotations

import datetime
import os
import time
from pathlib import Path

BATCH_ROWS = 200_000


def load(csv_path: str, wh_dsn: str, key: list[str], workdir: str) -> dict:
    """Load a CSV (header line, all text) through dlt; returns seconds and rows loaded."""
    dlt = _offline_dlt(wh_dsn, workdir)
    import pyarrow as pa
    from pyarrow import csv as pacsv

    def batches():
        with pacsv.open_csv(csv_path, read_options=pacsv.ReadOptions(block_size=16 << 20),
                            convert_options=pacsv.ConvertOptions(column_types=_all_text(csv_path),
                                                                 strings_can_be_null=True)) as reader:
            for batch in reader:
                yield pa.Table.from_batches([batch])

    resource = dlt.resource(batches, name="bench_rows", write_disposition="merge", primary_key=key,
                            file_format="csv")
    return _run(dlt, resource, workdir)


def load_sql(source_dsn: str, schema: str, table: str, watermark: str, window_end: str, wh_dsn: str,
             key: list[str], workdir: str, backend: str = "connectorx", chunk_size: int = BATCH_ROWS) -> dict:
    """The same window read from the source database by dlt's own SQL source (`sql_table`),
    merged on the key like `load`. Unlike `load`, dlt pays for the extraction, as the pipeline
    does. Its fastest backend here is connectorx (Arrow tables straight from the server's
    binary rows): 1M tuition rows in 22.5-23.4 s, against 25.8-27.4 s with the pyarrow backend
    at 50k or 200k rows a chunk (docs/performance.md, round 7)."""
    dlt = _offline_dlt(wh_dsn, workdir)
    from dlt.sources.sql_database import sql_table

    end = datetime.datetime.fromisoformat(window_end)

    def window(query, tbl):
        return query.where(tbl.c[watermark] < end)

    resource = sql_table(credentials=_url(source_dsn), schema=schema, table=table, backend=backend,
                         chunk_size=chunk_size, query_adapter_callback=window)
    resource.apply_hints(write_disposition="merge", primary_key=key, file_format="csv")
    return _run(dlt, resource, workdir)


def load_rest(base_url: str, path: str, params: dict, token: str, fields: list[str], wh_dsn: str, key: list[str],
              workdir: str) -> dict:
    """The same window paged from the source's REST API with dlt's own REST client (bearer token,
    page numbers up to the answer's total_pages, 1000 items a page, one page at a time as the
    pipeline pages), each page an Arrow table of text columns, merged on the key like `load`."""
    dlt = _offline_dlt(wh_dsn, workdir)
    import json
    import pyarrow as pa
    from dlt.sources.helpers.rest_client import RESTClient
    from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
    from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator

    text = pa.schema([(f, pa.string()) for f in fields])
    client = RESTClient(base_url=base_url, auth=BearerTokenAuth(token), data_selector="items",
                        paginator=PageNumberPaginator(base_page=1, page_param="page", total_path="total_pages"))

    def pages():
        for page in client.paginate(path, params={**params, "page_size": 1000}):
            columns = {f: [v if v is None or v.__class__ is str else json.dumps(v)
                           for v in (item.get(f) for item in page)] for f in fields}
            yield pa.Table.from_pydict(columns, schema=text)

    resource = dlt.resource(pages, name="bench_rows", write_disposition="merge", primary_key=key,
                            file_format="csv")
    return _run(dlt, resource, workdir)


def _offline_dlt(wh_dsn: str, workdir: str):
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ["DLT_DATA_DIR"] = str(Path(workdir) / "dlt-data")
    os.environ["DLT_PROJECT_DIR"] = str(Path(workdir) / "dlt-project")
    os.environ["DESTINATION__POSTGRES__CREDENTIALS"] = _url(wh_dsn)
    import dlt

    return dlt


def _run(dlt, resource, workdir: str) -> dict:
    """Run one resource into the warehouse's bench_dlt dataset; seconds and rows in its table."""
    pipeline = dlt.pipeline(pipeline_name="ioc_bench_dlt", destination="postgres", dataset_name="bench_dlt",
                            pipelines_dir=str(Path(workdir) / "dlt-pipelines"), progress=None)
    t = time.perf_counter()
    pipeline.run(resource, table_name="bench_rows", loader_file_format="csv")
    seconds = time.perf_counter() - t
    with pipeline.sql_client() as client:
        loaded = client.execute_sql("SELECT count(*) FROM bench_rows")[0][0]
    return {"dlt_s": seconds, "dlt_rows": loaded}


def _all_text(csv_path: str) -> dict:
    import pyarrow as pa

    with open(csv_path, encoding="utf-8-sig") as f:
        header = f.readline().rstrip("\r\n").split(",")
    return {name.strip('"'): pa.string() for name in header}


def _url(dsn: str) -> str:
    from psycopg2.extensions import parse_dsn

    p = parse_dsn(dsn)
    # dlt insists on a password; a server that trusts the local user ignores it
    auth = p.get("user", "postgres") + ":" + (p.get("password") or "unused")
    return f"postgresql://{auth}@{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/{p['dbname']}"
