"""Write-audit-publish for one source batch.

    begin  -> audit rows (run, batch), window from the watermark, empty staging table
    extract-> source rows streamed through rows.row_builder into staging with COPY
    dedupe -> exact duplicates and superseded versions removed (latest updated_at, then
              the later row in source order, wins), in SQL
    validate -> the source's GX suite run in PostgreSQL; every result kept in
              audit.validation_result; failing rows of critical row-level expectations
              listed in a rejects table; batch-level critical failures and a quarantine
              share above the source's threshold fail the batch
    publish-> quarantine rows, merge into the core table, audit ledger, watermark and run
              status in ONE transaction
    cleanup-> staging dropped, whatever happened

Each step takes and returns plain data (a BatchPlan), so Airflow tasks can pass it through
XCom and run on different workers: everything in between lives in the warehouse. The order of
the steps, and what happens when one fails, is written once in ingest/runner.py.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from psycopg2 import sql
from psycopg2.extras import Json

from ioc_pipeline import failure_text, progress, warehouse
from ioc_pipeline.errors import BatchFailed, NotColumnar
from ioc_pipeline.extract.window import Window
from ioc_pipeline.personal_data import pii
from ioc_pipeline.ingest import merge, row_workers, rows, staging
from ioc_pipeline.declaration.catalog import Source

log = logging.getLogger(__name__)


@dataclasses.dataclass
class BatchPlan:
    source_code: str
    run_key: str
    batch_id: int
    as_of_date: str
    province_code: str
    staging_table: str
    window_start: str | None = None   # ISO timestamps with offset
    window_end: str | None = None
    empty_window: bool = False
    file_name: str | None = None      # file sources: the delivery this batch loads
    file_date: str | None = None      # its named date (None: undated, e.g. the tracker)

    @property
    def window(self) -> Window:
        """What the extractor is asked for."""
        return Window(self.window_start, self.window_end, self.as_of_date, self.province_code)

    def to_xcom(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_xcom(cls, data: dict) -> BatchPlan:
        return cls(**data)


@dataclasses.dataclass
class ExtractStats:
    rows_read: int
    distinct_keys: int | None   # counted here only against a source's own total; else by dedupe
    checksum: str
    extra_columns: list[str]


# ----------------------------------------------------------------------------- begin

def check_pii_key(cur, key: bytes) -> None:
    """Refuse to run with a key other than the one the warehouse was filled with."""
    fp = pii.key_fingerprint(key)
    # Serialise first use: ingest DAGs starting together on a fresh warehouse (parallel workers)
    # must agree on one key, not race to insert two.
    cur.execute("LOCK TABLE audit.pii_key IN SHARE ROW EXCLUSIVE MODE")
    cur.execute("SELECT fingerprint FROM audit.pii_key")
    known = [r[0] for r in cur.fetchall()]
    if not known:
        cur.execute("INSERT INTO audit.pii_key (fingerprint) VALUES (%s)", (fp,))
    elif fp not in known:
        raise BatchFailed(
            "ioc_pii_key differs from the key the warehouse was filled with: hashes would no longer "
            "join; restore the old key (or re-pseudonymise deliberately), nothing was loaded"
        )


def register_source(cur, source: Source) -> None:
    cur.execute(
        """INSERT INTO audit.source (source_code, kind, sector, cadence_days, quarantine_threshold)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (source_code) DO UPDATE SET kind = EXCLUDED.kind, sector = EXCLUDED.sector,
               cadence_days = EXCLUDED.cadence_days, quarantine_threshold = EXCLUDED.quarantine_threshold""",
        (source.code, source.kind, source.sector, source.cadence_days, source.quarantine_threshold),
    )


def open_run(conn, source: Source, dag_run_id: str, as_of: dt.date, *, key: bytes) -> str:
    """Open (or reopen, on a retry) the source's run; returns its run key. A refused key is
    recorded as a failed run (ioc.source_freshness shows it) before it is raised."""
    run_key = f"{source.code}/{dag_run_id}"
    try:
        with warehouse.transaction(conn) as cur:
            check_pii_key(cur, key)
    except BatchFailed as exc:
        record_failed_run(conn, source, dag_run_id, as_of, str(exc))
        raise
    with warehouse.transaction(conn) as cur:
        register_source(cur, source)
        # A run left 'running' by a killed worker never committed anything: say so.
        cur.execute(
            """UPDATE audit.source_run SET status = 'failed', finished_at = clock_timestamp(),
                      error = 'abandoned: the worker stopped before the run finished', error_detail = NULL
                WHERE source_code = %s AND status = 'running' AND run_key <> %s""",
            (source.code, run_key),
        )
        abandon_running_batches(cur, source)
        cur.execute(
            """INSERT INTO audit.source_run (run_key, source_code, dag_run_id, as_of_date, status)
               VALUES (%s, %s, %s, %s, 'running')
               ON CONFLICT (run_key) DO UPDATE SET status = 'running', started_at = clock_timestamp(),
                   finished_at = NULL, error = NULL, error_detail = NULL, rows_loaded = 0, rows_quarantined = 0""",
            (run_key, source.code, dag_run_id, as_of),
        )
    return run_key


def abandon_running_batches(cur, source: Source, run_key: str | None = None) -> list[int]:
    """Batches still 'running' (of the source, or of one run) were left by a killed worker: they
    committed nothing. Mark them failed (and their file-ledger rows), and drop their staging,
    which no teardown dropped (it holds hashed IDs and masks). Returns their ids."""
    cur.execute(
        """UPDATE audit.batch SET status = 'failed', finished_at = clock_timestamp(),
                  error = 'abandoned: the worker stopped before the batch finished', error_detail = NULL
            WHERE source_code = %s AND status = 'running' AND (%s::text IS NULL OR run_key = %s)
        RETURNING batch_id""",
        (source.code, run_key, run_key),
    )
    abandoned = [r[0] for r in cur.fetchall()]
    for batch_id in abandoned:
        staging.drop(cur, staging.table_name(source, batch_id))
        staging.drop(cur, f"{staging.table_name(source, batch_id)}_rejects")
    if abandoned:
        cur.execute("UPDATE audit.file_delivery SET status = 'failed' WHERE batch_id = ANY(%s) AND status = 'running'",
                    (abandoned,))
        log.warning("%s: batch(es) %s abandoned by a stopped worker marked failed, staging dropped",
                    source.code, ", ".join(map(str, abandoned)))
    return abandoned


def record_failed_run(conn, source: Source, dag_run_id: str, as_of: dt.date, error: str) -> None:
    """A run that failed before it could open (refused key, broken setting): recorded as failed,
    so ioc.source_freshness shows it instead of the last success."""
    with warehouse.transaction(conn) as cur:
        register_source(cur, source)
        cur.execute(
            """INSERT INTO audit.source_run (run_key, source_code, dag_run_id, as_of_date, status, finished_at,
                                             error, error_detail)
               VALUES (%s, %s, %s, %s, 'failed', clock_timestamp(), %s, %s)
               ON CONFLICT (run_key) DO UPDATE SET status = 'failed', finished_at = clock_timestamp(),
                   error = EXCLUDED.error, error_detail = EXCLUDED.error_detail""",
            (f"{source.code}/{dag_run_id}", source.code, dag_run_id, as_of,
             failure_text.short(error) or "unknown error", failure_text.full(error)))


def open_batch(conn, source: Source, run_key: str, as_of: dt.date, *, province_code: str, batch_name: str,
               window_start: dt.datetime | None = None, window_end: dt.datetime | None = None,
               empty_window: bool = False, delivery=None) -> BatchPlan:
    """Record a batch of the run and create its staging table. `delivery` (a file source's
    extract.file_source.Delivery) is entered in the file ledger in the same transaction."""
    with warehouse.transaction(conn) as cur:
        cur.execute(
            """INSERT INTO audit.batch (source_code, run_key, as_of_date, batch_name, window_start, window_end, status)
               VALUES (%s, %s, %s, %s, %s, %s, 'running') RETURNING batch_id""",
            (source.code, run_key, as_of, batch_name, window_start, window_end),
        )
        batch_id = cur.fetchone()[0]
        if delivery is not None:
            cur.execute(
                """INSERT INTO audit.file_delivery (source_code, file_name, checksum, size_bytes, modified_at,
                       named_date, batch_id, status)
                   VALUES (%s, %s, %s, %s, to_timestamp(%s), %s, %s, 'running')""",
                (source.code, delivery.name, delivery.checksum, delivery.size, delivery.mtime,
                 delivery.named_date, batch_id),
            )
        table = staging.create(cur, source, batch_id)
    plan = BatchPlan(
        source_code=source.code, run_key=run_key, batch_id=batch_id, as_of_date=as_of.isoformat(),
        province_code=province_code, staging_table=table,
        window_start=window_start.isoformat() if window_start else None,
        window_end=window_end.isoformat() if window_end else None, empty_window=empty_window,
        file_name=delivery.name if delivery else None, file_date=delivery.named_date if delivery else None,
    )
    log.info("batch %s of %s: %s, staging %s.%s", batch_id, source.code, batch_name, staging.SCHEMA, table)
    return plan


def begin(conn, source: Source, dag_run_id: str, as_of: dt.date, *, key: bytes, province_code: str,
          batch_name: str | None = None, replay_batch: int | None = None) -> BatchPlan:
    """Open the run and its one batch (REST and SQL sources): the window runs from the committed
    watermark to D+1 00:00 +07:00. `replay_batch` reads again the window of that earlier batch
    (after the source fixed its quarantined rows); the watermark never moves back."""
    from ioc_pipeline.orchestration.asof import window_end as end_of

    run_key = open_run(conn, source, dag_run_id, as_of, key=key)
    window_start = window_end = None
    empty = False
    if source.watermark:
        with warehouse.transaction(conn) as cur:
            if replay_batch is not None:
                cur.execute("SELECT window_start, window_end FROM audit.batch WHERE batch_id = %s AND source_code = %s"
                            " AND window_end IS NOT NULL", (replay_batch, source.code))
                found = cur.fetchone()
                if found is None:
                    raise BatchFailed(f"{source.code}: no windowed batch {replay_batch} of this source to replay")
                window_start, window_end = found
            else:
                cur.execute("SELECT watermark FROM audit.watermark WHERE source_code = %s", (source.code,))
                found = cur.fetchone()
                window_end = end_of(as_of)
                window_start = found[0] if found else None
                empty = window_start is not None and window_start >= window_end
    elif replay_batch is not None:
        raise BatchFailed(f"{source.code}: only windowed sources replay a batch; re-run its as-of date instead")
    name = batch_name or (
        f"[{window_start.isoformat() if window_start else '-inf'}, {window_end.isoformat()})"
        + (f" replay of batch {replay_batch}" if replay_batch is not None else "")
        if window_end else as_of.isoformat()
    )
    return open_batch(conn, source, run_key, as_of, province_code=province_code, batch_name=name,
                      window_start=window_start, window_end=window_end, empty_window=empty)


# ----------------------------------------------------------------------------- extract

def stage_items(conn, source: Source, plan: BatchPlan, items: Iterable[dict], *, key: bytes) -> tuple[int, str, set[str], set[str]]:
    """COPY items into the (emptied) staging table. Returns rows, checksum, fields seen, extra keys."""
    build = rows.row_builder(source, key, plan.as_of_date, plan.province_code)
    known = set(source.field_names) | ({rows.CELL_ERRORS} if source.kind == "file" else set())
    seen: set[str] = set()
    extra: set[str] = set()
    counted = progress.Progress(log, f"{source.code} batch {plan.batch_id}: staging")
    with warehouse.transaction(conn) as cur:
        staging.truncate(cur, plan.staging_table)
        writer = staging.CopyWriter(cur, plan.staging_table, rows.staging_columns(source))
        try:
            with row_workers.Encoder(build, writer) as encoder:
                for item in items:
                    if not isinstance(item, dict):
                        raise BatchFailed(f"{source.code}: the source sent a non-object item ({type(item).__name__})")
                    keys = item.keys()
                    seen.update(keys)
                    if not keys <= known:
                        extra.update(_column_label(k) for k in keys if k not in known)
                    encoder.add(item)
                    counted.add()
                encoder.finish()
            writer.flush()
        except BaseException:
            writer.abandon()
            raise
    counted.done()
    return writer.rows, writer.checksum, seen & set(source.field_names), extra


def stage_columns(conn, source: Source, plan: BatchPlan, delivery, *, key: bytes) -> tuple[int, str, set[str], set[str]]:
    """COPY a CSV delivery read column by column (file_source.CsvColumns) into the (emptied)
    staging table: the same rows, bytes and checksum as stage_items on the same file. Raises
    NotColumnar, with nothing staged, when the file must be read row by row."""
    from ioc_pipeline.ingest import columnar  # lazy: pyarrow only for a file batch

    encoder = columnar.ColumnEncoder(source, key, plan.as_of_date, plan.province_code)
    counted = progress.Progress(log, f"{source.code} batch {plan.batch_id}: staging")
    with warehouse.transaction(conn) as cur:
        staging.truncate(cur, plan.staging_table)
        writer = staging.CopyWriter(cur, plan.staging_table, rows.staging_columns(source))
        try:
            for batch in delivery.batches:
                writer.write_bytes(encoder.encode(batch, delivery.columns), batch.num_rows)
                counted.add(batch.num_rows)
            writer.flush()
        except BaseException:
            writer.abandon()
            raise
    counted.done()
    named = {h for h in delivery.header if h}
    if not writer.rows:   # as stage_items: the header's names count only with a row
        return 0, writer.checksum, set(), set()
    known = set(source.field_names)
    return writer.rows, writer.checksum, named & known, {_column_label(h) for h in named - known}


_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ .-]{0,62}")


def _column_label(name) -> str:
    """An unknown column's name as recorded for schema drift: hostile names (values pasted into
    a header, control characters, a personal ID) are not copied into the audit tables."""
    name = str(name)
    return name if _COLUMN_NAME.fullmatch(name) and not re.search(r"[0-9]{9}", name) else "<unprintable name>"


def count_keys(conn, source: Source, plan: BatchPlan) -> int:
    """Distinct business keys staged (rows without a key count one each)."""
    key_cols = sql.SQL(", ").join(map(sql.Identifier, source.key))
    null_test = sql.SQL(" OR ").join(sql.SQL("{} IS NULL").format(sql.Identifier(k)) for k in source.key)
    with warehouse.transaction(conn) as cur:
        cur.execute(sql.SQL(
            "SELECT (SELECT count(*) FROM (SELECT DISTINCT {k} FROM {t} WHERE NOT ({n})) d)"
            " + (SELECT count(*) FROM {t} WHERE {n})"
        ).format(k=key_cols, n=null_test, t=sql.Identifier(staging.SCHEMA, plan.staging_table)))
        return cur.fetchone()[0]


def extract(conn, source: Source, plan: BatchPlan, fetch: Callable[[], tuple[Iterator[dict], Callable[[], int | None]]],
            *, key: bytes, max_extractions: int = 3) -> ExtractStats:
    """Stage one extraction of the batch, again (up to `max_extractions`) when the source's own
    total says keys were skipped (a record updated during the extraction moves between pages).

    `fetch()` returns (items, total) where total() is the source's own distinct-key count once
    the items are consumed (None when the source gives none).
    """
    if (copy_to := getattr(fetch, "copy_to", None)) is not None:  # database to database (SQL sources)
        extra: list[str] = []

        def produce(write) -> None:
            extra.extend(copy_to(write, redacted=rows.REDACTED, whitespace=rows.WHITESPACE,
                                 native=staging.native_fields(source)))

        with warehouse.transaction(conn) as cur:
            staging.truncate(cur, plan.staging_table)
            columns = [*rows.staging_columns(source), *staging.native_columns(source)]
            n, checksum = staging.copy_from_stream(cur, plan.staging_table, columns, produce,
                                                   staging.copy_text_transform(source, key))
        log.info("%s: staged %d rows", source.code, n)
        return ExtractStats(n, None, checksum, sorted(_column_label(c) for c in extra))
    if (read_columns := getattr(fetch, "read_columns", None)) is not None:  # a plain CSV file
        try:
            n, checksum, _, extra = stage_columns(conn, source, plan, read_columns(), key=key)
        except NotColumnar as exc:
            log.info("%s: the file is read row by row: %s", source.code, exc)
        else:
            log.info("%s: staged %d rows (read column by column)", source.code, n)
            return ExtractStats(n, None, checksum, sorted(extra))
    for attempt in range(1, max_extractions + 1):
        items, total = fetch()
        n, checksum, seen, extra = stage_items(conn, source, plan, items, key=key)
        if n and (missing := [f for f in source.field_names if f not in seen]):
            raise BatchFailed(f"{source.code}: column(s) missing from the delivery: {', '.join(missing)}")
        expected = total()
        if expected is None:  # nothing to check the keys against: dedupe counts them
            log.info("%s: staged %d rows", source.code, n)
            return ExtractStats(n, None, checksum, sorted(extra))
        distinct = count_keys(conn, source, plan)
        if distinct >= expected:
            log.info("%s: staged %d rows, %d distinct keys (source total %s)", source.code, n, distinct, expected)
            return ExtractStats(n, distinct, checksum, sorted(extra))
        log.warning("%s: extraction %d/%d got %d distinct keys, the source reported %d; extracting the window again",
                    source.code, attempt, max_extractions, distinct, expected)
    raise BatchFailed(
        f"{source.code}: {distinct} distinct keys received, the source reported {expected}, "
        f"after {max_extractions} extractions of the window; nothing was loaded"
    )


def record_extract(conn, plan: BatchPlan, stats: ExtractStats) -> None:
    """What arrived (distinct keys: dedupe records them)."""
    with warehouse.transaction(conn) as cur:
        cur.execute(
            "UPDATE audit.batch SET rows_read = %s, checksum = %s, extra_columns = %s WHERE batch_id = %s",
            (stats.rows_read, stats.checksum, stats.extra_columns or None, plan.batch_id),
        )


def dedupe(conn, source: Source, plan: BatchPlan) -> tuple[int, int]:
    """Keep one version per key: latest updated_at (a valid timestamp beats none), then the later
    row in source order. Rows without a key are kept (validation quarantines them). The same
    statement adds the batch's typed columns (staging.rebuild_typed), which suites and merges read.
    The rows kept are the batch's distinct keys (count_keys' definition: a row without a key
    counts one; no second pass over the batch to count them), recorded on the batch in the same
    transaction (a scratch batch of a suite check has no audit row). Returns (rows removed,
    distinct keys)."""
    with warehouse.transaction(conn) as cur:
        removed, kept = staging.rebuild_typed(cur, source, plan.staging_table, dedupe=True)
        cur.execute("UPDATE audit.batch SET distinct_keys = %s WHERE batch_id = %s", (kept, plan.batch_id))
    log.info("%s: %d distinct keys%s", source.code, kept,
             f"; {removed} duplicate or superseded rows removed before validation" if removed else "")
    return removed, kept


# ----------------------------------------------------------------------------- validate

SCHEMA_DRIFT = "schema_drift_extra_columns"
SCHEMA_DRIFT_INDEX = -1  # the pipeline's own batch-level check, beside the suite's expectations


def _record_schema_drift(cur, source: Source, plan: BatchPlan) -> None:
    """Unknown extra columns (sources.md: schema drift) are loaded without and reported as a
    failed WARNING result of the batch, with the validation results analysts read."""
    cur.execute("SELECT extra_columns FROM audit.batch WHERE batch_id = %s", (plan.batch_id,))
    extra = (cur.fetchone() or [None])[0]
    if not extra:
        return
    cur.execute(
        """INSERT INTO audit.validation_result (batch_id, source_code, expectation_index, expectation_type,
               column_name, severity, row_level, success, observed_value, unexpected_count, reason)
           VALUES (%s, %s, %s, %s, NULL, 'warning', false, false, %s, %s, %s)""",
        (plan.batch_id, source.code, SCHEMA_DRIFT_INDEX, SCHEMA_DRIFT, Json(sorted(extra)), len(extra),
         "the source sent column(s) the contract does not name (schema drift): loaded without them"))
    log.warning("%s batch %s: schema drift, unknown column(s) %s recorded as a warning result",
                source.code, plan.batch_id, ", ".join(sorted(extra)))


KEY_MAX_LENGTH = 200          # characters; no source system issues longer keys
OVERSIZED_KEY = "business_key_too_long"
OVERSIZED_KEY_INDEX = -2


def _reject_oversized_keys(cur, source: Source, plan: BatchPlan, rejects: str) -> None:
    """A storage limit, not a business rule (so not in the analysts' suites): a key longer than
    KEY_MAX_LENGTH would break the core table's primary-key index and fail the whole batch.
    Such rows are quarantined like a critical row-level failure, and the check is recorded."""
    t = sql.Identifier(staging.SCHEMA, plan.staging_table)
    too_long = sql.SQL(" OR ").join(sql.SQL("length({}) > {}").format(sql.Identifier(k), sql.Literal(KEY_MAX_LENGTH))
                                    for k in source.key)
    reason = f"business key longer than {KEY_MAX_LENGTH} characters"
    cur.execute(sql.SQL(
        "INSERT INTO {rj} (_row_id, expectation_index, expectation_type, column_name, reason)"
        " SELECT _row_id, %s, %s, %s, %s FROM {t} WHERE {too_long}"
    ).format(rj=sql.Identifier(staging.SCHEMA, rejects), t=t, too_long=too_long),
        (OVERSIZED_KEY_INDEX, OVERSIZED_KEY, source.key[0], reason))
    if cur.rowcount:
        cur.execute(
            """INSERT INTO audit.validation_result (batch_id, source_code, expectation_index, expectation_type,
                   column_name, severity, row_level, success, unexpected_count, reason)
               VALUES (%s, %s, %s, %s, %s, 'critical', true, false, %s, %s)""",
            (plan.batch_id, source.code, OVERSIZED_KEY_INDEX, OVERSIZED_KEY, source.key[0], cur.rowcount, reason))


VOLUME_COLLAPSE = "volume_collapse"
VOLUME_COLLAPSE_INDEX = -3
VOLUME_BASELINE_BATCHES = 7     # the source's recent non-empty committed batches
VOLUME_MIN_BASELINE = 3         # fewer than this: no judgement yet
VOLUME_COLLAPSE_SHARE = 0.1     # below a tenth of their median distinct keys: a collapse


def _record_volume_collapse(cur, source: Source, plan: BatchPlan) -> None:
    """sources.md: a collapse in volume against the source's recent non-empty batches is a
    WARNING only (incremental windows are small by nature): recorded as a failed warning result."""
    cur.execute(
        """SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY distinct_keys), count(*)
             FROM (SELECT distinct_keys FROM audit.batch
                    WHERE source_code = %s AND status = 'committed' AND distinct_keys > 0 AND batch_id < %s
                    ORDER BY batch_id DESC LIMIT %s) recent""",
        (source.code, plan.batch_id, VOLUME_BASELINE_BATCHES))
    median, n = cur.fetchone()
    if n < VOLUME_MIN_BASELINE:
        return
    cur.execute("SELECT coalesce(distinct_keys, 0) FROM audit.batch WHERE batch_id = %s", (plan.batch_id,))
    distinct = cur.fetchone()[0]
    if distinct >= VOLUME_COLLAPSE_SHARE * median:
        return
    cur.execute(
        """INSERT INTO audit.validation_result (batch_id, source_code, expectation_index, expectation_type,
               column_name, severity, row_level, success, observed_value, reason)
           VALUES (%s, %s, %s, %s, NULL, 'warning', false, false, %s, %s)""",
        (plan.batch_id, source.code, VOLUME_COLLAPSE_INDEX, VOLUME_COLLAPSE,
         Json({"distinct_keys": distinct, "recent_median": float(median), "recent_batches": n}),
         (f"volume collapse: {distinct} distinct keys against a median of {median:g} in the source's "
          f"last {n} non-empty batches (a warning only)")))
    log.warning("%s batch %s: volume collapse, %d distinct keys against a recent median of %g",
                source.code, plan.batch_id, distinct, median)


SAMPLE_ROWS = 5   # failing rows kept with each expectation result (Data Docs, check-suite)


def sample_failing_rows(cur, source: Source, table: str, results) -> dict[int, list[dict]]:
    """Up to SAMPLE_ROWS failing rows of each result that names rows, by expectation index:
    business key and the judged field as quarantine shows it (personal IDs by their mask only).

    One join over the staged table for every result: a lookup per result would scan a 1M-row
    batch once per failing expectation (15 s of tuition's 25 s validate step at 1M rows)."""
    wanted = [(r.index, row_id, r.column) for r in results for row_id in sorted(r.failing_row_ids)[:SAMPLE_ROWS]]
    if not wanted:
        return {}
    idx, row_ids, columns = (list(x) for x in zip(*wanted))
    value = masked_value_sql(source, sql.SQL("u._sample_column"))
    # u's column names cannot meet a source field's (the key expression names fields unqualified)
    cur.execute(sql.SQL(
        "SELECT u._sample_index, {key}, left({value}, 100)"
        "  FROM unnest(%s::int[], %s::bigint[], %s::text[]) AS u(_sample_index, _sample_row_id, _sample_column)"
        "  JOIN {t} s ON s._row_id = u._sample_row_id ORDER BY u._sample_index, u._sample_row_id"
    ).format(key=business_key_sql(source), value=value, t=sql.Identifier(staging.SCHEMA, table)),
        (idx, row_ids, columns))
    samples: dict[int, list[dict]] = {}
    for index, key, val in cur.fetchall():
        samples.setdefault(index, []).append({"key": key, "value": val})
    return samples


def rejects_table(plan: BatchPlan) -> str:
    return f"{plan.staging_table}_rejects"


def verdict_failures(source: Source, results, quarantined: int, distinct: int) -> list[str]:
    """Why the batch fails (empty: it commits): a critical or batch-level expectation that could
    not run, a critical batch-level one that failed, a quarantine share over the threshold."""
    failures = []
    for r in results:
        label = f"#{r.index} {r.type}" + (f"({r.column})" if r.column else "")
        if r.exception and (r.severity == "critical" or not r.row_level):
            failures.append(f"{label} could not run: {r.exception}")
        elif not r.success and r.severity == "critical" and not r.row_level:
            failures.append(f"{label} failed (observed {json.dumps(r.observed_value, default=str)[:120]})")
    share = quarantined / distinct if distinct else 0.0
    if share > source.quarantine_threshold:
        failures.append(f"quarantine share {share:.1%} of {distinct} keys exceeds the threshold {source.quarantine_threshold:.0%}")
    return failures


def import_validation():
    """The validation module with the library it runs the suites with (GX): about 2 s of one
    core to import, so only the task that validates imports it."""
    from ioc_pipeline.ingest import validation

    return validation


def dedupe_and_load_validation(conn, source: Source, plan: BatchPlan) -> tuple[int, int]:
    """dedupe(), while this process imports the validation module: the server's work and the
    import (once per process) overlap on two cores instead of following each other (tuition at
    1M rows: dedupe about 3 s, the import about 2 s). Returns what dedupe returns."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dedupe") as pool:
        deduped = pool.submit(dedupe, conn, source, plan)
        try:
            import_validation()  # in this thread: an import may install signal handlers
        finally:
            result = deduped.result()  # the connection is this thread's again
    return result


def validate(conn, source: Source, plan: BatchPlan, *, sqlalchemy_url: str) -> dict:
    """Run the suite in the database; keep every result; list failing rows; decide the batch."""
    validation = import_validation()

    suite = validation.load_suite(source.suite_path)
    with warehouse.transaction(conn) as cur:
        cur.execute("SELECT rows_read FROM audit.batch WHERE batch_id = %s", (plan.batch_id,))
        staged = (cur.fetchone() or [None])[0]
    with progress.heartbeat(log, f"{source.code} batch {plan.batch_id}: validation ({len(suite.specs)} expectations)",
                            rows=staged):
        results = validation.validate_table(sqlalchemy_url, staging.SCHEMA, plan.staging_table, suite)
    specs = {s.index: s for s in suite.specs}
    rejects = rejects_table(plan)
    with warehouse.transaction(conn) as cur:
        cur.execute("DELETE FROM audit.validation_result WHERE batch_id = %s", (plan.batch_id,))
        samples = sample_failing_rows(cur, source, plan.staging_table, results)
        for r in results:
            sample = samples.get(r.index)
            cur.execute(
                """INSERT INTO audit.validation_result (batch_id, source_code, expectation_index, expectation_type,
                       column_name, severity, row_level, success, observed_value, element_count, unexpected_count,
                       reason, exception, kwargs, sample_rows)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (plan.batch_id, source.code, r.index, r.type, r.column, r.severity, r.row_level, r.success,
                 Json(r.observed_value), r.element_count, r.unexpected_count,
                 specs[r.index].meta.get("reason"), r.exception, Json(specs[r.index].kwargs),
                 Json(sample) if sample else None),
            )
        _record_schema_drift(cur, source, plan)
        _record_volume_collapse(cur, source, plan)
        staging.drop(cur, rejects)
        cur.execute(sql.SQL(
            "CREATE UNLOGGED TABLE {} (_row_id bigint NOT NULL, expectation_index integer NOT NULL,"
            " expectation_type text NOT NULL, column_name text, reason text)"
        ).format(sql.Identifier(staging.SCHEMA, rejects)))
        writer = staging.CopyWriter(cur, rejects, ["_row_id", "expectation_index", "expectation_type", "column_name", "reason"])
        for r in results:
            if r.row_level and r.severity == "critical" and not r.success:
                reason = specs[r.index].meta.get("reason") or r.type
                for row_id in r.failing_row_ids:
                    writer.write((row_id, r.index, r.type, r.column, reason))
        writer.flush()
        _reject_oversized_keys(cur, source, plan, rejects)
        # its size known, publish's joins hash the (small) rejects and not the whole batch
        cur.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(staging.SCHEMA, rejects)))
        cur.execute(sql.SQL("SELECT count(DISTINCT _row_id) FROM {}").format(sql.Identifier(staging.SCHEMA, rejects)))
        quarantined = cur.fetchone()[0]
        cur.execute("SELECT distinct_keys FROM audit.batch WHERE batch_id = %s", (plan.batch_id,))
        distinct = cur.fetchone()[0] or 0

    for r in results:
        if not r.success and r.severity != "critical" and not r.exception:
            log.warning("%s: warning expectation #%s %s failed: %s rows", source.code, r.index, r.type, r.unexpected_count)
    failures = verdict_failures(source, results, quarantined, distinct)
    share = quarantined / distinct if distinct else 0.0
    summary = {"evaluated": len(results), "passed": sum(r.success for r in results),
               "quarantined": quarantined, "distinct_keys": distinct, "share": round(share, 4)}
    log.info("%s: validation %s", source.code, summary)
    if failures:
        keep_failed_batch_evidence(conn, source, plan)
        raise BatchFailed(f"{source.code} batch {plan.batch_id} failed validation ({suite.path.name}): " + "; ".join(failures))
    return summary


