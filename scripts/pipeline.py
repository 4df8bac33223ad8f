"""Local launcher behind `make demo`, `make run` and `make ui`.

It supplies the embedded defaults of operations.md and nothing else:
- without AIRFLOW_CONN_IOC_WAREHOUSE: an embedded PostgreSQL in .data/pg, database `ioc`;
- without the sector_* connections: the bundled simulator (its data in database `sector_sim`
  of the same embedded server, its REST API on 127.0.0.1:$IOC_SIM_PORT);
- without AIRFLOW_VAR_IOC_PII_KEY: a random key kept in .data/secrets (demo only);
- Airflow's own metadata in SQLite under .data/airflow.
It migrates the warehouse as its owner first (`migrate`, also `make migrate`: the DAGs only check
that it is migrated). Then it runs the real DAGs with `airflow dags test <dag_id>` (as-of date in the run's conf), one
after the other, printing `[n/N] <dag_id> ...`, a heartbeat with the latest progress line of the
task log, and each DAG's outcome with every failure reason on its own line. It copies each run's
task logs where `make ui` reads them. Ports (docs/operations.md): IOC_SIM_PORT for the simulator,
IOC_UI_PORT for `make ui`; `make stop` stops every process these commands started.
The embedded server also listens on 127.0.0.1:$IOC_PG_PORT (default 5433) for password logins
(BI tools, the IOC page); `web` starts the IOC page (ioc_web) on 127.0.0.1:$IOC_WEB_PORT.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import signal
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
PG_TCP_PORT = int(os.environ.get("IOC_PG_PORT", "5433"))     # 0: the embedded server stays socket-only
WEB_PORT = int(os.environ.get("IOC_WEB_PORT", "8050"))
WEB_PASSWORD_FILE = DATA / "secrets" / "ioc_dashboard_password"
UI_PID_FILE = DATA / "airflow-ui.pid"
HEARTBEAT_S = 10   # a line at least this often while a DAG runs


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
    # OpenLineage events of every task (orchestration/lineage.py), appended to a local file
    os.environ.setdefault("AIRFLOW__OPENLINEAGE__EXTRACTORS", "ioc_pipeline.orchestration.lineage.IocTaskExtractor")
    os.environ.setdefault("AIRFLOW__OPENLINEAGE__NAMESPACE", "ioc")
    (DATA / "lineage").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(
        {"type": "file", "log_file_path": str(DATA / "lineage" / "openlineage.jsonl"), "append": True}))


def _conn_json(**kw) -> str:
    return json.dumps({k: v for k, v in kw.items() if v is not None})


def ensure_warehouse() -> str | None:
    """Embedded warehouse unless AIRFLOW_CONN_IOC_WAREHOUSE is set; returns the socket dir if embedded."""
    if os.environ.get("AIRFLOW_CONN_IOC_WAREHOUSE"):
        log("warehouse: AIRFLOW_CONN_IOC_WAREHOUSE")
        return None
    from devtools import embedded_pg

    log(f"warehouse: starting the embedded PostgreSQL in {DATA / 'pg'}, or reusing it (the first start runs initdb)")
    socket_dir = embedded_pg.ensure_server(DATA / "pg", tcp_port=PG_TCP_PORT)
    port = embedded_pg.server_port(DATA / "pg")   # names the socket file too
    _create_db(socket_dir, "ioc")
    os.environ["AIRFLOW_CONN_IOC_WAREHOUSE"] = _conn_json(conn_type="postgres", host=socket_dir, port=port,
                                                          login="postgres", schema="ioc")
    tcp = f", 127.0.0.1:{port} for password logins" if port == PG_TCP_PORT else ""
    log(f"warehouse: embedded PostgreSQL (socket {socket_dir}{tcp}), database ioc")
    return socket_dir


def migrate_warehouse() -> list[str]:
    """Apply the warehouse's migrations as its owner: AIRFLOW_CONN_IOC_WAREHOUSE_OWNER when set
    (a deployment), else ioc_warehouse's login (the embedded server's superuser). A migration changed
    after it was applied raises warehouse.MigrationError naming the file, nothing applied."""
    from ioc_pipeline import config, warehouse

    if not any(os.environ.get(f"AIRFLOW_CONN_{c.upper()}", "").strip()
               for c in (config.WAREHOUSE_OWNER_CONN_ID, config.WAREHOUSE_CONN_ID)):
        ensure_warehouse()   # the embedded defaults
    import psycopg2.errors

    owner = config.owner_params()
    conn = warehouse.connect(owner.dsn(), application_name="ioc_migrate")
    try:
        applied = warehouse.migrate(conn)
    except psycopg2.errors.InsufficientPrivilege as exc:
        # ioc_warehouse is a loader's login and no owner connection is set: fine if nothing is pending
        conn.rollback()
        log(f"warehouse: {owner.user} may not migrate ({str(exc).strip()}); checking the migrations are applied"
            f" (make migrate needs AIRFLOW_CONN_{config.WAREHOUSE_OWNER_CONN_ID.upper()})")
        warehouse.check_migrated(conn)
        log("warehouse: every migration is applied")
        return []
    finally:
        conn.close()
    log(f"warehouse: migrated as {owner.user}: " + (", ".join(applied) if applied else "nothing to apply"))
    return applied


def migrate() -> int:
    """`make migrate`, the compose service warehouse-migrate: exit 1 naming the changed migration."""
    from ioc_pipeline import warehouse

    try:
        migrate_warehouse()
    except warehouse.MigrationError as exc:
        print(f"[pipeline] migrate: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


def _create_db(socket_dir: str, name: str) -> None:
    import psycopg2

    from devtools import embedded_pg

    conn = psycopg2.connect(host=socket_dir, port=embedded_pg.server_port(DATA / "pg"), user="postgres",
                            dbname="postgres")
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


def _stop(pid_file: Path) -> bool:
    """Stop the background process of `pid_file` (simulator, IOC page); True if one ran."""
    if not pid_file.exists():
        return False
    stopped = False
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 15)
        stopped = True
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
    except (OSError, ValueError):
        pass
    pid_file.unlink(missing_ok=True)
    return stopped


def _stop_simulator() -> None:
    _stop(DATA / "simulator.pid")


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

    sim_socket = socket_dir or embedded_pg.ensure_server(DATA / "pg", tcp_port=PG_TCP_PORT)
    sim_port = embedded_pg.server_port(DATA / "pg")
    _create_db(sim_socket, "sector_sim")
    dsn = embedded_pg.dsn(sim_socket, "sector_sim", sim_port)
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
            conn_type="postgres", host=sim_socket, port=sim_port, login="postgres", schema="sector_sim")
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
    t0 = time.monotonic()
    log(f"airflow: preparing its metadata database in {DATA / 'airflow'} (airflow db migrate)")
    subprocess.run(["airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # the REST sources' pools (orchestration/pools.py): a task in a missing pool is never scheduled
    subprocess.run([sys.executable, "-m", "ioc_pipeline.orchestration.pools"], check=True, stdout=subprocess.DEVNULL)
    log(f"airflow: metadata database ready ({time.monotonic() - t0:.0f}s)")


def dag_ids() -> list[str]:
    from ioc_pipeline.declaration import catalog

    return [s.dag_id for s in catalog.load().values()]


# what a heartbeat shows: the latest line of our package, or the task that just started
_PROGRESS = re.compile(r"\] (?:(?P<event>.*?) \[ioc_pipeline[\w.]*\]|\[DAG TEST\] starting task_id=(?P<task>\S+))")


# lines that count rows, pages or files: preferred to whatever the task logged after them
_COUNTING = re.compile(r"rows so far|still running|\bfile \d+/\d+|\bpage \d+/\d+")


def latest_progress(text: str) -> str | None:
    """What the running task last said it was doing, from the run's output so far: its latest
    line that counts rows, pages or files, else its latest line."""
    task = event = counting = None
    for line in text.splitlines():
        m = _PROGRESS.search(line)
        if m and m["task"]:
            task, event, counting = m["task"], "Airflow is starting the task", None
        elif m:
            event = m["event"]
            if _COUNTING.search(event):
                counting = event
        elif task and "] Task started " in line:
            event = "running, no progress line yet"
    return f"{task}: {counting or event}" if task else None


def run_dag(dag_id: str, as_of: str, logfile: Path) -> bool:
    """`airflow dags test` for one DAG, with a heartbeat line every HEARTBEAT_S seconds.

    No logical date is given: the run is logged as starting now (dags test sets a run's start
    to its logical date, which made runs look days long in the UI); the as-of date is the run's
    `as_of_date` param, which every DAG reads first (docs/operations.md)."""
    t0 = time.monotonic()
    with open(logfile, "wb") as out:
        proc = subprocess.Popen(["airflow", "dags", "test", dag_id, "-c", json.dumps({"as_of_date": as_of})],
                                stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                proc.wait(timeout=HEARTBEAT_S)
                break
            except subprocess.TimeoutExpired:
                doing = latest_progress(logfile.read_text(errors="replace")) or "parsing the DAGs"
                print(f"      {time.monotonic() - t0:4.0f}s  {doing}", flush=True)
    return proc.returncode == 0


def failure_reasons(dag_id: str, logfile: Path, since: dt.datetime) -> list[str]:
    """Every reason the run failed, one per item: what the source's run recorded in the audit
    ledger (audit.source_run.error_detail), else the failure line of the task log."""
    source = dag_id.removeprefix("ingest_") if dag_id.startswith("ingest_") else None
    if source:
        from ioc_pipeline import failure_text, warehouse

        try:
            conn = warehouse.connect()
            try:
                with conn.cursor() as cur:
                    cur.execute("""SELECT coalesce(error_detail, error) FROM audit.source_run
                                    WHERE source_code = %s AND started_at >= %s AND status = 'failed'
                                    ORDER BY started_at DESC LIMIT 1""", (source, since))
                    row = cur.fetchone()
            finally:
                conn.close()
        except Exception:  # noqa: BLE001 - e.g. the migrations failed: the log still says why
            row = None
        if row and row[0]:
            return failure_text.reasons(row[0])
    reasons = []
    for line in logfile.read_text(errors="replace").splitlines():
        if " failed in task " in line and dag_id in line:
            reasons = [line.split(" failed in task ", 1)[1].split(" [", 1)[0].strip()]
    return reasons or [f"see {logfile}"]


def write_task_logs(dag_id: str, logfile: Path) -> None:
    """Copy the run's task logs where `make ui` reads them (devtools/airflow_task_logs.py)."""
    from devtools import airflow_task_logs

    try:
        airflow_task_logs.write(dag_id, logfile)
    except Exception as exc:  # noqa: BLE001 - the run's outcome matters more than its UI copy
        log(f"  (task logs of {dag_id} not copied for the UI: {type(exc).__name__}: {exc})")


