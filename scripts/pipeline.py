"""Local launcher behind `make demo`, `make run` and `make ui`.

It supplies the embedded defaults of operations.md and nothing else:
- without AIRFLOW_CONN_IOC_WAREHOUSE: an embedded PostgreSQL in .data/pg, database `ioc`;
- without the sector_* connections: the bundled simulator (its data in database `sector_sim`
  of the same embedded server, its REST API on 127.0.0.1:$IOC_SIM_PORT);
- without AIRFLOW_VAR_IOC_PII_KEY: a random key kept in .data/secrets (demo only);
- Airflow's own metadata in SQLite under .data/airflow.
Then it runs the real DAGs with `airflow dags test <dag_id> <date>`, one after the other.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("IOC_DATA_DIR", REPO / ".data")).resolve()
sys.path.insert(0, str(REPO / "plugins"))
sys.path.insert(0, str(REPO))

DEMO_DATE = "2026-11-20"
SIM_TOKEN_FILE = DATA / "secrets" / "simulator_token"
PII_KEY_FILE = DATA / "secrets" / "ioc_pii_key"


def log(msg: str) -> None:
    print(f"[pipeline] {msg}", flush=True)


def _secret(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def airflow_env() -> None:
    home = DATA / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW_HOME", str(home))
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
    os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__DEFAULT_TIMEZONE", "Asia/Ho_Chi_Minh")
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    # `airflow standalone` and `dags test` spawn `airflow` subprocesses: our bin must be on PATH.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "plugins"), str(REPO), os.environ.get("PYTHONPATH")]))
    if "AIRFLOW_VAR_IOC_PII_KEY" not in os.environ:
        os.environ["AIRFLOW_VAR_IOC_PII_KEY"] = _secret(PII_KEY_FILE)


def _conn_json(**kw) -> str:
    return json.dumps({k: v for k, v in kw.items() if v is not None})


def ensure_warehouse() -> str | None:
    """Embedded warehouse unless AIRFLOW_CONN_IOC_WAREHOUSE is set; returns the socket dir if embedded."""
    if os.environ.get("AIRFLOW_CONN_IOC_WAREHOUSE"):
        log("warehouse: AIRFLOW_CONN_IOC_WAREHOUSE")
        return None
    from devtools import embedded_pg

    socket_dir = embedded_pg.ensure_server(DATA / "pg")
    _create_db(socket_dir, "ioc")
    os.environ["AIRFLOW_CONN_IOC_WAREHOUSE"] = _conn_json(conn_type="postgres", host=socket_dir, login="postgres", schema="ioc")
    log(f"warehouse: embedded PostgreSQL (socket {socket_dir}), database ioc")
    return socket_dir


def _create_db(socket_dir: str, name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(host=socket_dir, user="postgres", dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def _port_answers(port: int) -> bool:
    import requests

    try:
        return requests.get(f"http://127.0.0.1:{port}/_sim/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _stop_simulator() -> None:
    pid_file = DATA / "simulator.pid"
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 15)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
    except (OSError, ValueError):
        pass
    pid_file.unlink(missing_ok=True)


def ensure_simulator(as_of: str, socket_dir: str | None) -> None:
    """Start the simulator for every sector connection of the catalog that is not configured: by
    the kind of its sources, a REST one gets the simulator's URL, an SQL one its database
    sector_sim, a file one its landing folder."""
    from ioc_pipeline.declaration import catalog

    rest, sql, files_ = (catalog.connections(kind) for kind in ("rest", "sql", "file"))
    missing = [c for c in (*rest, *sql, *files_) if f"AIRFLOW_CONN_{c.upper()}" not in os.environ]
    if not missing:
        log("sector sources: configured connections")
        return
    from devtools import embedded_pg

    sim_socket = socket_dir or embedded_pg.ensure_server(DATA / "pg")
    _create_db(sim_socket, "sector_sim")
    dsn = embedded_pg.dsn(sim_socket, "sector_sim")
    records = os.environ.get("IOC_SIM_RECORDS", "20000")
    landing = DATA / "landing"
    missing_files = [c for c in missing if c in files_]
    files = ["--landing", str(landing)] if missing_files else []
    if missing == missing_files:   # only the file sources come from the simulator
        files.append("--files-only")
    what = "file deliveries only" if "--files-only" in files else f"{records} civil-status records"
    log(f"simulator: generating sector data up to {as_of} ({what}{', files in ' + str(landing) if files else ''})")
    subprocess.run([sys.executable, "-m", "simulator", "generate", "--dsn", dsn, "--until", as_of,
                    "--records", records, *files], check=True, cwd=REPO)
    for conn_id in missing_files:
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
            {"conn_type": "fs", "extra": {"path": str(landing.resolve())}})
    if missing_files:
        log(f"sector sources: simulator landing folder {landing} for {', '.join(missing_files)}")
    missing_sql = [c for c in missing if c in sql]
    for conn_id in missing_sql:
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = _conn_json(
            conn_type="postgres", host=sim_socket, login="postgres", schema="sector_sim")
    if missing_sql:
        log(f"sector sources: simulator database sector_sim for {', '.join(missing_sql)}")
    missing = [c for c in missing if c in rest]
    if not missing:
        return
    port = int(os.environ.get("IOC_SIM_PORT", "8765"))
    token = _secret(SIM_TOKEN_FILE)
    # restart our own simulator every time, so it serves the code and data of this checkout
    _stop_simulator()
    if _port_answers(port):
        raise SystemExit(f"port {port} already serves another simulator (another checkout?): "
                         f"stop it, or set IOC_SIM_PORT to a free port")
    logf = open(DATA / "simulator.log", "ab")
    faults = ["--faults", os.environ["IOC_SIM_FAULTS"]] if os.environ.get("IOC_SIM_FAULTS") else []
    # the token goes through the environment, not the command line (process listings)
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "serve", "--dsn", dsn, "--port", str(port)] + faults,
                            cwd=REPO, stdout=logf, stderr=logf, start_new_session=True,
                            env={**os.environ, "SIM_TOKEN": token})
    (DATA / "simulator.pid").write_text(str(proc.pid))
    for _ in range(100):
        if _port_answers(port):
            break
        if proc.poll() is not None:
            raise SystemExit(f"the simulator exited with {proc.returncode}; see .data/simulator.log")
        time.sleep(0.2)
    else:
        raise SystemExit("the simulator did not answer within 20 s; see .data/simulator.log")
    for conn_id in missing:
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = _conn_json(
            conn_type="http", host="127.0.0.1", port=port, schema="http", password=token)
    log(f"sector sources: simulator on http://127.0.0.1:{port} for {', '.join(missing)}")


def airflow_db() -> None:
    subprocess.run(["airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def dag_ids() -> list[str]:
    from ioc_pipeline.declaration import catalog

    return [s.dag_id for s in catalog.load().values()]


def run_dag(dag_id: str, as_of: str, logdir: Path) -> tuple[bool, str]:
    logfile = logdir / f"{dag_id}.log"
    with open(logfile, "wb") as out:
        proc = subprocess.run(["airflow", "dags", "test", dag_id, as_of, "-c", json.dumps({"as_of_date": as_of})],
                              stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode == 0:
        return True, ""
    reason = f"see {logfile}"
    for line in logfile.read_text(errors="replace").splitlines():
        if " failed in task " in line and dag_id in line:
            reason = line.split(" failed in task ", 1)[1].split(" [", 1)[0].strip()
    return False, reason


def run(as_of: str) -> list[str]:
    """Every ingest DAG, then the refresh (also after failures: last known good); returns the
    ids of the DAGs that failed."""
    dt.date.fromisoformat(as_of)
    logdir = DATA / "logs" / f"run-{as_of}"
    logdir.mkdir(parents=True, exist_ok=True)
    failed = []
    for dag_id in dag_ids() + ["refresh_ioc_views"]:
        t0 = time.monotonic()
        ok, reason = run_dag(dag_id, as_of, logdir)
        if not ok:
            failed.append(dag_id)
        print(f"{dag_id} success" if ok else f"{dag_id} failed {reason}", flush=True)
        log(f"  ({time.monotonic() - t0:.1f}s, log: {logdir / (dag_id + '.log')})")
    return failed


def print_indicators() -> None:
    from ioc_pipeline import warehouse

    conn = warehouse.connect()
    with conn, conn.cursor() as cur:
        cur.execute("""SELECT v.indicator_code, v.admin_name, v.as_of_date, v.numerator, v.denominator, v.value,
                              v.target_value, v.status,
                              (SELECT count(*) FROM ioc.indicator_values c WHERE c.indicator_code = v.indicator_code
                                 AND c.admin_level = 'commune' AND c.status = 'met') AS communes_met,
                              (SELECT count(*) FROM ioc.indicator_values c WHERE c.indicator_code = v.indicator_code
                                 AND c.admin_level = 'commune') AS communes
                         FROM ioc.indicator_values v WHERE v.admin_level = 'province' ORDER BY v.indicator_code""")
        rows = cur.fetchall()
    conn.close()
    if not rows:
        print("ioc.indicator_values is empty")
        return
    print(f"\nIOC indicators for {rows[0][1]} as of {rows[0][2]} (ioc.indicator_values, province rows)")
    header = ("indicator_code", "numerator", "denominator", "value", "target", "status", "communes met")
    table = [header] + [(r[0], f"{r[3]:,}", "" if r[4] is None else f"{r[4]:,}", "" if r[5] is None else str(r[5]),
                         "" if r[6] is None else str(r[6]), r[7], f"{r[8]}/{r[9]}" if r[9] else "") for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(str(c).ljust(w) if j in (0, 5) else str(c).rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("demo", help="whole nightly pipeline for the demo date, then the indicator table")
    r = sub.add_parser("run", help="every ingest DAG then refresh_ioc_views for DATE")
    r.add_argument("date")
    sub.add_parser("ui", help="airflow standalone on the same configuration")
    sub.add_parser("stop", help="stop the simulator and the embedded PostgreSQL")
    c = sub.add_parser("check-suite", help="run a source's suite on a sample of the source, publish nothing")
    c.add_argument("source")
    c.add_argument("--suite", help="suite file to try (default include/expectations/<source>.json)")
    c.add_argument("--date", default=DEMO_DATE)
    sub.add_parser("docs", help="build the data-quality report (Data Docs) from the warehouse and say where it is")
    q = sub.add_parser("quarantine", help="quarantined rows of a source per batch, with reasons (masked values)")
    q.add_argument("source")
    q.add_argument("--batch", type=int, help="only this batch, all its rows")
    args = ap.parse_args()

    if args.cmd == "stop":
        return stop()
    if args.cmd in ("docs", "quarantine"):   # read the warehouse only: no simulator, no pipeline run
        airflow_env()
        ensure_warehouse()
        return docs() if args.cmd == "docs" else quarantine(args.source, args.batch)
    as_of = DEMO_DATE if args.cmd in ("demo", "ui") else args.date
    airflow_env()
    if args.cmd == "check-suite":
        socket_dir = ensure_warehouse()
        ensure_simulator(as_of, socket_dir)
        return check_suite(args.source, as_of, args.suite)
    socket_dir = ensure_warehouse()
    ensure_simulator(as_of, socket_dir)
    airflow_db()
    if args.cmd == "ui":
        log("starting airflow standalone on http://localhost:8080 (admin password in .data/airflow/simple_auth_manager_passwords.json.generated)")
        os.execvp("airflow", ["airflow", "standalone"])
    t0 = time.monotonic()
    failed = run(as_of)
    if args.cmd != "demo":
        return 1 if failed else 0
    print_indicators()
    log(f"demo finished in {time.monotonic() - t0:.0f}s")
    if "refresh_ioc_views" in failed:
        return 1
    if failed:
        # The simulator delivers broken files and bad rows on purpose (sources.md, "What goes
        # wrong"): the contract fails those batches, the other files and sources load, and the
        # views count the last good data. `make run` exits 1 in that case; the demo shows it.
        log(f"{len(failed)} ingest DAG(s) reported failed batches, as the simulator's injected faults "
            f"require: {', '.join(failed)}; why: the lines above, `make quarantine SOURCE=<code>`, `make docs`")
    return 0


def check_suite(code: str, as_of: str, suite: str | None) -> int:
    from ioc_pipeline.declaration import catalog
    from ioc_pipeline import config, warehouse
    from ioc_pipeline.quality import suite_check
    from ioc_pipeline.ingest import validation

    source = catalog.get(code)
    conn = warehouse.connect()
    try:
        warehouse.migrate(conn)
        rows, results = suite_check.check(
            conn, source, dt.date.fromisoformat(as_of), fetch=suite_check.sample_fetcher(source),
            key=config.pii_key(), province_code=config.province_code(),
            sqlalchemy_url=config.postgres_params(config.WAREHOUSE_CONN_ID).sqlalchemy_url(),
            suite_path=Path(suite) if suite else None)
    except validation.SuiteError as exc:
        print(f"suite does not load: {exc}")
        return 2
    finally:
        conn.close()
    print(f"\n{code}: {len(results)} expectations on a sample of {rows} rows (as of {as_of})")
    for line in suite_check.format_results(results):
        print(line)
    failed = [r for r in results if not r.success]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 0


def docs() -> int:
    from ioc_pipeline.quality import data_docs
    from ioc_pipeline import warehouse

    conn = warehouse.connect()
    try:
        warehouse.migrate(conn)
        index = data_docs.build(conn)
    finally:
        conn.close()
    print(f"Data Docs: file://{index}")
    return 0


def quarantine(code: str, batch_id: int | None) -> int:
    from ioc_pipeline.declaration import catalog
    from ioc_pipeline.quality import quarantine_report
    from ioc_pipeline import warehouse

    source = catalog.get(code)
    limit = None if batch_id else 20   # one batch: every row; all batches: a sample of each
    conn = warehouse.connect()
    try:
        warehouse.migrate(conn)
        found = quarantine_report.batches(conn, code, batch_id, limit=limit)
        still_open = quarantine_report.open_rows(conn, source)
    finally:
        conn.close()
    if batch_id and not found:
        print(f"{code}: batch {batch_id} quarantined no row (or is not a batch of {code})")
        return 0
    for line in quarantine_report.format_report(source, found, still_open, row_limit=limit):
        print(line)
    return 0


def stop() -> int:
    from devtools import embedded_pg

    _stop_simulator()
    embedded_pg.stop_server(DATA / "pg")
    log("simulator and embedded PostgreSQL stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