def keep_failed_batch_evidence(conn, source: Source, plan: BatchPlan) -> int:
    """A batch that fails validation publishes nothing, but its failing rows are what the source
    must fix: keep them in quarantine.rejected_row (masked, with their reasons) marked
    batch_failed, in a transaction of their own (the publish transaction never runs). They do not
    count as quarantined: the batch's rows_quarantined stays NULL, core and watermark untouched."""
    with warehouse.transaction(conn) as cur:
        # a retried validate task writes the batch's evidence again: once
        cur.execute("DELETE FROM quarantine.rejected_row WHERE batch_id = %s AND batch_failed", (plan.batch_id,))
        kept = write_rejected_rows(cur, source, plan, batch_failed=True)
    if kept:
        log.info("%s batch %s failed validation: %d failing rows kept as evidence in quarantine.rejected_row "
                 "(make quarantine SOURCE=%s BATCH=%s)", source.code, plan.batch_id, kept, source.code, plan.batch_id)
    return kept


# ----------------------------------------------------------------------------- publish

def _pii_id_fields(source: Source) -> list[str]:
    return [f.name for f in source.fields if f.pii in ("cccd", "bhyt")]


def _remove_absent_rows(cur, source: Source, plan: BatchPlan) -> int:
    """A re-delivered file replaces the rows its earlier delivery brought: core rows of this file
    name whose key the new delivery no longer contains (quarantined keys ARE contained: their
    earlier valid version stays) are removed. The first delivery of a file name has none to
    remove: only a committed batch of that name stored rows carrying it (publish writes them and
    commits the ledger row in one transaction), so the scan of the whole core table is skipped."""
    cur.execute("SELECT EXISTS (SELECT 1 FROM audit.file_delivery WHERE source_code = %s AND file_name = %s"
                " AND status = 'committed' AND batch_id <> %s)", (source.code, plan.file_name, plan.batch_id))
    if not cur.fetchone()[0]:
        return 0
    match = sql.SQL(" AND ").join(
        sql.SQL("s.{k} = c.{k}").format(k=sql.Identifier(k)) for k in source.key)
    schema, table = source.core_table.split(".", 1)
    cur.execute(sql.SQL(
        "DELETE FROM {core} c WHERE c.source_file = %(file_name)s"
        " AND NOT EXISTS (SELECT 1 FROM {staging} s WHERE {match})"
    ).format(core=sql.Identifier(schema, table), staging=sql.Identifier(staging.SCHEMA, plan.staging_table),
             match=match), {"file_name": plan.file_name})
    return cur.rowcount


