"""Benchmark: the real ingest path of a REST, an SQL and a file source against raw COPY.

Why: the pipeline's throughput claim needs a number measured on the real path, next to the
ceiling the same PostgreSQL reaches when it only has to store the same rows. For each source
and N:

1. generate N records in fresh databases (timed apart, not a result):
   civil_status (REST) and land / tuition (SQL) with the simulator's generators; for
   health_visits (file) ONE CSV of N visits of one facility on the as-of day (bench/health_csv.py:
   deterministic, ~1.5 % faulty rows, ~0.4 % visit ids repeated later in the file);
2. civil_status is served by `python -m simulator serve` in a separate process (no faults), so
   the simulator's CPU and memory are not charged to the ingest; the SQL sources are read
   from their own database with the server-side cursor of extract/sql_source.py;
3. in a fresh spawned child process: migrate a fresh warehouse (timed apart), then run what
   the DAG's tasks run: batch.begin -> extract(fetchers.fetcher_for) -> record_extract ->
   dedupe -> validate -> publish -> cleanup, or for the file source file_batches.pending +
   load_all; each step timed; the child's peak RSS is its own VmHWM;
4. baseline: the same rows (as served / as the extractor's own window query returns them /
   the CSV file itself) COPYed into a plain logged table without index (timed, commit included).

    python bench/bench_ingest.py [--source civil_status|tuition|land|health_visits ...] [--rows N ...]
                                 [--server embedded|DSN]

Databases are named ioc_bench_* and dropped at the end, also on error.
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib
import health_csv
from benchlib import PROVINCE

log = logging.getLogger("bench_ingest")

SOURCES = ("civil_status", "tuition", "land", "health_visits")
# The table: SQL and file sources at three sizes, REST at 1M. land is measured only when
# asked: its generator's digitisation backlog UPDATE scans every certificate each simulated day
# since 2023 (quadratic): 100k rows take minutes to generate, 1M hours.
DEFAULT_PLAN = (("tuition", (100_000, 1_000_000, 5_000_000)), ("health_visits", (100_000, 1_000_000, 5_000_000)),
                ("civil_status", (1_000_000,)))
DEFAULT_ROWS = (100_000, 1_000_000)
DEFAULT_ROWS_OF = {"land": (100_000,)}
# publish with a full quarantine against an empty one, on this run of the default plan
DEFAULT_QUARANTINE_CHECK = ("tuition", 1_000_000, (0, 1_000_000))
UNTIL = dt.date(2026, 11, 19)     # last generated day (a Thursday); the run's as-of date
SEED = 11
STEPS = ("begin", "extract", "record_extract", "dedupe", "validate", "publish", "cleanup")  # ingest_path.STEPS


# ----------------------------------------------------------------------------- ingest child

def ingest_child(code: str, wh_dsn: str, as_of: str, key_hex: str, landing: str | None,
                 quarantine_before: int = 0) -> dict:
    """Runs in a spawned process: the real path of one source, each step timed. With
    `quarantine_before`, that many rejected rows of the source are in quarantine first."""
    benchlib.child_logging("ingest")
    log.info("ingest process started: peak RSS so far %.0f MB", benchlib.peak_rss_mb())
    from ioc_pipeline.declaration import catalog
    from ioc_pipeline import warehouse
    import ingest_path

    import airflow.sdk  # noqa: F401  (already imported in an Airflow worker: keep it out of the timings)

    t0 = time.perf_counter()
    conn = warehouse.connect(wh_dsn, application_name="ioc_bench")
    warehouse.migrate(conn)
    migrate_s = time.perf_counter() - t0
    log.info("warehouse migrated in %.1f s", migrate_s)
    if quarantine_before:
        fill_quarantine(conn, code, quarantine_before)

    timer = ingest_path.Recorder()
    start = time.perf_counter()
    out = ingest_path.run_source(conn, catalog.get(code), dt.date.fromisoformat(as_of), key=key_hex.encode(),
                                 sqlalchemy_url=benchlib.sqlalchemy_url(wh_dsn), timer=timer,
                                 landing=Path(landing) if landing else None)
    total = time.perf_counter() - start
    conn.close()
    times = {s: timer.wall.get(s, 0.0) for s in STEPS}
    cpu = {s: timer.cpu.get(s, 0.0) for s in STEPS}
    times.update(total=total, migrate=migrate_s)
    cpu["total"] = sum(cpu.values())
    return {**out, "times": times, "cpu": cpu, "rss_mb": dict(timer.rss_mb), "duplicates_removed": timer.removed}


def fill_quarantine(conn, code: str, n: int) -> None:
    """n rejected rows of the source from an earlier (committed) batch, as a month of nightly
    runs leaves them: distinct keys, a record date, the reasons and masked values publish writes."""
    from ioc_pipeline.declaration import catalog
    from ioc_pipeline.ingest import batch

    t = time.perf_counter()
    with conn.cursor() as cur:
        batch.register_source(cur, catalog.get(code))
        cur.execute("""INSERT INTO audit.source_run (run_key, source_code, dag_run_id, as_of_date, status)
                       VALUES (%s, %s, 'earlier', '2026-10-01', 'success')""", (f"{code}/earlier", code))
        cur.execute("""INSERT INTO audit.batch (source_code, run_key, as_of_date, batch_name, status)
                       VALUES (%s, %s, '2026-10-01', 'earlier', 'committed') RETURNING batch_id""",
                    (code, f"{code}/earlier"))
        batch_id = cur.fetchone()[0]
        cur.execute("""INSERT INTO quarantine.rejected_row (source_code, batch_id, business_key, record_date, reasons,
                           failing_values)
                       SELECT %s, %s, 'EARLIER' || g, '2026-10-01', jsonb_build_array(jsonb_build_object(
                                  'expectation', 'expect_column_values_to_not_be_null', 'column', 'commune_code',
                                  'reason', 'commune_code is missing')), jsonb_build_object('commune_code', NULL)
                         FROM generate_series(1, %s) g""", (code, batch_id, n))
        cur.execute("ANALYZE quarantine.rejected_row")
    conn.commit()
    log.info("%d rows of an earlier batch put in quarantine in %.1f s", n, time.perf_counter() - t)


# ----------------------------------------------------------------------------- the sources' data and baselines

CIVIL_FIELDS = ("record_id", "registration_type", "registered_on", "commune_code", "subject_cccd",
                "subject_full_name", "subject_birth_date", "subject_sex", "book_digitized", "synced_to_ministry",
                "updated_at")


def _wire_text(field: str) -> str:
    """SQL for a civil_status field's text as the simulator puts it on the wire (hostile overrides included)."""
    typed = ("to_char(updated_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+07:00'"
             if field == "updated_at" else f"{field}::text")
    return f"CASE WHEN sim_wire_override ? '{field}' THEN sim_wire_override ->> '{field}' ELSE {typed} END"


