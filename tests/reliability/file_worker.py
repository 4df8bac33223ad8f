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


def main(spec: dict) -> None:
    from ioc_pipeline import warehouse
    from ioc_pipeline.extract import file_source
    from ioc_pipeline.ingest import row_workers
    from tests.integration.warehouse_helpers import run_file_deliveries
    from tests.reliability.worker import stalling

    if spec.get("pause_after") is not None:
        read = file_source.read_items

        def stalling_read(root, source, delivery):
            return stalling(read(root, source, delivery), spec["pause_after"], spec["signal"])

        file_source.read_items = stalling_read   # file_batches reads through the module attribute
    # chunks small against pause_after: at the pause all but the few in flight are in COPY
    row_workers.CHUNK_ROWS = 1000
    conn = warehouse.connect(spec["dsn"], application_name=os.environ["PGAPPNAME"])
    result = run_file_deliveries(conn, spec["dsn"], spec["source"], dt.date.fromisoformat(spec["as_of"]),
                                 spec["landing"], run_id=spec["run_id"], settle_seconds=60)
    print(result, flush=True)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
