"""Benchmark: the IOC page's server time at province scale with a year of history.

Why: the issue's bar is every page under 300 ms of server time for one province (94 communes,
19 indicators) with 365 days of ioc.indicator_history; the wall view and the operators' screens
reload them all day.

1. a fresh database, migrated; `web_history.fill` writes 365 as-of dates (the real refresh's
   rows as template: 94 communes x 14 commune-level indicators + 19 province rows a day, about
   487k rows) and a run, batch and 20 validation results per source and day; not timed;
2. `python -m ioc_web` in its own process, logged in as a login IN ROLE ioc_reader;
3. each page REQUESTS times over HTTP after one warm-up request: the server's own time (its
   Server-Timing header, from request in to response out), the part spent waiting for
   PostgreSQL, the server process's CPU time meanwhile, the CPU time of the PostgreSQL backends
   serving the page (from /proc, same machine only) and the client's wall time. The two CPU
   times do not depend on what else the machine runs: together they are about what a page takes
   on a machine with a core to spare.

    python bench/bench_web.py [--days 365] [--requests 20] [--server DSN|embedded]
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib

import requests

log = logging.getLogger("bench_web")
UNTIL = dt.date(2026, 11, 20)
TARGET_MS = 300


def pages(dsn: str) -> list[tuple[str, str]]:
    import psycopg2

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT min(admin_code) FROM ioc.indicator_values WHERE admin_level = 'commune'")
        commune = cur.fetchone()[0]
    conn.close()
    earlier = UNTIL - dt.timedelta(days=100)
    return [("overview", "/"), ("overview, English", "/?lang=en"), (f"overview, {earlier}", f"/?date={earlier}"),
            ("indicator (94 communes)", "/indicator/BHYT_CHIP_ID_VISITS_PCT"),
            ("indicator, province only", "/indicator/P06_MODELS_DONE"),
            ("indicator CSV", "/indicator/BHYT_CHIP_ID_VISITS_PCT/csv"),
            ("commune", f"/commune/{commune}"), ("commune index", "/communes"), ("wall view", "/wall")]


def backend_cpu_ms(admin_dsn: str, role: str) -> float | None:
    """CPU time (user + system) so far of the PostgreSQL backends serving the page's login, read
    from /proc (same machine only): PostgreSQL's own work for the page, whatever the load."""
    import psycopg2

    with psycopg2.connect(admin_dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE usename = %s", (role,))
        pids = [r[0] for r in cur.fetchall()]
    conn.close()
    ticks, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None   # another machine, or a backend gone
        total += int(fields[11]) + int(fields[12])   # utime, stime (fields 14 and 15 of stat)
    return total * 1000 / ticks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--server", default=os.environ.get("IOC_TEST_POSTGRES", ""))
    ap.add_argument("--port", type=int, default=0, help="the page's port (default: a free one)")
    ap.add_argument("--keep", action="store_true", help="keep the filled database (its name is printed)")
    ap.add_argument("--database", help="reuse a database an earlier --keep run filled (not dropped)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from ioc_web import serve
    import web_history

    params, label, started_here = benchlib.resolve_server(args.server)
    created: list[str] = []
    role = f"ioc_web_bench_{uuid.uuid4().hex[:8]}"
    proc = None
    load_before = os.getloadavg()
    try:
        if args.database:
            dsn = benchlib.dsn_of(params, args.database)
            counts = web_history.counts(dsn)
        else:
            dsn = benchlib.create_database(params, "web", created)
            t0 = time.monotonic()
            counts = web_history.fill(dsn, UNTIL, args.days)
            log.info("history: %s in %.0f s (not timed)", counts, time.monotonic() - t0)
        serve.ensure_login(dsn, "bench-password", role=role)
        login = f"{dsn} user={role} password=bench-password"
        port = args.port or benchlib.free_port()
        proc = subprocess.Popen([sys.executable, "-m", "ioc_web", "--port", str(port)], cwd=benchlib.REPO,
                                env={**os.environ, "IOC_WEB_DSN": login}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        for _ in range(150):
            if serve.answers(url + "/"):
                break
            time.sleep(0.2)
        results = []
        with requests.Session() as http:
            for name, path in pages(dsn):
                http.get(url + path).raise_for_status()   # warm-up: the pool's connection, cached SQL files
                server_ms, db_ms, cpu_ms, wall_ms = [], [], [], []
                pg_before = backend_cpu_ms(dsn, role)
                for _ in range(args.requests):
                    t = time.perf_counter()
                    r = http.get(url + path)
                    wall_ms.append((time.perf_counter() - t) * 1000)
                    r.raise_for_status()
                    timing = dict(part.strip().split(";dur=") for part in r.headers["Server-Timing"].split(","))
                    server_ms.append(float(timing["app"]))
                    db_ms.append(float(timing["db"]))
                    cpu_ms.append(float(timing["cpu"]))
                pg_after = backend_cpu_ms(dsn, role)
                pg_ms = None if pg_before is None or pg_after is None else (pg_after - pg_before) / args.requests
                results.append((name, path, len(r.content), server_ms, db_ms, cpu_ms, pg_ms, wall_ms))
        info = benchlib.machine(params, label)
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)
        db = args.database or (created[0] if created else None)
        if db:
            benchlib._maintenance(params, f'REVOKE ALL ON DATABASE "{db}" FROM "{role}"')
        if args.keep:
            print(f"kept database {created[0]} (--database {created[0]} reuses it; drop it when done)")
        else:
            benchlib.drop_databases(params, created)
        benchlib._maintenance(params, f'DROP ROLE IF EXISTS "{role}"')
        benchlib.stop_embedded(started_here)
    print(f"\nIOC page server time, {counts['history_rows']:,} history rows over {counts['dates']} as-of dates, "
          f"{args.requests} requests per page after a warm-up (ms)")
    header = ("page", "bytes", "server median", "server p95", "server max", "of which db (median)",
              "page CPU (median)", "PostgreSQL CPU (mean)", "client median", f"p95 < {TARGET_MS} ms")
    table = [header]
    for name, _path, size, server_ms, db_ms, cpu_ms, pg_ms, wall_ms in results:
        p95 = statistics.quantiles(server_ms, n=20, method="inclusive")[-1] if len(server_ms) > 1 else server_ms[0]
        table.append((name, f"{size:,}", f"{statistics.median(server_ms):.1f}", f"{p95:.1f}", f"{max(server_ms):.1f}",
                      f"{statistics.median(db_ms):.1f}", f"{statistics.median(cpu_ms):.1f}",
                      "n/a" if pg_ms is None else f"{pg_ms:.1f}",
                      f"{statistics.median(wall_ms):.1f}", "yes" if p95 < TARGET_MS else "NO"))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(str(c).ljust(w) if j == 0 else str(c).rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(benchlib.machine_line(info, load_before, os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