def export_served_rows(sim_dsn: str, window_end: str, path: Path) -> tuple[int, list[str]]:
    """The civil_status window's rows exactly as served (duplicates twice, in page order), as CSV."""
    select = (f"SELECT {', '.join(_wire_text(f) for f in CIVIL_FIELDS)} FROM sim.civil_status_records"
              " CROSS JOIN LATERAL generate_series(1, CASE WHEN sim_served_twice THEN 2 ELSE 1 END) rep(n)"
              f" WHERE updated_at < '{window_end}'::timestamptz ORDER BY updated_at, record_id, rep.n")
    return benchlib.copy_query_to_file(sim_dsn, select, path, options=CSV), list(CIVIL_FIELDS)


def export_sql_window(code: str, sim_dsn: str, window_end: str, path: Path) -> tuple[int, list[str]]:
    """The SQL source's window as the extractor's own item query selects it (every column ::text), as CSV."""
    import psycopg2
    from ioc_pipeline.declaration import catalog
    from ioc_pipeline import config
    from ioc_pipeline.extract import sql_source
    from ioc_pipeline.extract.window import Window

    source = catalog.get(code)
    schema, table = sql_source.table_of(source)
    conn = psycopg2.connect(sim_dsn)
    try:
        with conn.cursor() as cur:
            columns = sql_source.plan_columns(source, list(sql_source.source_columns(cur, schema, table)), schema, table)
        window = Window(None, window_end, UNTIL.isoformat(), PROVINCE)
        query, params = sql_source.window_query(source, schema, table, columns, window)
        select = query.as_string(conn) % {k: psycopg2.extensions.adapt(v).getquoted().decode() for k, v in params.items()}
    finally:
        conn.close()
    session = ("SET DateStyle = 'ISO, YMD'", f"SET TimeZone = '{config.LOCAL_TZ}'")
    return benchlib.copy_query_to_file(sim_dsn, select, path, session, options=CSV), columns


