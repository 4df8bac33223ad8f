"""Shared parts of the reliability tests (docs/reliability.md): full-content snapshots of the
warehouse, a killable worker process, lock helpers and the real extract path of every source.

Snapshots compare what a reader or the next run would see: every row of every table and ioc
view, as JSON text, sorted. `volatile` drops the columns that legitimately differ between two
runs of the same date (run ids, batch ids, timestamps), nothing else.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psycopg2
import psycopg2.extensions

from ioc_pipeline.ingest import runner
from ioc_pipeline.declaration import catalog
from ioc_pipeline.extract import fetchers
from tests.fixtures.pipeline_run import conn_json, http_conn_json
from tests.integration.warehouse_helpers import KEY, PROVINCE, sqlalchemy_url

REPO = Path(__file__).resolve().parents[2]
WAREHOUSE_SCHEMAS = ("core", "quarantine", "audit", "mart", "util", "ioc")
# Columns that name a run or say when something happened: they differ between two runs of
# the same date by design (operations.md, "idempotent for its as-of date").
VOLATILE = frozenset({
    "batch_id", "run_key", "dag_run_id", "started_at", "finished_at", "quarantined_at", "refreshed_at",
    "source_fresh_at", "validated_at", "last_success_at", "last_attempt_at", "first_used", "applied_at",
})
# audit.watermark.updated_at is bookkeeping time; core tables' updated_at is source data.
VOLATILE_IN = {("audit", "watermark"): {"updated_at"}, ("ioc", "source_freshness"): {"stale"}}


def relations(conn, schemas=WAREHOUSE_SCHEMAS) -> list[tuple[str, str]]:
    with conn.cursor() as cur:
        cur.execute("""SELECT table_schema, table_name FROM information_schema.tables
                        WHERE table_schema = ANY(%s) ORDER BY 1, 2""", (list(schemas),))
        return cur.fetchall()


def snapshot(dsn: str, *, schemas=WAREHOUSE_SCHEMAS, skip=(), volatile: bool = False) -> dict[str, list[str]]:
    """{schema.relation: sorted rows as JSON text}; `skip`: relations left out ("audit.batch")."""
    conn = psycopg2.connect(dsn)
    try:
        out = {}
        for schema, name in relations(conn, schemas):
            label = f"{schema}.{name}"
            if label in skip or schema in skip:
                continue
            drop = (VOLATILE | VOLATILE_IN.get((schema, name), set())) if volatile else set()
            with conn.cursor() as cur:
                cur.execute(f'SELECT to_jsonb(t) FROM "{schema}"."{name}" t')
                rows = [{k: v for k, v in r[0].items() if k not in drop} for r in cur.fetchall()]
            out[label] = sorted(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows)
        conn.rollback()
        return out
    finally:
        conn.close()


def diff(a: dict, b: dict) -> list[str]:
    """Relations whose content differs (short, for assertion messages)."""
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def scalar(dsn: str, query: str, args=()):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(query, args)
        row = cur.fetchone()
    conn.close()
    return row[0] if row and len(row) == 1 else row


def rows(dsn: str, query: str, args=()) -> list[tuple]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(query, args)
        out = cur.fetchall()
    conn.close()
    return out


# ----------------------------------------------------------------------------- worker process

WORKER_APP = "reliability_worker"  # every libpq connection of the worker (GX's too) carries it


def start_worker(spec: dict, tmp_path: Path, module: str = "tests.reliability.worker") -> subprocess.Popen:
    """A python process running `module` (tests/reliability/worker.py; file_worker.py for the
    file sources) with `spec`: the 'worker' we kill."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)]),
           "GX_ANALYTICS_ENABLED": "false", "PGAPPNAME": WORKER_APP}
    err = open(tmp_path / f"worker-{spec.get('run_id', spec['mode'])}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", module, json.dumps(spec)],
                            cwd=REPO, env=env, stdout=err, stderr=subprocess.STDOUT)