def report(dag_id: str, ok: bool, reasons: list[str], seconds: float) -> None:
    """`<dag_id> success` or `<dag_id> failed <reason>`; several reasons: one per line below."""
    if ok:
        print(f"{dag_id} success ({seconds:.0f}s)", flush=True)
    elif len(reasons) == 1:
        print(f"{dag_id} failed {reasons[0]} ({seconds:.0f}s)", flush=True)
    else:
        print(f"{dag_id} failed, {len(reasons)} reasons ({seconds:.0f}s):", flush=True)
        for reason in reasons:
            print(f"    {reason}", flush=True)


def run(as_of: str) -> list[str]:
    """Every ingest DAG, then the refresh (also after failures: last known good); returns the
    ids of the DAGs that failed."""
    dt.date.fromisoformat(as_of)
    logdir = DATA / "logs" / f"run-{as_of}"
    logdir.mkdir(parents=True, exist_ok=True)
    failed = []
    dags = dag_ids() + ["refresh_ioc_views"]
    log(f"running {len(dags)} DAGs for as-of date {as_of}; logs in {logdir}")
    for n, dag_id in enumerate(dags, 1):
        print(f"[{n}/{len(dags)}] {dag_id} ...", flush=True)
        t0, since = time.monotonic(), dt.datetime.now(dt.UTC)
        logfile = logdir / f"{dag_id}.log"
        ok = run_dag(dag_id, as_of, logfile)
        write_task_logs(dag_id, logfile)
        if not ok:
            failed.append(dag_id)
        report(dag_id, ok, [] if ok else failure_reasons(dag_id, logfile, since), time.monotonic() - t0)
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
    sub.add_parser("stop", help="stop everything the commands started: Airflow UI, simulator, embedded PostgreSQL")
    c = sub.add_parser("check-suite", help="run a source's suite on a sample of the source, publish nothing")
    c.add_argument("source")
    c.add_argument("--suite", help="suite file to try (default include/expectations/<source>.json)")
    c.add_argument("--rows", type=int, help="rows of the source to sample (default 5000; 0: the whole window)")
    c.add_argument("--date", default=DEMO_DATE)
    sub.add_parser("docs", help="build the data-quality report (Data Docs) from the warehouse and say where it is")
    q = sub.add_parser("quarantine", help="quarantined rows of a source per batch, with reasons (masked values)")
    q.add_argument("source")
    q.add_argument("--batch", type=int, help="only this batch, all its rows")
    sub.add_parser("migrate", help="apply the warehouse's migrations as its owner (before any DAG runs)")
    sub.add_parser("web", help="start the IOC page (read-only, login ioc_dashboard) and print its URL")
    args = ap.parse_args()

    if args.cmd == "stop":
        return stop()
    if args.cmd == "migrate":   # no Airflow here: the compose service warehouse-migrate runs it too
        return migrate()
    if args.cmd == "web":
        airflow_env()
        ensure_warehouse()
        print(f"IOC page: {start_web()}  (make stop stops it)")
        return 0
    if args.cmd in ("docs", "quarantine"):   # read the warehouse only: no simulator, no pipeline run
        airflow_env()
        ensure_warehouse()
        return docs() if args.cmd == "docs" else quarantine(args.source, args.batch)
    as_of = DEMO_DATE if args.cmd in ("demo", "ui") else args.date
    airflow_env()
    if args.cmd == "check-suite":
        return check_suite(args.source, as_of, args.suite, args.rows)
    socket_dir = ensure_warehouse()
    try:
        migrate_warehouse()   # once, as the owner, before any DAG: the DAGs only check it
    except Exception as exc:  # noqa: BLE001 - MigrationError names the file; anything else: say which step
        log(f"warehouse: migrate failed: {exc}")
        return 1
    ensure_simulator(as_of, socket_dir)
    airflow_db()
    if args.cmd == "ui":
        return ui()
    t0 = time.monotonic()
    failed = run(as_of)
    if args.cmd != "demo":
        return 1 if failed else 0
    print_indicators()
    print(f"\nIOC page: {start_web()}  (the same indicators with trends, communes and a wall view; make stop stops it)")
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