def business_key_sql(source: Source) -> sql.Composable:
    """A staged row's business key as quarantine keeps it: the key fields joined with '|'."""
    return sql.SQL(" || '|' || ").join(sql.SQL("coalesce({}, '')").format(sql.Identifier(k)) for k in source.key)


def masked_value_sql(source: Source, column: sql.Composable) -> sql.Composable:
    """The value of the staged row `s`'s field named by `column` (an SQL text expression) as
    quarantine shows it: a personal-ID field or one derived from it by its mask only, never its hash."""
    value_expr = sql.SQL("to_jsonb(s) ->> {c}").format(c=column)
    for f in _pii_id_fields(source):
        value_expr = sql.SQL("CASE WHEN starts_with({c}, {p}) THEN s.{m} ELSE {v} END").format(
            c=column, p=sql.Literal(f + "_"), m=sql.Identifier(f + "_mask"), v=value_expr)
    return value_expr


def write_rejected_rows(cur, source: Source, plan: BatchPlan, *, batch_failed: bool) -> int:
    """Copy the rows listed in the batch's rejects table into quarantine.rejected_row: business
    key, record date, reasons and the failing fields (personal IDs by their mask only, never the
    hash). The same rejection already kept from an earlier batch is dropped there, so a re-run
    keeps one; a failed batch's evidence only replaces earlier evidence, never a committed
    batch's quarantine. Returns the rows written."""
    t = sql.Identifier(staging.SCHEMA, plan.staging_table)
    rj = sql.Identifier(staging.SCHEMA, rejects_table(plan))
    key_expr = business_key_sql(source)
    record_date = sql.Identifier(source.record_date) if source.record_date else sql.SQL("NULL::text")
    record_date_col = sql.SQL("s.{}").format(record_date) if source.record_date else record_date
    value_expr = masked_value_sql(source, sql.SQL("r.column_name"))
    cur.execute(sql.SQL(
        """INSERT INTO quarantine.rejected_row (source_code, batch_id, business_key, record_date, reasons, failing_values,
                                                batch_failed)
           SELECT %(source)s, %(batch)s, left({key_expr}, 300), left({record_date_col}, 100),
                  jsonb_agg(DISTINCT jsonb_build_object('expectation', r.expectation_type, 'column', r.column_name,
                                                        'reason', r.reason)),
                  coalesce(jsonb_object_agg(r.column_name, left({value_expr}, 200))
                           FILTER (WHERE r.column_name IS NOT NULL), '{{}}'::jsonb),
                  %(failed)s
             FROM {t} s JOIN {rj} r USING (_row_id)
            GROUP BY s._row_id, {key_expr}, {record_date_col}"""
    ).format(key_expr=key_expr, record_date_col=record_date_col, value_expr=value_expr, t=t, rj=rj),
        {"source": source.code, "batch": plan.batch_id, "failed": batch_failed})
    written = cur.rowcount
    # the same rejection again (a re-run of the date, a snapshot asked again): keep one.
    # Equal digests first (indexed, migration 035: no nested loop over the source's whole
    # quarantine), then the columns themselves, so a digest collision removes nothing.
    cur.execute(
        """DELETE FROM quarantine.rejected_row o USING quarantine.rejected_row n
            WHERE n.source_code = %(source)s AND n.batch_id = %(batch)s
              AND o.source_code = %(source)s AND o.rejection_digest = n.rejection_digest
              AND o.batch_id <> n.batch_id
              AND (o.batch_failed OR NOT %(failed)s)
              AND o.business_key IS NOT DISTINCT FROM n.business_key
              AND o.record_date IS NOT DISTINCT FROM n.record_date
              AND o.reasons = n.reasons AND o.failing_values = n.failing_values""",
        {"source": source.code, "batch": plan.batch_id, "failed": batch_failed})
    return written