def worker_log(tmp_path: Path, spec: dict) -> str:
    return (tmp_path / f"worker-{spec.get('run_id', spec['mode'])}.log").read_text(errors="replace")


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL: no cleanup handler, no rollback sent, no teardown task."""
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL


def wait_for(condition, what: str, timeout: float = 120, proc: subprocess.Popen | None = None, log=lambda: ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the worker exited ({proc.returncode}) before {what}:\n{log()[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}:\n{log()[-3000:]}")


@contextlib.contextmanager
def lock_held(dsn: str, relation: str, mode: str = "ACCESS EXCLUSIVE"):
    """A connection holding `LOCK TABLE relation` until the block ends; yields its backend pid."""
    conn = psycopg2.connect(dsn, application_name="reliability_locker")
    try:
        with conn.cursor() as cur:
            cur.execute(f"LOCK TABLE {relation} IN {mode} MODE")
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        yield pid
    finally:
        conn.rollback()
        conn.close()


def blocked_by(dsn: str, locker_pid: int) -> list[int]:
    """Backends waiting on a lock the locker holds."""
    return [r[0] for r in rows(dsn, "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                               (locker_pid,))]


def locks_of(dsn: str, pid: int) -> set[tuple[str, str]]:
    """(relation, mode) of the granted relation locks of a backend."""
    return set(rows(dsn, """SELECT l.relation::regclass::text, l.mode FROM pg_locks l
                             WHERE l.pid = %s AND l.granted AND l.locktype = 'relation'""", (pid,)))


def last_copy_settled(dsn: str, pid: int, proc: subprocess.Popen | None = None, log=lambda: "") -> str:
    """The query text of a backend once it sits idle in its transaction. When the source stalls,
    the COPY writer's thread may still be sending the chunk before the stall (a slow machine
    takes a while): wait for that COPY to end, rather than read the state at one instant."""
    def settled():
        found = rows(dsn, "SELECT state, query FROM pg_stat_activity WHERE pid = %s", (pid,))
        return found[0][1] if found and found[0][0] == "idle in transaction" else None
    return wait_for(settled, f"backend {pid} to finish its COPY and wait idle in its transaction",
                    timeout=60, proc=proc, log=log)


def worker_backends(dsn: str) -> list[int]:
    """Backends of the worker process (a killed worker's backends leave when PostgreSQL sees
    the client socket closed, at the latest when their statement ends)."""
    return [r[0] for r in rows(dsn, """SELECT pid FROM pg_stat_activity
                                         WHERE datname = current_database() AND application_name = %s""",
                               (WORKER_APP,))]


# ----------------------------------------------------------------------------- real extract path

def point_sources(monkeypatch, *, sim_dsn: str, port: int | None, token: str) -> None:
    """Every REST connection to the simulator's HTTP server, every SQL one to its database."""
    for source in catalog.load().values():
        var = f"AIRFLOW_CONN_{source.connection.upper()}"
        if source.kind == "rest" and port is not None:
            monkeypatch.setenv(var, http_conn_json(port, token))
        elif source.kind == "sql":
            monkeypatch.setenv(var, conn_json(sim_dsn))


def run_source(conn, dsn: str, code: str, as_of, run_id: str, *, wrap=None, **endpoint_kw):
    """One batch of a source through its real extractor (REST client or SQL reader), the way the
    DAG's tasks chain the batch steps. `wrap(fetch) -> fetch` lets a test act during the read.
    Returns (plan, stats, published) or raises after recording the failure."""
    source = catalog.get(code)
    ses = runner.Session(conn, key=KEY, province_code=PROVINCE, sqlalchemy_url=sqlalchemy_url(dsn))
    plan = runner.open_window(ses, source, run_id, as_of)
    fetch = None
    if not plan.empty_window:
        if endpoint_kw:   # a REST source with a test's retry policy (fewer, faster attempts)
            from ioc_pipeline.extract import rest_source
            fetch = rest_source.fetcher(source, plan.window, **endpoint_kw)
        else:
            fetch = fetchers.fetcher_for(source, plan.window)
        if wrap is not None:
            fetch = wrap(fetch)
    summary = runner.run_batch(ses, source, plan, fetch)
    stats = None if plan.empty_window else SimpleNamespace(
        rows_read=summary["rows_read"], distinct_keys=summary["distinct_keys"], extra_columns=summary["extra_columns"])
    return plan, stats, {k: summary[k] for k in ("rows_loaded", "rows_quarantined")}


REST_SOURCES = tuple(catalog.codes("rest"))
SQL_SOURCES = tuple(catalog.codes("sql"))
SOURCES = REST_SOURCES + SQL_SOURCES