def check_suite(code: str, as_of: str, suite: str | None, rows: int | None) -> int:
    """Lint the suite against the staged layout (no data read), then run it on a sample of the
    source. Exit 2: the suite has problems; 1: a batch of the sample would fail; 0: it would commit."""
    from ioc_pipeline.declaration import catalog
    from ioc_pipeline import config, warehouse
    from ioc_pipeline.quality import suite_check

    t0 = time.monotonic()
    sources = catalog.load()
    if code not in sources:
        print(f"no source {code!r}; the sources are: {', '.join(sources)}")
        return 2
    source = sources[code]
    path = Path(suite) if suite else source.suite_path
    socket_dir = ensure_warehouse()
    migrate_warehouse()
    conn = warehouse.connect()
    try:
        t1 = time.monotonic()
        problems = suite_check.lint(conn, source, path)
        print(f"{path}: checked against the staged layout of {code} in {time.monotonic() - t1:.1f}s"
              f" ({time.monotonic() - t0:.1f}s since start)", flush=True)
        if not problems:
            problems = _suite_load_problem(path)   # what only GX itself can tell (seconds: GX loads)
        if problems:
            print(f"{len(problems)} problem(s) in the suite; fix them and run again (no data was read):")
            for line in problems:
                print(f"  {line}")
            return 2
        ensure_sample_source(source, as_of, socket_dir)
        sample = suite_check.check(
            conn, source, dt.date.fromisoformat(as_of), fetch=suite_check.sample_fetcher(source),
            key=config.pii_key(), province_code=config.province_code(),
            sqlalchemy_url=config.postgres_params(config.WAREHOUSE_CONN_ID).sqlalchemy_url(),
            suite_path=path, rows=suite_check.DEFAULT_ROWS if rows is None else rows)
    finally:
        conn.close()
    print(f"\n{code}: {len(sample.results)} expectations on a sample of {sample.rows:,} rows, "
          f"{sample.distinct_keys:,} keys (as of {as_of}, {time.monotonic() - t0:.1f}s)")
    for line in suite_check.report(source, sample):
        print(line)
    if any(r.exception for r in sample.results):
        return 2
    return 1 if sample.failures else 0


