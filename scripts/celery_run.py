"""Run the pipeline's DAGs once on a local CeleryExecutor deployment (`make celery-run`).

What docker-compose.yaml runs in containers, started here as plain processes, so the Celery
path is exercised on a machine without a container engine:
- Airflow's metadata in a fresh PostgreSQL database (`ioc_celery_meta_<hex>`, dropped after),
  which is also the Celery result backend;
- Redis as the Celery broker, on a queue of this run's own (`ioc-celery-run-<hex>`), so another
  deployment using the same Redis database neither takes nor gives it tasks;
- the components a Celery deployment needs: api-server (the workers talk to its Execution API),
  scheduler, dag-processor and one Celery worker, with a temporary AIRFLOW_HOME and one JWT
  secret shared by all of them;
- the warehouse: a fresh database on the same server (unless AIRFLOW_CONN_IOC_WAREHOUSE is set),
  and the sector sources exactly as `scripts/pipeline.py` supplies them (its functions, with its
  data folder moved to the temporary directory).
It triggers every ingest DAG with the `as_of_date` param, waits for them, then triggers
refresh_ioc_views (as `make run` does), prints one line per DAG with its state and the executor
that ran its tasks, and stops everything it started.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PG = "host=127.0.0.1 port=5432 user=postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
TERMINAL = ("success", "failed")


def log(msg: str) -> None:
    print(f"[celery-run] {msg}", flush=True)


@dataclass(frozen=True)
class Component:
    name: str
    argv: list[str]


def components(*, api_port: int, queue: str, concurrency: int, worker_name: str) -> list[Component]:
    """The Airflow 3 processes of a Celery deployment, in start order."""
    return [
        # workers report task state to the Execution API served here (and the UI, for a look)
        Component("api-server", ["airflow", "api-server", "--host", "127.0.0.1", "--port", str(api_port),
                                 "--workers", "1"]),
        # task logs are files in the shared AIRFLOW_HOME: no log server, no fixed port 8793
        Component("scheduler", ["airflow", "scheduler", "--skip-serve-logs"]),
        Component("dag-processor", ["airflow", "dag-processor"]),
        Component("celery-worker", ["airflow", "celery", "worker", "--queues", queue,
                                    "--concurrency", str(concurrency), "--celery-hostname", worker_name,
                                    "--skip-serve-logs", "--without-gossip", "--without-mingle"]),
    ]


def sqlalchemy_url(params: dict, dbname: str) -> str:
    """postgresql://user[:password]@host:port/dbname from libpq keyword parameters."""
    auth = quote(params.get("user", "postgres"), safe="")
    if params.get("password"):
        auth += ":" + quote(params["password"], safe="")
    return f"postgresql://{auth}@{params.get('host', '127.0.0.1')}:{params.get('port', '5432')}/{dbname}"


def celery_env(*, metadata_url: str, broker_url: str, api_port: int, queue: str, concurrency: int,
               jwt_secret: str, api_secret: str) -> dict[str, str]:
    """Airflow settings every component shares (docker-compose.yaml's x-airflow-common, locally)."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url.replace("postgresql://", "postgresql+psycopg2://", 1),
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(concurrency),
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        # one secret for every component: tokens signed by the scheduler are checked by the api-server
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__API__SECRET_KEY": api_secret,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # only the runs this script triggers: no nightly or asset-triggered runs of its own
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _query(params: dict, dbname: str, sql: str, args: tuple = ()) -> list[tuple]:
    import psycopg2

    conn = psycopg2.connect(dbname=dbname, **params)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


class Processes:
    """The components, each in its own session so that stopping one stops its children."""

    def __init__(self, logdir: Path):
        self.logdir = logdir
        self.running: list[tuple[Component, subprocess.Popen]] = []
        self.peak_rss_mb: dict[str, float] = {}

    def start(self, comp: Component) -> None:
        out = open(self.logdir / f"{comp.name}.log", "ab")
        proc = subprocess.Popen(comp.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO)
        self.running.append((comp, proc))
        log(f"started {comp.name} (pid {proc.pid}): {' '.join(comp.argv)}")

    def check_alive(self) -> None:
        """Fail if a component died; on the way, sample each one's memory (with its task processes)."""
        import psutil

        for comp, proc in self.running:
            if proc.poll() is not None:
                raise SystemExit(f"{comp.name} exited with {proc.returncode}; see {self.logdir / comp.name}.log")
            try:
                tree = [psutil.Process(proc.pid)]
                tree += tree[0].children(recursive=True)
                rss = sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20
            except psutil.Error:  # a task process ended while being read: next sample
                continue
            self.peak_rss_mb[comp.name] = max(rss, self.peak_rss_mb.get(comp.name, 0.0))

    def stop(self) -> None:
        # worker first (warm shutdown of its tasks), api-server last
        for comp, proc in reversed(self.running):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for comp, proc in reversed(self.running):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log(f"{comp.name} did not stop within 30 s: killing its process group")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.running.clear()


