"""A night on the running compose stack (scripts/stack_check.sh), through Airflow's REST API, and
the simulator's truth compared with what the IOC reads.

    .venv/bin/python scripts/stack_night.py night   --api URL --password-file F --as-of D \
        --warehouse-dsn DSN --sim-dsn DSN --landing DIR
    .venv/bin/python scripts/stack_night.py compare --as-of D --warehouse-dsn DSN --sim-dsn DSN --landing DIR
    .venv/bin/python scripts/stack_night.py watch   --api URL --password-file F --deliver CMD ...
    .venv/bin/python scripts/stack_night.py screenshots --api URL --password-file F --out DIR

night:   JWT from POST /auth/token (the simple auth manager's admin and the password it generated),
         unpause every ingest DAG and trigger it with conf {"as_of_date": D} (as scripts/pipeline.py
         passes the date), wait for the runs (Celery worker), then unpause and trigger
         refresh_ioc_views for D and wait for every refresh run; print per DAG its state, the
         executor and the worker host of its tasks (task instance `hostname`); then `compare`.
compare: ioc.indicator_values read as a login IN ROLE ioc_reader (--warehouse-dsn) against the
         oracles of tests/e2e/test_pipeline_end_to_end.py (imported, not copied): the file sources'
         failed files, civil status, population, public services, land, tuition, the file sources'
         indicators.
watch:   the landing watcher live: see `watch_landing`.
Exit 0 when everything matched.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import subprocess
import sys
import time
import types
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "plugins")]

TERMINAL = ("success", "failed")
REFRESH = "refresh_ioc_views"


def log(msg: str) -> None:
    print(f"[stack-night {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Api:
    """Airflow 3's public REST API with a JWT of the simple auth manager."""

    def __init__(self, base: str, username: str, password: str):
        import requests

        self.base = base.rstrip("/")
        self.http = requests.Session()
        r = self.http.post(f"{self.base}/auth/token", json={"username": username, "password": password}, timeout=30)
        r.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

    def call(self, method: str, path: str, **kw) -> dict:
        r = self.http.request(method, f"{self.base}/api/v2/{path}", timeout=60, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {r.status_code} {r.text[:500]}")
        return r.json() if r.content else {}

    def dag_ids(self) -> set[str]:
        return {d["dag_id"] for d in self.call("GET", "dags", params={"limit": 1000})["dags"]}

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, as_of: str, run_id: str) -> str:
        body = {"dag_run_id": run_id, "logical_date": None, "conf": {"as_of_date": as_of}}
        return self.call("POST", f"dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self.call("GET", f"dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "-run_after"})["dag_runs"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.call("GET", f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.call("GET", f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances",
                         params={"limit": 1000})["task_instances"]


def login(args) -> Api:
    password = json.loads(Path(args.password_file).read_text())[args.user]
    return Api(args.api, args.user, password)


def wait_for(api: Api, runs: dict[str, str], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    last = None
    while True:
        states = {d: api.run_state(d, r) for d, r in runs.items()}
        summary = ", ".join(f"{s}={sum(1 for v in states.values() if v == s)}" for s in sorted(set(states.values())))
        if summary != last:
            log(f"runs: {summary}")
            last = summary
        if all(s in TERMINAL for s in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(10)


def wait_idle(api: Api, dag_ids: list[str], timeout: float) -> list[tuple[str, dict]]:
    """Until no run of these DAGs is queued or running; returns every run (dag_id, run)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = [(d, r) for d in dag_ids for r in api.runs(d)]
        active = [f"{d}/{r['dag_run_id']}" for d, r in runs if r["state"] not in TERMINAL]
        if not active or time.monotonic() > deadline:
            return runs
        time.sleep(10)


def describe(api: Api, dag_id: str, run_id: str, state: str, executor: str) -> str:
    tis = api.task_instances(dag_id, run_id)
    hosts = sorted({t.get("hostname") for t in tis if t.get("hostname")})
    executors = sorted({t.get("executor") or executor for t in tis})
    failed = sorted(t["task_id"] for t in tis if t.get("state") in ("failed", "upstream_failed"))
    return (f"{dag_id:32s} {state:8s} executor={','.join(executors) or '-'} worker_host={','.join(hosts) or '-'}"
            + (f" failed_tasks={','.join(failed)}" if failed else ""))


def night(args) -> int:
    from ioc_pipeline.declaration import catalog

    api = login(args)
    ingest = [s.dag_id for s in catalog.load().values()]
    wanted = set(ingest) | {REFRESH}
    deadline = time.monotonic() + 600
    while not wanted <= (found := api.dag_ids()):
        if time.monotonic() > deadline:
            log(f"DAGs not parsed after 600 s: {sorted(wanted - found)}")
            return 1
        time.sleep(5)
    log(f"{len(wanted)} DAGs parsed; unpausing and triggering {len(ingest)} ingest DAGs for {args.as_of}")
    t0 = time.monotonic()
    tag = f"stack_check__{args.as_of}__{int(time.time())}"
    runs = {}
    for dag_id in ingest:
        api.unpause(dag_id)
        runs[dag_id] = api.trigger(dag_id, args.as_of, tag)
    states = wait_for(api, runs, args.timeout)
    # unpausing also makes the scheduler create each DAG's nightly run of the latest cron slot,
    # whose as-of date is yesterday's (the check's default date): wait for those runs too
    others = [(d, r) for d, r in wait_idle(api, ingest, args.timeout) if r["dag_run_id"] != runs[d]]
    log(f"ingest runs done in {time.monotonic() - t0:.0f}s")
    t1 = time.monotonic()
    api.unpause(REFRESH)
    runs[REFRESH] = api.trigger(REFRESH, args.as_of, tag)
    states |= wait_for(api, {REFRESH: runs[REFRESH]}, args.timeout)
    # the ingest runs' asset events also start refresh runs (same as-of date): wait for all of them
    others += [(d, r) for d, r in wait_idle(api, [REFRESH], args.timeout) if r["dag_run_id"] != runs[d]]
    log(f"refresh done in {time.monotonic() - t1:.0f}s; the night took {time.monotonic() - t0:.0f}s")
    for dag_id, run_id in runs.items():
        print(describe(api, dag_id, run_id, states[dag_id], args.executor), flush=True)
    for dag_id, run in others:
        print(f"  also: {dag_id} {run['dag_run_id']} ({run['run_type']}) {run['state']}", flush=True)
    bad_refresh = states[REFRESH] != "success"
    rc = compare(args, states)
    return 1 if bad_refresh or rc else rc


def compare(args, states: dict[str, str] | None = None) -> int:
    """The e2e test's oracles against the stack's warehouse (read as a member of ioc_reader)."""
    from tests.e2e import test_pipeline_end_to_end as e2e

    as_of = dt.date.fromisoformat(args.as_of)
    step = types.SimpleNamespace(sim=args.sim_dsn, warehouse=args.warehouse_dsn, landing=Path(args.landing))
    problems = 0
    expected_fail = e2e.expected_file_failures(step.sim, as_of)
    if states is not None:
        for code, names in expected_fail.items():
            state = states.get(f"ingest_{code}")
            want = "failed" if names else "success"
            ok = state == want
            problems += not ok
            print(f"{'ok  ' if ok else 'FAIL'} ingest_{code}: {state} (the contract fails {len(names)} file(s): "
                  f"{want} expected)", flush=True)
        for dag_id, state in states.items():
            if dag_id.removeprefix("ingest_") not in expected_fail and state != "success":
                problems += 1
                print(f"FAIL {dag_id}: {state}", flush=True)
    checks = [
        # the audit schema is not the readers': the loader's login (Airflow's) reads it
        ("file sources' failed files (audit.batch)",
         lambda: _equal(e2e.actual_file_failures(args.audit_dsn or step.warehouse), expected_fail)),
        ("civil status (CIVIL_*)", lambda: e2e.check_views(step, as_of)),
        ("population", lambda: e2e.check_population(step, as_of, [as_of])),
        ("public services", lambda: e2e.check_public_services(step, as_of)),
        ("land", lambda: e2e.check_land(step, as_of)),
        ("tuition", lambda: e2e.check_tuition(step, as_of)),
        ("file sources (health, social, project06 tracker)", lambda: e2e.check_files(step, as_of)),
    ]
    for name, check in checks:
        try:
            check()
            print(f"ok   {name}: equal to the simulator's expected values", flush=True)
        except AssertionError as exc:
            problems += 1
            print(f"FAIL {name}: {str(exc)[:300] or 'values differ'}", flush=True)
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            problems += 1
            print(f"FAIL {name}: {type(exc).__name__}: {str(exc)[:300]}", flush=True)
    n = len(e2e.actual_values(step.warehouse))
    print(f"{n} rows of ioc.indicator_values read as {_user(step.warehouse)}; "
          f"{'all equal' if not problems else f'{problems} check(s) failed'}", flush=True)
    return 1 if problems else 0


def _equal(actual, expected) -> None:
    assert actual == expected, f"{actual} != {expected}"


def _user(dsn: str) -> str:
    import psycopg2

    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_user, pg_has_role(current_user, 'ioc_reader', 'MEMBER')")
        user, member = cur.fetchone()
    return f"{user} (member of ioc_reader: {member})"


def watch_landing(args) -> int:
    """A new delivery copied into the landing volume starts the file source's DAG through the
    triggerer (run_type asset_triggered) within `--within` seconds; the same bytes copied again
    start nothing within `--quiet` seconds. `--deliver` is a shell command that copies stdin to
    the landing path given as its argument (e.g. a `docker compose exec -T` into a container that
    mounts the volume)."""
    api = login(args)
    dag_id = f"ingest_{args.source}"
    src = Path(args.file)
    data = src.read_bytes()

    def asset_runs() -> set[str]:
        return {r["dag_run_id"] for r in api.runs(dag_id) if r["run_type"] == "asset_triggered"}

    def deliver() -> float:
        subprocess.run(f"{args.deliver} {shlex.quote(args.target)}", shell=True, input=data, check=True)
        return time.monotonic()

    before = asset_runs()
    log(f"{dag_id}: {len(before)} asset-triggered run(s) before; delivering {args.target} ({len(data)} bytes)")
    t0 = deliver()
    new: set[str] = set()
    while time.monotonic() - t0 < args.within and not new:
        time.sleep(2)
        new = asset_runs() - before
    if not new:
        log(f"FAIL no asset-triggered run of {dag_id} within {args.within:.0f}s of the delivery")
        return 1
    run_id = min(new)
    run = next(r for r in api.runs(dag_id) if r["dag_run_id"] == run_id)
    log(f"ok   the watcher started {dag_id} {time.monotonic() - t0:.0f}s after the delivery: run {run_id} "
        f"(run_type {run['run_type']}, triggered_by {run.get('triggered_by')}, conf {run.get('conf')})")
    after_first = asset_runs()
    log(f"copying the same {len(data)} bytes to {args.target} again; watching {args.quiet:.0f}s")
    deliver()
    time.sleep(args.quiet)
    extra = asset_runs() - after_first
    state = api.run_state(dag_id, run_id)
    if extra:
        log(f"FAIL the second copy started {sorted(extra)}")
        return 1
    log(f"ok   the second copy of the same bytes started nothing ({len(after_first)} asset-triggered run(s), "
        f"as before it); the first watcher run is {state}")
    return 0


def screenshots(args) -> int:
    """The stack's Airflow UI in headless Chromium (devtools/ui_screenshots.py): the DAG list and
    the night's run of --dag, logged in with a JWT of the API server."""
    from devtools import ui_screenshots

    api = login(args)
    token = api.http.headers["Authorization"].removeprefix("Bearer ")
    run_id = next((r["dag_run_id"] for r in api.runs(args.dag) if r["dag_run_id"].startswith("stack_check__")), None)
    if run_id is None:
        log(f"no stack_check run of {args.dag}")
        return 1
    out = Path(args.out)
    pages = {"dag_list.png": f"{args.api}/dags",
             f"run_{args.dag}.png": f"{args.api}/dags/{args.dag}/runs/{quote(run_id, safe='')}"}
    for name, url in pages.items():
        path = ui_screenshots.shoot(url, out / name, token=token, wait_s=args.wait)
        log(f"screenshot {path} ({path.stat().st_size} bytes) <- {url}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["night", "compare", "watch", "screenshots"])
    ap.add_argument("--api", default="http://127.0.0.1:8080")
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password-file", help="the simple auth manager's generated passwords (JSON)")
    ap.add_argument("--as-of", default="2026-11-20")
    ap.add_argument("--warehouse-dsn")
    ap.add_argument("--sim-dsn")
    ap.add_argument("--audit-dsn", help="a login that reads schema audit (the file sources' failed batches)")
    ap.add_argument("--landing", help="the landing volume's folder, as the host sees it")
    ap.add_argument("--executor", default="CeleryExecutor", help="core.executor of the stack")
    ap.add_argument("--timeout", type=float, default=2400)
    ap.add_argument("--source", default="health_visits")
    ap.add_argument("--file", help="watch: the delivery's bytes")
    ap.add_argument("--target", help="watch: its path under the landing folder")
    ap.add_argument("--deliver", help="watch: shell command writing stdin to the path it is given")
    ap.add_argument("--within", type=float, default=60)
    ap.add_argument("--quiet", type=float, default=120)
    ap.add_argument("--dag", default="ingest_civil_status", help="screenshots: the DAG whose night run is shown")
    ap.add_argument("--out", default=str(REPO / ".stack" / "screenshots"))
    ap.add_argument("--wait", type=float, default=20, help="screenshots: seconds the page loads")
    args = ap.parse_args()
    return {"night": night, "compare": compare, "watch": watch_landing, "screenshots": screenshots}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