CSV = "(FORMAT csv, HEADER true)"


def core_indexes(wh_dsn: str, source, columns: list[str]) -> list[list[str]]:
    """The core table's indexes (its key's included) on the raw columns they derive from: a
    column the rows lack stands for the one it is derived from (commune_code_2025 ->
    commune_code, a *_on date -> the record date). Unique ones lose their uniqueness: the raw
    rows still hold the duplicates that dedupe removes."""
    import psycopg2

    with psycopg2.connect(wh_dsn) as conn, conn.cursor() as cur:
        cur.execute("""SELECT array_agg(a.attname::text ORDER BY k.n) FROM pg_index i
                         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                        WHERE i.indrelid = %s::regclass GROUP BY i.indexrelid""", (source.core_table,))
        found = [r[0] for r in cur.fetchall()]
    conn.close()
    out = []
    for cols in found:
        mapped = []
        for c in cols:
            stand_in = (c if c in columns else c.removesuffix("_2025") if c.removesuffix("_2025") in columns
                        else source.record_date if c.endswith("_on") and source.record_date in columns else None)
            if stand_in and stand_in not in mapped:
                mapped.append(stand_in)
        if mapped and mapped not in out:
            out.append(mapped)
    return out


def bench_one(params: dict, code: str, n: int, workdir: Path, quarantine_before: list[int], with_dlt: bool) -> dict:
    from ioc_pipeline.declaration import catalog

    source = catalog.get(code)
    created: list[str] = []
    sim_proc = None
    conn_env = f"AIRFLOW_CONN_{source.connection.upper()}"
    try:
        landing = None
        log.info("%s N=%d: generating the source's records", code, n)
        t = time.perf_counter()
        if source.kind == "file":
            landing = workdir / f"landing-{code}-{n}"
            csv_path, records, header = health_csv.write(landing, n, day=UNTIL, province=PROVINCE, seed=SEED)
        else:
            sim_dsn = benchlib.create_database(params, "sim", created)
            if code == "civil_status":
                from simulator import civil_status
                records = civil_status.generate(sim_dsn, until=UNTIL, records=n, seed=SEED)["inserted"]
            elif code == "land":
                from simulator import land
                records = land.generate(sim_dsn, until=UNTIL, certificates=n, seed=SEED)["inserted"]
            elif code == "tuition":
                from simulator import tuition
                records = tuition.generate(sim_dsn, until=UNTIL, payments=n, seed=SEED)["rows"]
            else:
                raise SystemExit(f"no generator for {code}")
        generate_s = time.perf_counter() - t
        log.info("%s N=%d: generated %d records in %.1f s (not part of the result)", code, n, records, generate_s)

        if source.kind == "rest":
            token = uuid.uuid4().hex
            sim_proc, port = benchlib.start_simulator(sim_dsn, token, workdir / f"simulator-{n}.log")
            os.environ[conn_env] = benchlib.rest_conn_json(port, token)
        elif source.kind == "sql":
            os.environ[conn_env] = benchlib.pg_conn_json(sim_dsn)

        runs = {}
        for before in quarantine_before:
            wh_dsn = benchlib.create_database(params, "wh", created)
            log.info("%s N=%d: ingest in a spawned process, %d rows in quarantine before", code, n, before)
            result = benchlib.run_in_child(ingest_child, code, wh_dsn, UNTIL.isoformat(), os.urandom(32).hex(),
                                           str(landing) if landing else None, before)
            log.info("%s N=%d: ingest done in %.1f s (publish %.1f s): %d rows read, %d loaded, %d quarantined", code,
                     n, result["times"]["total"], result["times"]["publish"], result["rows_read"],
                     result["rows_loaded"], result["quarantined"])
            runs[before] = result
        result = dict(runs[quarantine_before[0]])
        result["publish_by_quarantine"] = {b: r["times"]["publish"] for b, r in runs.items()}
        result["sim_cpu"] = result["sim_db_cpu"] = None
        if sim_proc is not None:
            result["sim_cpu"], result["sim_db_cpu"] = benchlib.source_side_cpu(sim_proc, sim_dsn)
        dlt_source = {}
        if with_dlt and source.kind != "file":
            rest = (port, token) if sim_proc is not None else (None, None)
            dlt_source = dlt_from_source(params, created, source, sim_dsn, result["window_end"], *rest, workdir)
            if dlt_source["dlt_rows"] != result["rows_loaded"] + result["quarantined"]:
                log.info("%s N=%d: dlt kept %d rows (the pipeline loaded %d and quarantined %d)", code, n,
                         dlt_source["dlt_rows"], result["rows_loaded"], result["quarantined"])
        if sim_proc is not None:
            benchlib.stop_process(sim_proc)
            sim_proc = None

        # the same rows, as CSV: the file itself, or what the source serves / the window query selects
        if source.kind == "file":
            copy_file, exported, columns = csv_path, records, header
        else:
            copy_file = workdir / f"served-{code}-{n}.csv"
            exported, columns = (export_served_rows(sim_dsn, result["window_end"], copy_file) if code == "civil_status"
                                 else export_sql_window(code, sim_dsn, result["window_end"], copy_file))
        if exported != result["rows_read"]:
            log.warning("%s N=%d: baseline has %d rows, the ingest read %d", code, n, exported, result["rows_read"])
        log.info("%s N=%d: COPY of %d rows (%.0f MB)", code, n, exported, copy_file.stat().st_size / 1e6)
        copy_s = benchlib.raw_copy(wh_dsn, copy_file, columns, CSV)
        indexes = core_indexes(wh_dsn, source, columns)
        copy_idx_s = benchlib.raw_copy(wh_dsn, copy_file, columns, CSV, indexes)
        log.info("%s N=%d: COPY in %.2f s, into a table with indexes %s in %.2f s", code, n, copy_s, indexes, copy_idx_s)
        dlt = {}
        if with_dlt:
            import dlt_load

            dlt_dsn = benchlib.create_database(params, "dlt", created)
            log.info("%s N=%d: dlt loads the same rows (merge on %s)", code, n, ", ".join(source.key))
            dlt = benchlib.run_in_child(dlt_load.load, str(copy_file), dlt_dsn, list(source.key), str(workdir))
            log.info("%s N=%d: dlt in %.1f s, %d rows in its table, peak RSS %.0f MB", code, n, dlt["dlt_s"],
                     dlt["dlt_rows"], dlt["peak_rss_mb"])
        if source.kind != "file":
            copy_file.unlink()
        return {"source": code, "n": n, "records": records, "generate_s": generate_s, "copy_rows": exported,
                "copy_s": copy_s, "copy_idx_s": copy_idx_s, "indexes": indexes, "dlt": dlt, "dlt_source": dlt_source,
                **result}
    finally:
        if sim_proc is not None:
            benchlib.stop_process(sim_proc)
        os.environ.pop(conn_env, None)
        benchlib.drop_databases(params, created)


