"""Try an expectation suite before committing it (`make check-suite SOURCE=<code>`).

Stages a sample of the source (the whole current window of the configured connection, e.g. the
simulator's data) into a scratch staging table exactly as a batch would (same row building,
PII handling and dedupe), runs the suite file on it in PostgreSQL, and drops the table. Nothing
is published and no audit row is written.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from ioc_pipeline.ingest import runner, staging, validation
from ioc_pipeline.declaration.catalog import Source

SCRATCH_BATCH_ID = 0  # staging.<source>_b0: real batch ids start at 1


def check(conn, source: Source, as_of: dt.date, *, fetch, key: bytes, province_code: str,
          sqlalchemy_url: str, suite_path: Path | None = None) -> tuple[int, list[validation.ExpectationResult]]:
    """Return (rows staged, one result per expectation). Raises validation.SuiteError if the suite does not load."""
    suite = validation.load_suite(suite_path or source.suite_path)
    ses = runner.Session(conn, key=key, province_code=province_code, sqlalchemy_url=sqlalchemy_url)
    with runner.sample(ses, source, as_of, lambda window: fetch(window)[0], scratch_batch_id=SCRATCH_BATCH_ID) as (plan, rows):
        return rows, validation.validate_table(sqlalchemy_url, staging.SCHEMA, plan.staging_table, suite)


def format_results(results: list[validation.ExpectationResult]) -> list[str]:
    lines = []
    for r in results:
        what = r.type + (f"({r.column})" if r.column else "")
        if r.exception:
            verdict = f"ERROR  {r.exception}"
        elif r.success:
            verdict = "pass"
        else:
            n = r.unexpected_count if r.unexpected_count is not None else "?"
            action = ("quarantines" if r.row_level else "fails the batch") if r.severity == "critical" else "warns on"
            verdict = f"FAIL   {n} rows; {r.severity}: {action}" if r.row_level else f"FAIL   {r.severity}: {action}"
        lines.append(f"#{r.index:<3} {what:<70} {verdict}")
    return lines


def sample_fetcher(source: Source):
    """fetch(window) -> (items, total) over the configured connection: the whole window up to D+1,
    or, for a file source, its newest delivery named on or before D (read as a batch reads it)."""
    from ioc_pipeline.extract import fetchers, file_source

    def fetch(window):
        if source.kind != "file":
            return fetchers.fetcher_for(source, window)()
        root = file_source.landing_root(source)
        found = file_source.discover(root, source.files, dt.date.fromisoformat(window.as_of), settle_seconds=0)
        if not found:
            raise file_source.FileUnreadable(f"{source.code}: no delivery of {source.files.pattern} on or before "
                                             f"{window.as_of} in the landing folder")
        newest = max(found, key=lambda d: (d.named_date or "", d.mtime))
        print(f"{source.code}: sample = {newest.name}")
        return file_source.read_items(root, source, newest), (lambda: None)

    return fetch