def _airflow(*args: str, logdir: Path) -> None:
    with open(logdir / "cli.log", "ab") as out:
        subprocess.run(["airflow", *args], check=True, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


def wait_for_dags(params: dict, meta_db: str, dag_ids: list[str], procs: Processes, timeout: float) -> None:
    """Until the dag-processor has serialized every DAG (a run can be created only then)."""
    deadline = time.monotonic() + timeout
    while True:
        found = {r[0] for r in _query(params, meta_db, "SELECT dag_id FROM serialized_dag WHERE dag_id = ANY(%s)",
                                      (dag_ids,))}
        if found >= set(dag_ids):
            return
        procs.check_alive()
        if time.monotonic() > deadline:
            raise SystemExit(f"DAGs not parsed within {timeout:.0f}s: {sorted(set(dag_ids) - found)}")
        time.sleep(2)


def trigger(dag_id: str, run_id: str, as_of: str, logdir: Path) -> None:
    _airflow("dags", "trigger", dag_id, "--run-id", run_id, "--conf", json.dumps({"as_of_date": as_of}),
             logdir=logdir)


def wait_for_runs(params: dict, meta_db: str, runs: dict[str, str], procs: Processes, timeout: float) -> dict[str, str]:
    """dag_id -> final state of its run (or the state it had at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        states = dict(_query(params, meta_db, "SELECT dag_id, state FROM dag_run WHERE run_id = ANY(%s)",
                             (list(runs.values()),)))
        if all(states.get(d) in TERMINAL for d in runs):
            return states
        procs.check_alive()
        if time.monotonic() > deadline:
            log(f"timeout after {timeout:.0f}s")
            return {d: states.get(d) or "not created" for d in runs}
        time.sleep(3)


ENQUEUED = re.compile(r"Trying to enqueue tasks: \[(.*?)\] for executor: (\w+)")
TASK_INSTANCE = re.compile(r"<TaskInstance: ([^.\s]+)\.(\S+) (\S+) \[")


def executors_from_scheduler_log(text: str) -> dict[tuple[str, str, str], str]:
    """(dag_id, task_id, run_id) -> the executor the scheduler handed the task to, from its log."""
    found = {}
    for tis, executor in ENQUEUED.findall(text):
        for dag_id, task_id, run_id in TASK_INSTANCE.findall(tis):
            found[(dag_id, task_id, run_id)] = executor
    return found


def run_report(params: dict, meta_db: str, dag_id: str, run_id: str, executors: dict) -> str:
    """Which executor ran the run's tasks (the scheduler's own log line), how many ran as Celery
    tasks (their id has a row in the Celery result backend), on which queue and worker host."""
    rows = _query(params, meta_db, """
        SELECT ti.task_id, ti.state, ti.hostname, ti.queue,
               EXISTS (SELECT 1 FROM celery_taskmeta c WHERE c.task_id = ti.external_executor_id)
          FROM task_instance ti WHERE ti.dag_id = %s AND ti.run_id = %s ORDER BY ti.task_id""", (dag_id, run_id))
    names = sorted({executors[(dag_id, r[0], run_id)] for r in rows if (dag_id, r[0], run_id) in executors})
    hosts = sorted({r[2] for r in rows if r[2]})
    queues = sorted({r[3] for r in rows if r[3]})
    celery = sum(1 for r in rows if r[4])
    failed = [r[0] for r in rows if r[1] in ("failed", "upstream_failed")]
    text = (f"executor={','.join(names) or 'none'} celery_tasks={celery}/{len(rows)} "
            f"queue={','.join(queues) or '-'} worker_host={','.join(hosts) or '-'}")
    return text + (f" failed_tasks={','.join(failed)}" if failed else "")


def task_summary(params: dict, meta_db: str, run_ids: list[str]) -> str:
    """Task instances run, their summed and longest durations (what sizing a worker pool needs)."""
    n, total, longest = _query(params, meta_db, """
        SELECT count(*), coalesce(sum(extract(epoch FROM end_date - start_date)), 0),
               coalesce(max(extract(epoch FROM end_date - start_date)), 0)
          FROM task_instance WHERE run_id = ANY(%s) AND state IN ('success', 'failed')""", (run_ids,))[0]
    return f"{n} task instances ran, {float(total):.0f}s of task time in all, the longest {float(longest):.0f}s"


def _drop_redis_queue(broker_url: str, queue: str) -> None:
    """Remove this run's queue and kombu bindings from the broker; the queue name is unique to
    the run, so nothing of another deployment matches."""
    import redis

    client = redis.Redis.from_url(broker_url)
    try:
        keys = list(client.scan_iter(match=f"*{queue}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _stop_embedded_server(pgdata: Path) -> None:
    """Fast shutdown of the embedded PostgreSQL this run started (its postmaster pid). pgserver
    only stops a server from a handle in a process that did not start it, and a process of ours
    still holds one: `make stop` runs after `make run` has exited, this cleanup cannot."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, signal.SIGINT)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        log(f"embedded PostgreSQL (pid {pid}) did not stop within 10 s")
    except ProcessLookupError:
        pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--date", default="2026-11-20", help="as-of date of every run (default: the demo date)")
    ap.add_argument("--redis-url", default=os.environ.get("IOC_CELERY_REDIS_URL", DEFAULT_REDIS),
                    help=f"Celery broker (default {DEFAULT_REDIS})")
    ap.add_argument("--pg", default=os.environ.get("IOC_CELERY_PG", DEFAULT_PG),
                    help=f"libpq parameters of the server for the metadata and warehouse databases ({DEFAULT_PG!r})")
    ap.add_argument("--concurrency", type=int, default=4, help="task slots of the Celery worker")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds to wait for all runs")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs) and the databases")
    args = ap.parse_args()
    dt.date.fromisoformat(args.date)

    import psycopg2.extensions

    params = psycopg2.extensions.parse_dsn(args.pg)
    params.pop("dbname", None)
    tag = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix=f"ioc-celery-run-{tag}-"))
    logdir = tmp / "component-logs"
    logdir.mkdir()
    meta_db = f"ioc_celery_meta_{tag}"
    wh_db = None if os.environ.get("AIRFLOW_CONN_IOC_WAREHOUSE") else f"ioc_celery_wh_{tag}"
    queue = f"ioc-celery-run-{tag}"
    api_port = _free_port()

    # pipeline.py keeps its state (secrets, simulator pid, embedded server) under IOC_DATA_DIR:
    # a directory of this run's own, so a `make run` of the same checkout is never touched.
    os.environ["IOC_DATA_DIR"] = str(tmp / "data")
    os.environ["AIRFLOW_HOME"] = str(tmp / "airflow")
    os.environ.setdefault("IOC_SIM_PORT", str(_free_port()))
    sys.path.insert(0, str(REPO / "scripts"))
    import pipeline  # puts plugins/ on sys.path

    from devtools import embedded_pg

    t0 = time.monotonic()
    procs = Processes(logdir)
    failed = True
    created: list[str] = []
    try:
        pipeline.airflow_env()
        os.environ.update(celery_env(
            metadata_url=sqlalchemy_url(params, meta_db), broker_url=args.redis_url, api_port=api_port, queue=queue,
            concurrency=args.concurrency, jwt_secret=secrets.token_urlsafe(32), api_secret=secrets.token_urlsafe(32)))
        for db in filter(None, (meta_db, wh_db)):
            embedded_pg.maintenance(params, f'CREATE DATABASE "{db}"')
            created.append(db)
        if wh_db:
            os.environ["AIRFLOW_CONN_IOC_WAREHOUSE"] = pipeline._conn_json(
                conn_type="postgres", host=params.get("host", "127.0.0.1"), port=int(params.get("port", 5432)),
                login=params.get("user", "postgres"), password=params.get("password"), schema=wh_db)
        socket_dir = pipeline.ensure_warehouse()
        pipeline.migrate_warehouse()   # as the owner, before any DAG (they only check it)
        pipeline.ensure_simulator(args.date, socket_dir)
        log(f"metadata database {meta_db}, broker {args.redis_url} queue {queue}, AIRFLOW_HOME {tmp / 'airflow'}")
        t_db = time.monotonic()
        _airflow("db", "migrate", logdir=logdir)
        subprocess.run([sys.executable, "-m", "ioc_pipeline.orchestration.pools"], check=True,
                       stdout=subprocess.DEVNULL)   # the REST sources' pools, before the scheduler starts
        log(f"airflow db migrate: {time.monotonic() - t_db:.0f}s")
        for comp in components(api_port=api_port, queue=queue, concurrency=args.concurrency,
                               worker_name=f"{queue}@%h"):
            procs.start(comp)
        ingest = pipeline.dag_ids()
        wait_for_dags(params, meta_db, ingest + ["refresh_ioc_views"], procs, timeout=300)
        log(f"components up and DAGs parsed after {time.monotonic() - t0:.0f}s")

        t_runs = time.monotonic()
        runs = {d: f"celery_run__{args.date}__{tag}" for d in ingest}
        for dag_id, run_id in runs.items():
            trigger(dag_id, run_id, args.date, logdir)
        states = wait_for_runs(params, meta_db, runs, procs, args.timeout)
        log(f"ingest runs finished in {time.monotonic() - t_runs:.0f}s")
        refresh = {"refresh_ioc_views": f"celery_run__{args.date}__{tag}"}
        t_refresh = time.monotonic()
        trigger("refresh_ioc_views", refresh["refresh_ioc_views"], args.date, logdir)
        states |= wait_for_runs(params, meta_db, refresh, procs,
                                max(60.0, args.timeout - (time.monotonic() - t_runs)))
        log(f"refresh finished in {time.monotonic() - t_refresh:.0f}s; all runs {time.monotonic() - t_runs:.0f}s")

        executors = executors_from_scheduler_log((logdir / "scheduler.log").read_text(errors="replace"))
        for dag_id, run_id in (runs | refresh).items():
            print(f"{dag_id} {states[dag_id]} {run_report(params, meta_db, dag_id, run_id, executors)}", flush=True)
        log(task_summary(params, meta_db, sorted(set((runs | refresh).values()))))
        log("peak RSS (MB, with child processes): "
            + ", ".join(f"{name} {mb:.0f}" for name, mb in procs.peak_rss_mb.items()))
        failed = any(states[d] != "success" for d in states)
        return 1 if failed else 0
    finally:
        procs.stop()
        _stop_embedded_server(pipeline.DATA / "pg")
        pipeline.stop()  # the simulator of this run's IOC_DATA_DIR
        try:
            _drop_redis_queue(args.redis_url, queue)
        except Exception as exc:  # noqa: BLE001 - the broker may be what failed: cleanup goes on
            log(f"could not remove queue {queue} from the broker: {exc}")
        if args.keep:
            log(f"kept {tmp} and databases {', '.join(created)}")
        else:
            for db in created:
                embedded_pg.maintenance(params, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            if failed:
                log(f"task and component logs kept in {tmp} (databases dropped)")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        log(f"wall time {time.monotonic() - t0:.0f}s")


if __name__ == "__main__":
    sys.exit(main())