def dlt_from_source(params: dict, created: list[str], source, sim_dsn: str, window_end: str, port: int | None,
                    token: str | None, workdir: Path) -> dict:
    """dlt extracting the same window from the same source (its SQL source reading the source's
    table, or its REST client paging the simulator's API) and merging it on the key: the peer
    that pays for the extraction, as the pipeline does. The CSV run (`dlt_load.load`) does not."""
    import dlt_load
    from ioc_pipeline.extract import rest_source, sql_source
    from ioc_pipeline.extract.window import Window

    dsn = benchlib.create_database(params, "dlt", created)
    if source.kind == "sql":
        schema, table = sql_source.table_of(source)
        log.info("%s: dlt reads %s.%s from the source database (sql_table, connectorx backend)", source.code, schema,
                 table)
        out = benchlib.run_in_child(dlt_load.load_sql, sim_dsn, schema, table, source.watermark, window_end, dsn,
                                    list(source.key), str(workdir))
    else:
        query = rest_source.window_params(Window(None, window_end, UNTIL.isoformat(), PROVINCE))
        log.info("%s: dlt pages %s from the simulator's REST server (RESTClient)", source.code, source.path)
        out = benchlib.run_in_child(dlt_load.load_rest, f"http://127.0.0.1:{port}", source.path, query, token,
                                    list(CIVIL_FIELDS), dsn, list(source.key), str(workdir))
    log.info("%s: dlt from the source in %.1f s, %d rows in its table, peak RSS %.0f MB", source.code, out["dlt_s"],
             out["dlt_rows"], out["peak_rss_mb"])
    return out