def _suite_load_problem(path: Path) -> list[str]:
    """What GX itself refuses (unknown type, kwargs it does not take), as a problem line."""
    from ioc_pipeline.ingest import validation

    try:
        validation.load_suite(path)
    except validation.SuiteError as exc:
        return [str(exc)]
    return []


def ensure_sample_source(source, as_of: str, socket_dir: str | None) -> None:
    """The source check-suite samples: its configured connection; else a simulator already
    running on IOC_SIM_PORT, the simulator's database or landing folder when they hold data;
    else the simulator generated and started as `make run` does."""
    env = f"AIRFLOW_CONN_{source.connection.upper()}"
    if env in os.environ:
        return
    from devtools import embedded_pg

    port = int(os.environ.get("IOC_SIM_PORT", "8765"))
    if source.kind == "rest" and (DATA / "simulator.pid").exists() and _port_answers(port):
        os.environ[env] = _conn_json(conn_type="http", host="127.0.0.1", port=port, schema="http",
                                     password=_secret(SIM_TOKEN_FILE))
        log(f"sample: the simulator already running on port {port}")
        return
    if source.kind == "sql" and socket_dir and _sim_table_filled(socket_dir, source.code):
        os.environ[env] = _conn_json(conn_type="postgres", host=socket_dir, login="postgres", schema="sector_sim")
        log("sample: the simulator's database sector_sim")
        return
    landing = DATA / "landing"
    if source.kind == "file" and landing.is_dir() and any(landing.iterdir()):
        os.environ[env] = json.dumps({"conn_type": "fs", "extra": {"path": str(landing.resolve())}})
        log(f"sample: the simulator's landing folder {landing}")
        return
    ensure_simulator(as_of, socket_dir or embedded_pg.ensure_server(DATA / "pg"))


