"""Benchmark: the nightly incremental cycle and refresh_ioc_views at province scale.

Why: operations.md's night has a window; the cycle's wall time (every ingest DAG for one day
of deltas, then the refresh) is what must fit in it, on a warehouse that already holds years of
history, and the IOC's view refresh alone is what an operator re-runs by hand.

1. fresh databases; the simulator generates a province-scale history up to D-1 of all eight
   sources: civil_status, population, public_services, land, tuition in its database, and the
   file deliveries in a landing folder (health_visits: one CSV per facility and day for the last
   days; social_payments: one workbook a month since 2025 and its re-deliveries;
   project06_tracker: the weekly tracker version); not timed;
2. a spawned child loads that history through the real path, as-of D-1 (not timed, reported);
3. the simulator extends every source to D (one day of new records and of updates to old ones)
   and the facilities deliver D's files;
4. a fresh spawned child times, for as-of D, what the DAG tasks run: for each ingest DAG its
   migration check, begin, extract, dedupe, validate, publish, cleanup (file source: discover +
   one batch per file), then refresh_ioc_views' three tasks (refresh.refresh, reconcile,
   data_docs.build); then refresh.refresh alone, REPEATS times.

Ingest DAGs run one after the other here: the sum is the cycle's worst case (Airflow may run
them in parallel on more workers). The REST sources are served by `python -m simulator serve`
in its own process. Databases are named ioc_bench_* and dropped at the end, also on error.

    python bench/bench_nightly.py [--civil-status 1000000] [--date 2026-11-20] [--server ...]
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib
from benchlib import PROVINCE

log = logging.getLogger("bench_nightly")

SEED = 11
REPEATS = 3
CYCLE_STEPS = ("begin", "extract", "dedupe", "validate", "publish", "cleanup")
SOURCES = ("civil_status", "population", "public_services", "land", "tuition", "health_visits", "social_payments",
           "project06_tracker")
FILE_SOURCES = ("health_visits", "social_payments", "project06_tracker")


def generate(sim_dsn: str, landing: Path, until: dt.date, scale: dict) -> dict:
    """Generate (or extend) every simulated source up to `until`; returns generated counts."""
    from simulator import (civil_status, health_visits, land, population, project06_tracker, public_services,
                           social_payments, tuition)

    return {
        "civil_status": civil_status.generate(sim_dsn, until=until, records=scale["civil_status"], seed=SEED)["inserted"],
        "population": population.generate(sim_dsn, until=until, days=scale["population_days"], seed=SEED)["rows"],
        "public_services": public_services.generate(sim_dsn, until=until, dossiers=scale["public_services"],
                                                    seed=SEED)["inserted"],
        "land": land.generate(sim_dsn, until=until, certificates=scale["land"], seed=SEED)["inserted"],
        "tuition": tuition.generate(sim_dsn, until=until, payments=scale["tuition"], seed=SEED)["rows"],
        # file sources: a later call delivers only the days (months, weeks) after the last one
        "health_visits": health_visits.generate(sim_dsn, landing, until=until, visits_per_day=scale["visits_per_day"],
                                                health_days=scale["health_days"], facilities=scale["facilities"],
                                                seed=SEED)["rows"],
        "social_payments": social_payments.generate(sim_dsn, landing, until=until, seed=SEED,
                                                    payments_per_month=scale["payments_per_month"])["rows"],
        "project06_tracker": project06_tracker.generate(sim_dsn, landing, until=until, seed=SEED,
                                                        tasks=scale["tasks"])["tasks"],
    }


def cycle_child(wh_dsn: str, as_of: str, key_hex: str, landing: str, phase: str) -> dict:
    """Spawned: every ingest path for `as_of` (phase 'history' or 'cycle'), then (cycle) the refresh."""
    benchlib.child_logging(phase)
    from ioc_pipeline.declaration import catalog
    from ioc_pipeline.quality import data_docs
    from ioc_pipeline.views import reconciliation, refresh
    from ioc_pipeline import warehouse
    import ingest_path

    import airflow.sdk  # noqa: F401  (already imported in an Airflow worker)

    day, key = dt.date.fromisoformat(as_of), key_hex.encode()
    url = benchlib.sqlalchemy_url(wh_dsn)
    conn = warehouse.connect(wh_dsn, application_name=f"ioc_bench_{phase}")
    if phase == "history":
        warehouse.migrate(conn)
    timer = ingest_path.Recorder()
    out: dict = {"sources": {}}
    start = time.perf_counter()
    for code in SOURCES:
        timer.reset()
        t = time.perf_counter()
        try:
            got = ingest_path.run_source(conn, catalog.get(code), day, key=key, sqlalchemy_url=url, timer=timer,
                                         landing=Path(landing), migrate=phase == "cycle", raise_on_failed_file=False)
            # the simulator delivers some faulty files on purpose: the DAG run fails on them, the others load
            got["status"] = f"failed: {len(got['failures'])} file(s)" if got.get("failures") else "success"
        except Exception as exc:  # noqa: BLE001 - the DAG run fails; the others and the refresh still run
            log.error("%s %s failed: %s", phase, code, exc)
            got = {"rows_read": 0, "rows_loaded": 0, "quarantined": 0, "status": f"failed: {str(exc)[:120]}"}
        got["seconds"] = time.perf_counter() - t
        got["steps"] = dict(timer.wall)
        out["sources"][code] = got
        log.info("%s %s: %.1f s, %s", phase, code, got["seconds"], got)
    if phase == "history" and (failed := [c for c, g in out["sources"].items()
                                          if g["status"] != "success" and not g.get("failures")]):
        raise RuntimeError(f"history load failed for {', '.join(failed)}")
    out["ingest_s"] = time.perf_counter() - start
    if phase == "cycle":
        refresh_steps = {}
        t = time.perf_counter()
        refresh_steps["refresh"] = refresh.refresh(conn, day, PROVINCE)["rows"], time.perf_counter() - t
        t = time.perf_counter()
        reconciliation.reconcile(conn, day, PROVINCE)
        refresh_steps["reconcile"] = None, time.perf_counter() - t
        t = time.perf_counter()
        data_docs.build(conn, Path(landing).parent / "data_docs")
        refresh_steps["data_docs"] = None, time.perf_counter() - t
        out["refresh_dag"] = refresh_steps
        out["cycle_s"] = time.perf_counter() - start
        alone = []
        for _ in range(REPEATS):  # the view refresh an operator re-runs: same date, warm cache
            t = time.perf_counter()
            refresh.refresh(conn, day, PROVINCE)
            alone.append(time.perf_counter() - t)
        out["refresh_alone"] = alone
        with warehouse.transaction(conn) as cur:
            cur.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            out["db_size"] = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM mart.indicator_history WHERE as_of_date = %s", (day,))
            out["indicator_rows"] = cur.fetchone()[0]
    conn.close()
    return out


def airflow_dags_test(wh_dsn: str, key_hex: str, day: dt.date, home: Path, dag_ids: tuple[str, ...]) -> dict:
    """Wall seconds of `airflow dags test <dag> <D>` (what `make run` does per DAG) against the same
    warehouse: the Airflow overhead per DAG run, next to the in-process times of the same work.
    The metadata database (SQLite, in `home`) is migrated first, not timed."""
    import subprocess

    env = {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(benchlib.REPO / "dags"),
           "AIRFLOW__CORE__PLUGINS_FOLDER": str(benchlib.REPO / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__DEFAULT_TIMEZONE": "Asia/Ho_Chi_Minh", "AIRFLOW_VAR_IOC_PII_KEY": key_hex,
           "AIRFLOW_CONN_IOC_WAREHOUSE": benchlib.pg_conn_json(wh_dsn),
           "IOC_DATA_DIR": str(home),  # data_docs.build writes here, never into the shared .data/
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": os.pathsep.join([str(benchlib.REPO / "plugins"), str(benchlib.REPO)])}
    home.mkdir(parents=True, exist_ok=True)
    subprocess.run(["airflow", "db", "migrate"], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    out = {}
    for dag_id in dag_ids:
        t = time.perf_counter()
        with open(home / f"{dag_id}.log", "wb") as logf:
            proc = subprocess.run(["airflow", "dags", "test", dag_id, day.isoformat(), "-c",
                                   f'{{"as_of_date": "{day.isoformat()}"}}'], env=env, stdout=logf,
                                  stderr=subprocess.STDOUT)
        out[dag_id] = (proc.returncode, time.perf_counter() - t)
        log.info("airflow dags test %s: exit %d in %.1f s", dag_id, *out[dag_id])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2026, 11, 20), help="the cycle's as-of date D")
    ap.add_argument("--civil-status", type=int, default=1_000_000, help="civil-status records 2005..D-1")
    ap.add_argument("--public-services", type=int, default=500_000, help="dossiers 2024..D-1")
    ap.add_argument("--land", type=int, default=100_000,
                    help="land certificates 2012..D-1 (its generator is quadratic: keep it small)")
    ap.add_argument("--tuition", type=int, default=500_000, help="school-fee payments 2024..D-1")
    ap.add_argument("--visits-per-day", type=int, default=15_000, help="health-insurance visits a day (weekday)")
    ap.add_argument("--facilities", type=int, default=20, help="health facilities (one CSV each a day)")
    ap.add_argument("--payments-per-month", type=int, default=5_000,
                    help="social-payment beneficiaries (one workbook a month since 2025-01)")
    ap.add_argument("--tasks", type=int, default=60, help="Project 06 tracker tasks")
    ap.add_argument("--health-days", type=int, default=7, help="days of health files before D")
    ap.add_argument("--population-days", type=int, default=60)
    ap.add_argument("--server", default="")
    ap.add_argument("--airflow", action="store_true",
                    help="also time `airflow dags test` of ingest_land and refresh_ioc_views for D once")
    args = ap.parse_args(argv)
    scale = {"civil_status": args.civil_status, "public_services": args.public_services, "land": args.land,
             "tuition": args.tuition, "visits_per_day": args.visits_per_day, "facilities": args.facilities,
             "health_days": args.health_days, "population_days": args.population_days,
             "payments_per_month": args.payments_per_month, "tasks": args.tasks}
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    day, before = args.date, args.date - dt.timedelta(days=1)

    params, label, started_here = benchlib.resolve_server(args.server)
    created: list[str] = []
    sim_proc = None
    conn_envs = ("AIRFLOW_CONN_SECTOR_CIVIL_STATUS", "AIRFLOW_CONN_SECTOR_POPULATION",
                 "AIRFLOW_CONN_SECTOR_PUBLIC_SERVICES", "AIRFLOW_CONN_SECTOR_LAND", "AIRFLOW_CONN_SECTOR_TUITION")
    try:
        info = benchlib.machine(params, label)
        with tempfile.TemporaryDirectory(prefix="ioc_bench_nightly_") as tmp:
            os.environ["AIRFLOW_HOME"] = str(Path(tmp) / "airflow")
            landing = Path(tmp) / "landing"
            landing.mkdir()
            wh_dsn = benchlib.create_database(params, "wh", created)
            sim_dsn = benchlib.create_database(params, "sim", created)
            t = time.perf_counter()
            history = generate(sim_dsn, landing, before, scale)
            gen_s = time.perf_counter() - t
            log.info("history up to %s generated in %.0f s: %s", before, gen_s, history)

            token = uuid.uuid4().hex
            sim_proc, port = benchlib.start_simulator(sim_dsn, token, Path(tmp) / "simulator.log")
            for env in conn_envs[:3]:
                os.environ[env] = benchlib.rest_conn_json(port, token)
            for env in conn_envs[3:]:
                os.environ[env] = benchlib.pg_conn_json(sim_dsn)
            key_hex = os.urandom(32).hex()

            t = time.perf_counter()
            loaded = benchlib.run_in_child(cycle_child, wh_dsn, before.isoformat(), key_hex, str(landing), "history")
            load_s = time.perf_counter() - t
            log.info("history loaded in %.0f s", load_s)

            t = time.perf_counter()
            deltas = generate(sim_dsn, landing, day, scale)
            delta_s = time.perf_counter() - t
            log.info("deltas of %s generated in %.1f s: %s", day, delta_s, deltas)

            load_before = os.getloadavg()
            cycle = benchlib.run_in_child(cycle_child, wh_dsn, day.isoformat(), key_hex, str(landing), "cycle")
            load_after = os.getloadavg()
            dags_test = (airflow_dags_test(wh_dsn, key_hex, day, Path(tmp) / "airflow-dags-test",
                                           ("ingest_land", "refresh_ioc_views")) if args.airflow else {})
    finally:
        if sim_proc is not None:
            benchlib.stop_process(sim_proc)
        for env in conn_envs:
            os.environ.pop(env, None)
        benchlib.drop_databases(params, created)
        benchlib.stop_embedded(started_here)

    print()
    print(benchlib.machine_line(info, load_before, load_after) + " (during the timed cycle)")
    print(f"history up to {before}: generated in {gen_s:.0f} s ({', '.join(f'{c} {n:,}' for c, n in history.items())}),"
          f" loaded through the pipeline in {load_s:.0f} s (not timed): "
          + ", ".join(f"{c} {loaded['sources'][c]['rows_loaded']:,}" for c in SOURCES)
          + "".join(f"; {c}: {len(g['failures'])} faulty file(s) refused" for c, g in loaded["sources"].items()
                    if g.get("failures")))
    print(f"deltas for {day}: generated in {delta_s:.1f} s; warehouse after the cycle {cycle['db_size']}")
    print(f"nightly cycle for {day}, every ingest path then refresh_ioc_views, one after the other:")
    lines = []
    for code in SOURCES:
        s = cycle["sources"][code]
        st = s["steps"]
        lines.append((code, s["status"].split(":")[0], f"{s['rows_read']:,}", f"{s['rows_loaded']:,}", f"{s['quarantined']:,}",
                      *(f"{st.get(k, 0.0):.1f}" for k in CYCLE_STEPS), f"{s['seconds']:.1f}"))
    for name, (rows, secs) in cycle["refresh_dag"].items():
        lines.append((f"refresh_ioc_views.{name}", "success", f"{rows:,}" if rows is not None else "", "", "",
                      *("" for _ in CYCLE_STEPS), f"{secs:.1f}"))
    lines.append(("total (cycle)", "", "", "", "", *("" for _ in CYCLE_STEPS), f"{cycle['cycle_s']:.1f}"))
    print(benchlib.format_table(("task", "status", "rows read", "loaded", "quarantined", *(f"{k} s" for k in CYCLE_STEPS),
                                 "wall s"), lines))
    for code in SOURCES:
        if cycle["sources"][code]["status"] != "success":
            print(f"  {code}: {cycle['sources'][code]['status']} " + "; ".join(cycle["sources"][code].get("failures", [])))
    for dag_id, (rc, secs) in dags_test.items():
        print(f"`airflow dags test {dag_id} {day}` (same warehouse, after the cycle): exit {rc}, {secs:.1f} s wall")
    alone = cycle["refresh_alone"]
    print(f"refresh_ioc_views' refresh.refresh alone for {day} ({cycle['indicator_rows']} indicator rows), "
          f"{REPEATS} runs: " + ", ".join(f"{s:.2f}" for s in alone) + f" s (median {statistics.median(alone):.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