def publish(conn, source: Source, plan: BatchPlan, *, finish_run: bool = True) -> dict:
    """Quarantine + merge + audit + watermark (+ file ledger) + run status, in one transaction.

    `finish_run=False` for the batches of a file source's run: the run's status is decided by
    finish_run() once every file was tried (it succeeds only if every batch committed)."""
    t = sql.Identifier(staging.SCHEMA, plan.staging_table)
    rj = sql.Identifier(staging.SCHEMA, rejects_table(plan))
    removed = 0
    with warehouse.transaction(conn) as cur:
        # one publisher per source at a time: file batches of one run may overlap in keys
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('ioc_publish'), hashtext(%s))", (source.code,))
        if plan.empty_window:
            loaded = quarantined = 0
        else:
            quarantined = write_rejected_rows(cur, source, plan, batch_failed=False)
            upsert = merge.any_key_stored(cur, source, t)
            with progress.heartbeat(log, f"{source.code} batch {plan.batch_id}: merge into {source.core_table}"
                                         + ("" if upsert else " (every key new: plain insert)")):
                cur.execute(merge.statement(cur, source, t, rj, upsert=upsert),
                            {"batch_id": plan.batch_id, "file_name": plan.file_name, "file_date": plan.file_date})
            loaded = cur.rowcount
            if plan.file_name:
                removed = _remove_absent_rows(cur, source, plan)
        cur.execute(
            """UPDATE audit.batch SET status = 'committed', rows_loaded = %s, rows_quarantined = %s,
                      finished_at = clock_timestamp() WHERE batch_id = %s""",
            (loaded, quarantined, plan.batch_id),
        )
        if plan.file_name:
            cur.execute("UPDATE audit.file_delivery SET status = 'committed', committed_at = clock_timestamp()"
                        " WHERE batch_id = %s", (plan.batch_id,))
        if plan.window_end and not plan.empty_window:
            # GREATEST: a replayed older window never moves the watermark back
            cur.execute(
                """INSERT INTO audit.watermark AS w (source_code, watermark, batch_id) VALUES (%s, %s, %s)
                   ON CONFLICT (source_code) DO UPDATE SET watermark = GREATEST(w.watermark, EXCLUDED.watermark),
                       batch_id = CASE WHEN EXCLUDED.watermark >= w.watermark THEN EXCLUDED.batch_id ELSE w.batch_id END,
                       updated_at = clock_timestamp()""",
                (source.code, plan.window_end, plan.batch_id),
            )
        status = sql.SQL("status = 'success', finished_at = clock_timestamp(), error = NULL, error_detail = NULL, "
                         if finish_run else "")
        cur.execute(sql.SQL(
            """UPDATE audit.source_run SET {status}rows_loaded = rows_loaded + %s, rows_quarantined = rows_quarantined + %s
                WHERE run_key = %s""").format(status=status),
            (loaded, quarantined, plan.run_key),
        )
    log.info("%s batch %s committed: %d rows loaded, %d quarantined%s", source.code, plan.batch_id, loaded, quarantined,
             f", {removed} rows of an earlier delivery of {plan.file_name} removed" if removed else "")
    result = {"rows_loaded": loaded, "rows_quarantined": quarantined}
    if plan.file_name:
        result["rows_removed"] = removed
    return result