def _sim_table_filled(socket_dir: str, source_code: str) -> bool:
    """The simulator's generator has written this source's table (its state row says so)."""
    import psycopg2

    try:
        conn = psycopg2.connect(host=socket_dir, user="postgres", dbname="sector_sim")
    except psycopg2.OperationalError:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('sim.generator_state') IS NOT NULL")
            if not cur.fetchone()[0]:
                return False
            cur.execute("SELECT 1 FROM sim.generator_state WHERE source = %s", (source_code,))
            return cur.fetchone() is not None
    finally:
        conn.close()


def docs() -> int:
    from ioc_pipeline.quality import data_docs
    from ioc_pipeline import warehouse

    migrate_warehouse()
    conn = warehouse.connect()
    try:
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
    migrate_warehouse()
    conn = warehouse.connect()
    try:
        found = quarantine_report.batches(conn, code, batch_id, limit=limit)
        still_open = quarantine_report.open_rows(conn, source)
        outcome = quarantine_report.batch_outcome(conn, code, batch_id) if batch_id and not found else None
    finally:
        conn.close()
    if batch_id and not found:
        if outcome is None:
            print(f"{code}: no batch {batch_id} of {code}")
        elif outcome[0] == "failed":
            print(f"{code}: batch {batch_id} failed and kept no failing row: it failed before validation or on a "
                  f"batch-level rule, not on rows ({quarantine_report.printable(outcome[1] or 'no error recorded')}); "
                  f"make docs shows its expectation results")
        else:
            print(f"{code}: batch {batch_id} ({outcome[0]}) quarantined no row")
        return 0
    for line in quarantine_report.format_report(source, found, still_open, row_limit=limit):
        print(line)
    return 0


