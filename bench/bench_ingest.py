"""Benchmark: the civil_status ingest path (REST -> staging -> dedupe -> GX -> publish) against raw COPY.

Why: the pipeline's throughput claim needs a number measured on the real path, next to the
ceiling the same PostgreSQL reaches when it only has to store the same rows. For each N:

1. generate N civil_status records in a fresh simulator database (timed apart, not a result);
2. serve them from `python -m simulator serve` in a separate process (no faults), so the
   simulator's CPU and memory are not charged to the ingest;
3. in a fresh spawned child process: migrate a fresh warehouse, then batch.begin ->
   extract(rest_source.fetcher) -> record_extract -> dedupe -> validate -> publish -> cleanup,
   each step timed; the child's peak RSS is its own ru_maxrss;
4. baseline: the same rows as served (all contract fields as text, duplicates served twice
   included) exported to a file (not timed), then `COPY table FROM STDIN` of that file into
   a plain logged table without index in the warehouse database (timed, commit included).

    python bench/bench_ingest.py --rows 100000 --rows 1000000 [--server embedded|DSN]

Databases are named ioc_bench_* and dropped at the end, also on error.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO / "plugins", REPO):  # the package and the simulator, from any working directory
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import psycopg2  # noqa: E402

log = logging.getLogger("bench_ingest")

DEFAULT_LOCAL = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
SOURCE = "civil_status"
CONN_ID = "sector_civil_status"
UNTIL = dt.date(2026, 11, 19)     # last generated day; the run's as-of date
SEED = 11
PROVINCE = "48"
STEPS = ("begin", "extract", "record_extract", "dedupe", "validate", "publish", "cleanup")


# ----------------------------------------------------------------------------- server and databases

def _answers(dsn: str) -> bool:
    try:
        psycopg2.connect(dsn).close()
        return True
    except psycopg2.OperationalError:
        return False


def resolve_server(choice: str) -> tuple[dict, str, Path | None]:
    """(libpq params without dbname, label, embedded data dir started here or None)."""
    if choice and choice != "embedded":
        if not _answers(choice):
            raise SystemExit(f"--server {choice!r} does not answer")
        params = psycopg2.extensions.parse_dsn(choice)
        label = f"server {params.get('host', 'local socket')}:{params.get('port', 5432)}"
    elif not choice and _answers(DEFAULT_LOCAL):
        params = psycopg2.extensions.parse_dsn(DEFAULT_LOCAL)
        label = "server 127.0.0.1:5432"
    else:
        from ioc_pipeline import embedded_pg

        data_dir = REPO / ".data" / "bench-pg"
        was_running = (data_dir / "postmaster.pid").exists()
        params = {"host": embedded_pg.ensure_server(data_dir), "user": "postgres"}
        return params, "embedded (pgserver)", None if was_running else data_dir
    params.pop("dbname", None)
    return params, label, None


def dsn_of(params: dict, dbname: str) -> str:
    return " ".join(f"{k}={v}" for k, v in {**params, "dbname": dbname}.items())


def _admin(params: dict, sql: str) -> None:
    conn = psycopg2.connect(dbname="postgres", **params)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def create_database(params: dict, prefix: str, created: list[str]) -> str:
    name = f"ioc_bench_{prefix}_{uuid.uuid4().hex[:8]}"
    _admin(params, f'CREATE DATABASE "{name}"')
    created.append(name)
    return dsn_of(params, name)


def drop_databases(params: dict, created: list[str]) -> None:
    for name in created:
        try:
            _admin(params, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except psycopg2.Error as exc:
            log.error("could not drop database %s: %s", name, exc)
    created.clear()


def machine(params: dict, label: str) -> dict:
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    conn = psycopg2.connect(dbname="postgres", **params)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            version = cur.fetchone()[0]
    finally:
        conn.close()
    return {"nproc": len(os.sched_getaffinity(0)), "ram_gb": mem_kb / 1024 ** 2,
            "postgres": version, "server": label}


# ----------------------------------------------------------------------------- simulator process

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_simulator(sim_dsn: str, token: str, log_path: Path) -> tuple[subprocess.Popen, int]:
    """`python -m simulator serve` in its own process; returns once /_sim/health answers."""
    import requests

    port = free_port()
    out = open(log_path, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--log-level", "WARNING", "serve", "--dsn", sim_dsn, "--port", str(port)],
        cwd=REPO, env={**os.environ, "SIM_TOKEN": token}, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"simulator exited with {proc.returncode}; see {log_path}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/_sim/health", timeout=2).status_code == 200:
                log.info("simulator pid %d serving on port %d", proc.pid, port)
                return proc, port
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    stop_process(proc)
    raise RuntimeError(f"simulator did not answer on port {port} within 60 s; see {log_path}")


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live local process (None when it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def source_side_cpu(sim_proc: subprocess.Popen, sim_dsn: str) -> tuple[float | None, float | None]:
    """CPU seconds of the simulator process and of its PostgreSQL backends (local server only)."""
    conn = psycopg2.connect(sim_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            backends = [proc_cpu_seconds(r[0]) for r in cur.fetchall()]
    finally:
        conn.close()
    db = sum(backends) if backends and None not in backends else None
    return proc_cpu_seconds(sim_proc.pid), db


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------------- ingest child

def ingest_child(wh_dsn: str, as_of: str, key_hex: str, out) -> None:
    """Runs in a spawned process: the real batch path, each step timed, then the peak RSS."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [ingest] %(name)s: %(message)s")
    logging.getLogger("airflow").setLevel(logging.WARNING)
    try:
        from ioc_pipeline import batch, catalog, config, warehouse
        from ioc_pipeline.extract.rest_source import fetcher

        import airflow.sdk  # noqa: F401  (already imported in an Airflow worker: keep it out of the timings)

        key = key_hex.encode()
        source = catalog.get(SOURCE)
        p = psycopg2.extensions.parse_dsn(wh_dsn)
        url = config.PgParams(host=p["host"], port=int(p["port"]) if p.get("port") else None, dbname=p["dbname"],
                              user=p.get("user", "postgres"), password=p.get("password")).sqlalchemy_url()
        t0 = time.perf_counter()
        conn = warehouse.connect(wh_dsn, application_name="ioc_bench")
        warehouse.migrate(conn)
        times = {"migrate": time.perf_counter() - t0}
        log.info("warehouse migrated in %.1f s", times["migrate"])

        cpu: dict[str, float] = {}

        def cpu_now() -> float:
            r = resource.getrusage(resource.RUSAGE_SELF)
            return r.ru_utime + r.ru_stime

        def step(name, fn, *a, **kw):
            t, c = time.perf_counter(), cpu_now()
            result = fn(*a, **kw)
            times[name], cpu[name] = time.perf_counter() - t, cpu_now() - c
            log.info("step %s: %.2f s (ingest process CPU %.2f s)", name, times[name], cpu[name])
            return result

        start = time.perf_counter()
        plan = step("begin", batch.begin, conn, source, f"bench_{uuid.uuid4().hex[:8]}", dt.date.fromisoformat(as_of),
                    key=key, province_code=PROVINCE)
        try:
            stats = step("extract", lambda: batch.extract(conn, source, plan, fetcher(source, plan), key=key))
            step("record_extract", batch.record_extract, conn, plan, stats)
            removed = step("dedupe", batch.dedupe, conn, source, plan)
            summary = step("validate", batch.validate, conn, source, plan, sqlalchemy_url=url)
            published = step("publish", batch.publish, conn, source, plan)
        except Exception as exc:
            batch.fail(conn, plan, str(exc))
            raise
        finally:
            step("cleanup", batch.cleanup, conn, plan)
        times["total"] = time.perf_counter() - start
        cpu["total"] = sum(cpu.values())
        conn.close()
        out.send({"ok": True, "times": times, "cpu": cpu, "rows_read": stats.rows_read, "distinct_keys": stats.distinct_keys,
                  "duplicates_removed": removed, "quarantined": summary["quarantined"],
                  "rows_loaded": published["rows_loaded"], "window_end": plan.window_end,
                  "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss})
    except BaseException as exc:
        out.send({"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
        raise
    finally:
        out.close()


def run_ingest(wh_dsn: str, as_of: dt.date, key_hex: str) -> dict:
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=ingest_child, args=(wh_dsn, as_of.isoformat(), key_hex, sender), name="ingest")
    child.start()
    sender.close()
    try:
        result = receiver.recv()
    except EOFError:
        result = {"ok": False, "error": "the ingest process died without a result"}
    child.join()
    if not result["ok"]:
        raise RuntimeError(f"ingest failed (exit {child.exitcode}): {result['error']}")
    return result


# ----------------------------------------------------------------------------- raw COPY baseline

FIELDS = ("record_id", "registration_type", "registered_on", "commune_code", "subject_cccd", "subject_full_name",
          "subject_birth_date", "subject_sex", "book_digitized", "synced_to_ministry", "updated_at")


def _wire_text(field: str) -> str:
    """SQL for a field's text as the server puts it on the wire (hostile overrides included)."""
    typed = (f"to_char(updated_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || '+07:00'"
             if field == "updated_at" else f"{field}::text")
    return f"CASE WHEN sim_wire_override ? '{field}' THEN sim_wire_override ->> '{field}' ELSE {typed} END"


def export_served_rows(sim_dsn: str, window_end: str, path: Path) -> int:
    """The window's rows exactly as served (duplicates twice, in page order) to a COPY text file."""
    select = (f"SELECT {', '.join(_wire_text(f) for f in FIELDS)} FROM sim.civil_status_records"
              " CROSS JOIN LATERAL generate_series(1, CASE WHEN sim_served_twice THEN 2 ELSE 1 END) rep(n)"
              f" WHERE updated_at < '{window_end}'::timestamptz ORDER BY updated_at, record_id, rep.n")
    conn = psycopg2.connect(sim_dsn)
    try:
        with conn.cursor() as cur, open(path, "w", encoding="utf-8") as f:
            cur.copy_expert(f"COPY ({select}) TO STDOUT", f)
            return cur.rowcount
    finally:
        conn.close()


def raw_copy(wh_dsn: str, path: Path) -> float:
    """Seconds to COPY the file into a plain logged table without index, commit included."""
    conn = psycopg2.connect(wh_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS public.bench_raw_copy")
            cur.execute("CREATE TABLE public.bench_raw_copy (" + ", ".join(f"{f} text" for f in FIELDS) + ")")
        conn.commit()
        with open(path, "r", encoding="utf-8") as f, conn.cursor() as cur:
            t = time.perf_counter()
            cur.copy_expert("COPY public.bench_raw_copy FROM STDIN", f, size=1 << 20)
            conn.commit()
            seconds = time.perf_counter() - t
        with conn.cursor() as cur:
            cur.execute("DROP TABLE public.bench_raw_copy")
        conn.commit()
        return seconds
    finally:
        conn.close()


# ----------------------------------------------------------------------------- one size

def bench_one(params: dict, n: int, workdir: Path) -> dict:
    created: list[str] = []
    sim_proc = None
    try:
        wh_dsn = create_database(params, "wh", created)
        sim_dsn = create_database(params, "sim", created)
        from simulator import civil_status

        log.info("N=%d: generating the simulator's records", n)
        t = time.perf_counter()
        totals = civil_status.generate(sim_dsn, until=UNTIL, records=n, seed=SEED)
        generate_s = time.perf_counter() - t
        log.info("N=%d: generated %d records in %.1f s (not part of the result)", n, totals["inserted"], generate_s)

        token = uuid.uuid4().hex
        sim_proc, port = start_simulator(sim_dsn, token, workdir / f"simulator-{n}.log")
        os.environ["AIRFLOW_CONN_SECTOR_CIVIL_STATUS"] = json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http", "password": token})

        log.info("N=%d: ingest in a spawned process", n)
        result = run_ingest(wh_dsn, UNTIL, os.urandom(32).hex())
        result["sim_cpu"], result["sim_db_cpu"] = source_side_cpu(sim_proc, sim_dsn)
        stop_process(sim_proc)
        sim_proc = None
        log.info("N=%d: ingest done in %.1f s: %d rows read, %d loaded, %d quarantined", n, result["times"]["total"],
                 result["rows_read"], result["rows_loaded"], result["quarantined"])

        copy_file = workdir / f"served-{n}.copy"
        exported = export_served_rows(sim_dsn, result["window_end"], copy_file)
        if exported != result["rows_read"]:
            log.warning("N=%d: exported %d rows, the ingest read %d", n, exported, result["rows_read"])
        log.info("N=%d: raw COPY of %d rows (%.0f MB)", n, exported, copy_file.stat().st_size / 1e6)
        copy_s = raw_copy(wh_dsn, copy_file)
        copy_file.unlink()
        log.info("N=%d: raw COPY in %.2f s", n, copy_s)
        return {"n": n, "records": totals["inserted"], "generate_s": generate_s, "copy_rows": exported,
                "copy_s": copy_s, **result}
    finally:
        if sim_proc is not None:
            stop_process(sim_proc)
        os.environ.pop("AIRFLOW_CONN_SECTOR_CIVIL_STATUS", None)
        drop_databases(params, created)


# ----------------------------------------------------------------------------- report

def table(results: list[dict]) -> str:
    head = ("N", "rows read", "e2e s", "e2e rows/s", "COPY rows/s", "COPY/e2e", "extract s", "dedupe s",
            "validate s", "publish s", "other s", "CPU s", "peak RSS MB")
    lines = []
    for r in results:
        t = r["times"]
        e2e = r["rows_read"] / t["total"]
        copy = r["copy_rows"] / r["copy_s"]
        other = t["begin"] + t["record_extract"] + t["cleanup"]
        lines.append((f"{r['n']:,}", f"{r['rows_read']:,}", f"{t['total']:.1f}", f"{e2e:,.0f}", f"{copy:,.0f}",
                      f"{copy / e2e:.1f}x", f"{t['extract']:.1f}", f"{t['dedupe']:.1f}", f"{t['validate']:.1f}",
                      f"{t['publish']:.1f}", f"{other:.1f}", f"{r['cpu']['total']:.1f}", f"{r['peak_rss_kb'] / 1024:.0f}"))
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(head)]
    fmt = lambda row: "  ".join(c.rjust(w) for c, w in zip(row, widths))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, lines)])


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, action="append", help="records to generate (repeatable; default 100000)")
    ap.add_argument("--server", default="", help="'embedded' or a libpq DSN of a maintenance database "
                                                 "(default: 127.0.0.1:5432 if it answers, else embedded)")
    args = ap.parse_args(argv)
    sizes = args.rows or [100_000]
    if any(n <= 0 for n in sizes):
        ap.error("--rows must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    params, label, started_here = resolve_server(args.server)
    results = []
    try:
        info = machine(params, label)
        load_before = os.getloadavg()
        with tempfile.TemporaryDirectory(prefix="ioc_bench_") as tmp:
            # an isolated Airflow home: the SDK reads the connection from the environment only
            os.environ["AIRFLOW_HOME"] = str(Path(tmp) / "airflow")
            for n in sizes:
                results.append(bench_one(params, n, Path(tmp)))
        load_after = os.getloadavg()
    finally:
        if started_here is not None:
            from ioc_pipeline import embedded_pg
            embedded_pg.stop_server(started_here)

    print()
    print(f"machine: nproc={info['nproc']}, RAM {info['ram_gb']:.1f} GB, PostgreSQL {info['postgres']} "
          f"({info['server']}); load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print("e2e = begin..cleanup in the ingest process (REST pages from the simulator process, staging COPY,"
          " dedupe, GX validation, publish); COPY = the same served rows as text into a plain table")
    print(table(results))
    for r in results:
        t = r["times"]
        print(f"N={r['n']:,}: generated {r['records']:,} records in {r['generate_s']:.1f} s (not timed); "
              f"migrate {t['migrate']:.1f} s (not in e2e); {r['distinct_keys']:,} distinct keys, "
              f"{r['duplicates_removed']:,} duplicates removed, {r['quarantined']:,} quarantined, "
              f"{r['rows_loaded']:,} loaded")
        c = r["cpu"]
        print(f"  wall s (ingest-process CPU s) per step: " + ", ".join(f"{s} {t[s]:.2f} ({c[s]:.2f})" for s in STEPS))
        print(f"  source side during the run, CPU s: simulator process {_fmt(r['sim_cpu'])}, "
              f"its PostgreSQL backends {_fmt(r['sim_db_cpu'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
