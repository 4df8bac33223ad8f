"""The process the file-source crash tests kill: `python -m tests.reliability.file_worker '<json spec>'`.

It does what a file DAG's `begin` and `load_files` tasks do, with the package's own code
(warehouse_helpers.run_file_deliveries: open the run, take the pending deliveries of the landing
folder, load each as its own batch). `pause_after` makes the file reader stall after that many
rows of a delivery, after writing the file `signal`: the staging COPY is then under way, with
data sent (like a slow disk or network share in the middle of a large file).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path


def stalling_batches(batches, pause_after: int, signal_file: str):
    """Record batches (file_source.CsvColumns) that stall once `pause_after` rows were read."""
    rows = 0
    for batch in batches:
        if rows >= pause_after:
            Path(signal_file).write_text("staging")
            time.sleep(600)  # the source stalls: the test kills us here
        rows += batch.num_rows
        yield batch


def main(spec: dict) -> None:
    from ioc_pipeline import warehouse
    from ioc_pipeline.extract import file_source
    from ioc_pipeline.ingest import row_workers
    from tests.integration.warehouse_helpers import run_file_deliveries
    from tests.reliability.worker import stalling

    if spec.get("pause_after") is not None:
        read, read_columns = file_source.read_items, file_source.read_columns

        def stalling_read(root, source, delivery):
            return stalling(read(root, source, delivery), spec["pause_after"], spec["signal"])

        def stalling_columns(root, source, delivery):
            columns = read_columns(root, source, delivery)
            columns.batches = stalling_batches(columns.batches, spec["pause_after"], spec["signal"])
            return columns

        # file_batches reads through the module attributes, a plain CSV column by column
        file_source.read_items, file_source.read_columns = stalling_read, stalling_columns
        file_source.COLUMNAR_BLOCK_BYTES = 64 * 1024   # record batches small against pause_after
    # chunks small against pause_after: at the pause all but the few in flight are in COPY
    row_workers.CHUNK_ROWS = 1000
    conn = warehouse.connect(spec["dsn"], application_name=os.environ["PGAPPNAME"])
    result = run_file_deliveries(conn, spec["dsn"], spec["source"], dt.date.fromisoformat(spec["as_of"]),
                                 spec["landing"], run_id=spec["run_id"], settle_seconds=60)
    print(result, flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