def start_web() -> str:
    """The IOC page on 127.0.0.1:WEB_PORT, logged in as ioc_dashboard (IN ROLE ioc_reader,
    password in .data/secrets) unless IOC_WEB_DSN names another login; returns its URL."""
    import psycopg2.extensions

    from ioc_pipeline import config
    from ioc_pipeline.quality import data_docs
    from ioc_web import serve

    dsn = os.environ.get("IOC_WEB_DSN")
    if not dsn:
        p = config.postgres_params(config.WAREHOUSE_CONN_ID)
        password = _secret(WEB_PASSWORD_FILE)
        serve.provision(config.owner_params().dsn(), password)   # migrations (ioc_reader, the views), then the login
        # the embedded server listening on TCP: log in the way a BI tool does, with the password
        host, port = ("127.0.0.1", p.port) if p.host.startswith("/") and p.port == PG_TCP_PORT else (p.host, p.port)
        dsn = psycopg2.extensions.make_dsn(host=host, port=port, dbname=p.dbname, user=serve.DASHBOARD_LOGIN,
                                           password=password)
    _stop(DATA / "web.pid")   # restart: the page serves this checkout's code
    return serve.start(dsn, port=WEB_PORT, pid_file=DATA / "web.pid", log_file=DATA / "web.log",
                       data_docs=data_docs.default_dir(), repo=REPO)


def ui_port() -> int:
    """IOC_UI_PORT (default 8080): the one setting for `make ui`'s port (docs/operations.md)."""
    raw = os.environ.get("IOC_UI_PORT", "8080")
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise SystemExit(f"IOC_UI_PORT={raw!r} is not a port number")
    return int(raw)


def ui_env(port: int) -> dict[str, str]:
    """Airflow settings that follow the UI port: the API server's port, its base URL (links,
    login redirects) and the execution API the task runners call back."""
    base = f"http://localhost:{port}"
    return {"AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": base,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/"}


def ui() -> int:
    """`airflow standalone` in its own process group, remembered in UI_PID_FILE for `make stop`."""
    port = ui_port()
    os.environ.update(ui_env(port))
    _stop_ui()   # one UI per checkout
    passwords = DATA / "airflow" / "simple_auth_manager_passwords.json.generated"
    log(f"starting airflow standalone on http://localhost:{port} (IOC_UI_PORT; user admin, password in {passwords}); "
        f"times are shown in your browser's time zone (user menu > timezone); Ctrl-C or `make stop` stops it")
    proc = subprocess.Popen(["airflow", "standalone"], start_new_session=True)
    UI_PID_FILE.write_text(str(proc.pid))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        _stop_ui()
        return 0
    finally:
        if not _alive(proc.pid):
            UI_PID_FILE.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _stop_group(pid: int, wait_s: float = 30) -> None:
    """Stop the process group `pid` leads (a command we started with start_new_session)."""
    from devtools import processes

    for sig, wait in ((signal.SIGINT, wait_s), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        if processes.wait_gone(pid, wait, group=True):
            return


def _stop_ui() -> bool:
    if not UI_PID_FILE.exists():
        return False
    try:
        pid = int(UI_PID_FILE.read_text())
    except ValueError:
        UI_PID_FILE.unlink(missing_ok=True)
        return False
    _stop_group(pid)
    UI_PID_FILE.unlink(missing_ok=True)
    return True


def stop() -> int:
    """Everything the commands started: the IOC page, the UI (airflow standalone and its
    components), the simulator, the embedded PostgreSQL."""
    from devtools import embedded_pg

    stopped = ["IOC page"] if _stop(DATA / "web.pid") else []
    if _stop_ui():
        stopped.append("Airflow UI")
    if (DATA / "simulator.pid").exists():
        _stop_simulator()
        stopped.append("simulator")
    if embedded_pg.stop_server(DATA / "pg"):
        stopped.append("embedded PostgreSQL")
    log(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    return 0


if __name__ == "__main__":
    sys.exit(main())