# ----------------------------------------------------------------------------- report

HEAD = ("source", "N", "rows read", "e2e s", "e2e rows/s", "COPY rows/s", "COPY idx rows/s", "e2e/COPY",
        "e2e/COPY idx", "dlt rows/s", "e2e/dlt", "dlt src rows/s", "e2e/dlt src", "extract s", "dedupe s",
        "validate s", "publish s", "other s", "CPU s", "peak RSS MB", "dlt RSS MB")


def table(results: list[dict]) -> str:
    lines = []
    for r in results:
        t = r["times"]
        e2e = r["rows_read"] / t["total"]
        copy = r["copy_rows"] / r["copy_s"]
        copy_idx = r["copy_rows"] / r["copy_idx_s"]
        dlt = r["copy_rows"] / r["dlt"]["dlt_s"] if r["dlt"] else None
        dlt_src = r["rows_read"] / r["dlt_source"]["dlt_s"] if r.get("dlt_source") else None
        other = t["total"] - t["extract"] - t["dedupe"] - t["validate"] - t["publish"]
        lines.append((r["source"], f"{r['n']:,}", f"{r['rows_read']:,}", f"{t['total']:.1f}", f"{e2e:,.0f}",
                      f"{copy:,.0f}", f"{copy_idx:,.0f}", f"{e2e / copy:.3f}x", f"{e2e / copy_idx:.3f}x",
                      f"{dlt:,.0f}" if dlt else "-", f"{e2e / dlt:.2f}x" if dlt else "-",
                      f"{dlt_src:,.0f}" if dlt_src else "-", f"{e2e / dlt_src:.2f}x" if dlt_src else "-",
                      f"{t['extract']:.1f}", f"{t['dedupe']:.1f}", f"{t['validate']:.1f}", f"{t['publish']:.1f}",
                      f"{other:.1f}", f"{r['cpu']['total']:.1f}", f"{r['peak_rss_mb']:.0f}",
                      f"{r['dlt']['peak_rss_mb']:.0f}" if r["dlt"] else "-"))
    return benchlib.format_table(HEAD, lines)