def finish_run(conn, run_key: str, failures: list[str]) -> None:
    """Close a multi-batch (file source) run: success only if every batch committed. `failures`:
    one reason per failed file, all kept in error_detail, the short text in error."""
    with warehouse.transaction(conn) as cur:
        cur.execute(
            """UPDATE audit.source_run SET status = %s, error = %s, error_detail = %s, finished_at = clock_timestamp()
                WHERE run_key = %s""",
            ("failed" if failures else "success", failure_text.short(failures), failure_text.full(failures), run_key))


# ----------------------------------------------------------------------------- failure and cleanup

def fail(conn, plan: BatchPlan, error: str, *, run_too: bool = True) -> None:
    """Record the failure (nothing was published: the publish transaction is all or nothing)."""
    error = error or "unknown error"
    with warehouse.transaction(conn) as cur:
        cur.execute(
            "UPDATE audit.batch SET status = 'failed', error = %s, error_detail = %s, finished_at = clock_timestamp() "
            "WHERE batch_id = %s AND status <> 'committed'",
            (failure_text.short(error) or "unknown error", failure_text.full(error), plan.batch_id))
        cur.execute("UPDATE audit.file_delivery SET status = 'failed' WHERE batch_id = %s AND status <> 'committed'",
                    (plan.batch_id,))
        if run_too:
            fail_run(cur, plan.run_key, error)


def fail_run(cur, run_key: str, error: str) -> None:
    """The run failed: the short text for ioc.source_freshness, every reason in error_detail."""
    cur.execute(
        "UPDATE audit.source_run SET status = 'failed', error = %s, error_detail = %s, finished_at = clock_timestamp()"
        " WHERE run_key = %s",
        (failure_text.short(error) or "unknown error", failure_text.full(error), run_key))


def cleanup(conn, plan: BatchPlan) -> None:
    """Staging holds derived personal data: drop it after every batch, success or not."""
    with warehouse.transaction(conn) as cur:
        staging.drop(cur, plan.staging_table)
        staging.drop(cur, rejects_table(plan))