def publish_table(results: list[dict]) -> str:
    lines = []
    for r in results:
        by = r["publish_by_quarantine"]
        if len(by) < 2:
            continue
        base = by.get(0)
        for before, seconds in by.items():
            lines.append((r["source"], f"{r['n']:,}", f"{before:,}", f"{seconds:.2f}",
                          f"{seconds / base:.2f}x" if base else "-"))
    return benchlib.format_table(("source", "N", "in quarantine before", "publish s", "vs none"), lines) if lines else ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", action="append", choices=SOURCES,
                    help="source to measure (repeatable; default all four)")
    ap.add_argument("--rows", type=int, action="append",
                    help=f"records to generate (repeatable; default {', '.join(map(str, DEFAULT_ROWS))}, land 100000)")
    ap.add_argument("--quarantine-before", type=int, action="append",
                    help="rows of an earlier batch already in quarantine when the ingest runs (repeatable: one ingest "
                         "per value, same rows, publish times compared; default 0 and 1000000 for tuition at 1M)")
    ap.add_argument("--no-dlt", action="store_true", help="leave out the dlt comparison")
    ap.add_argument("--max-rows", type=int, help="the default plan without its sizes above this (e.g. 1000000: no 5M runs)")
    ap.add_argument("--server", default="", help="'embedded' or a libpq DSN of a maintenance database "
                                                 "(default: 127.0.0.1:5432 if it answers, else embedded)")
    args = ap.parse_args(argv)
    if any(n <= 0 for n in args.rows or ()):
        ap.error("--rows must be positive")
    if args.source or args.rows:
        plan = [(code, tuple(args.rows or DEFAULT_ROWS_OF.get(code, DEFAULT_ROWS))) for code in args.source or SOURCES]
    else:
        plan = [(code, tuple(n for n in sizes if not args.max_rows or n <= args.max_rows)) for code, sizes in DEFAULT_PLAN]

    def quarantine_runs(code: str, n: int) -> list[int]:
        if args.quarantine_before:
            return sorted(set(args.quarantine_before))
        check_code, check_n, values = DEFAULT_QUARANTINE_CHECK
        return list(values) if (code, n) == (check_code, check_n) and not (args.source or args.rows) else [0]

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    params, label, started_here = benchlib.resolve_server(args.server)
    results = []
    try:
        info = benchlib.machine(params, label)
        load_before = os.getloadavg()
        with tempfile.TemporaryDirectory(prefix="ioc_bench_") as tmp:
            # an isolated Airflow home: the SDK reads the connections from the environment only
            os.environ["AIRFLOW_HOME"] = str(Path(tmp) / "airflow")
            for code, sizes in plan:
                for n in sizes:
                    results.append(bench_one(params, code, n, Path(tmp), quarantine_runs(code, n), not args.no_dlt))
                    log.info("load average now %.2f", os.getloadavg()[0])
        load_after = os.getloadavg()
    finally:
        benchlib.stop_embedded(started_here)

    print()
    print(benchlib.machine_line(info, load_before, load_after))
    print("e2e = the ingest process from begin to cleanup (extract from the source, staging, dedupe, GX validation in"
          " PostgreSQL, publish); COPY = the same rows (CSV) into a plain table of text columns; COPY idx = into the"
          " same table with the core table's key and indexes; dlt = dlt loading the same rows (arrow, csv load files,"
          " merge on the key) from that CSV; dlt src = dlt extracting them from the source itself (SQL: sql_table,"
          " connectorx backend; REST: its RESTClient paging the simulator) and loading them the same way; ratios are"
          " e2e rows/s over theirs")
    print(table(results))
    if text := publish_table(results):
        print()
        print("publish with rows of an earlier batch already in quarantine:")
        print(text)
    for r in results:
        t, c = r["times"], r["cpu"]
        print(f"{r['source']} N={r['n']:,}: generated {r['records']:,} records in {r['generate_s']:.1f} s (not timed); "
              f"migrate {t['migrate']:.1f} s (not in e2e); {r['distinct_keys']:,} distinct keys, "
              f"{r['duplicates_removed']:,} duplicates removed, {r['quarantined']:,} quarantined, "
              f"{r['rows_loaded']:,} loaded")
        print("  wall s (ingest-process CPU s) per step: " + ", ".join(f"{s} {t[s]:.2f} ({c[s]:.2f})" for s in STEPS))
        print(f"  COPY idx indexes: {r['indexes']}")
        print("  peak RSS MB at the end of each step: " + ", ".join(f"{s} {r['rss_mb'][s]:.0f}" for s in STEPS
                                                                   if s in r["rss_mb"]))
        if r["sim_cpu"] is not None:
            print(f"  source side during the run, CPU s: simulator process {benchlib.fmt_opt(r['sim_cpu'])}, "
                  f"its PostgreSQL backends {benchlib.fmt_opt(r['sim_db_cpu'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
