"""What the benchmarks share: the server and throw-away databases, the simulator process, a
spawned child that runs pipeline code with its own peak RSS and per-step timings, the raw
COPY baseline and the table printer.

Importing this module puts plugins/ and the repository root on sys.path (the package and the
simulator, from any working directory) and keeps GX's analytics off.
"""
from __future__ import annotations

import functools
import json
import logging
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from collections.abc import Callable

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO / "plugins", REPO):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import psycopg2  # noqa: E402

log = logging.getLogger("bench")

PROVINCE = "48"


# ----------------------------------------------------------------------------- server and databases

def resolve_server(choice: str) -> tuple[dict, str, Path | None]:
    """(libpq params without dbname, label, embedded data dir started here or None): the same
    rule as the tests (devtools.embedded_pg.choose_server), embedded data in .data/bench-pg."""
    from devtools import embedded_pg

    try:
        chosen = embedded_pg.choose_server(choice, REPO / ".data" / "bench-pg")
    except ValueError as exc:
        raise SystemExit(f"--server {exc}") from None
    return chosen.params, chosen.label, chosen.started_here


def stop_embedded(started_here: Path | None) -> None:
    if started_here is not None:
        from devtools import embedded_pg
        embedded_pg.stop_server(started_here)


def dsn_of(params: dict, dbname: str) -> str:
    return " ".join(f"{k}={v}" for k, v in {**params, "dbname": dbname}.items())


def _maintenance(params: dict, sql: str) -> None:
    from devtools import embedded_pg

    embedded_pg.maintenance(params, sql)


def create_database(params: dict, prefix: str, created: list[str]) -> str:
    name = f"ioc_bench_{prefix}_{uuid.uuid4().hex[:8]}"
    _maintenance(params, f'CREATE DATABASE "{name}"')
    created.append(name)
    return dsn_of(params, name)


def drop_databases(params: dict, created: list[str]) -> None:
    for name in created:
        try:
            _maintenance(params, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
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


def machine_line(info: dict, load_before: tuple, load_after: tuple) -> str:
    return (f"machine: nproc={info['nproc']}, RAM {info['ram_gb']:.1f} GB, PostgreSQL {info['postgres']} "
            f"({info['server']}); load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")


def pg_conn_json(dsn: str) -> str:
    """An Airflow postgres connection (JSON form of AIRFLOW_CONN_<ID>) for a libpq DSN."""
    p = psycopg2.extensions.parse_dsn(dsn)
    return json.dumps({"conn_type": "postgres", "host": p.get("host", "127.0.0.1"),
                       **({"port": int(p["port"])} if p.get("port") else {}),
                       "login": p.get("user", "postgres"), **({"password": p["password"]} if p.get("password") else {}),
                       "schema": p["dbname"]})


def sqlalchemy_url(dsn: str) -> str:
    from ioc_pipeline import config

    p = psycopg2.extensions.parse_dsn(dsn)
    return config.PgParams(host=p["host"], port=int(p["port"]) if p.get("port") else None, dbname=p["dbname"],
                           user=p.get("user", "postgres"), password=p.get("password")).sqlalchemy_url()


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


def rest_conn_json(port: int, token: str) -> str:
    return json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port, "schema": "http", "password": token})


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


# ----------------------------------------------------------------------------- timed child process

def peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM). Not ru_maxrss: Linux keeps that across
    exec, so a spawned child would report its parent's RSS at the fork (e.g. after generating
    5M rows) instead of its own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class StepTimer:
    """Wall and CPU seconds per step, summed when a step runs more than once (a file run calls
    extract, validate, ... once per file). `instrument` wraps module functions in place so code
    that calls them through the module (file_batches -> batch.extract) is timed too."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.rss_mb: dict[str, float] = {}   # the process's peak RSS when the step ended

    def run(self, name: str, fn: Callable, *a, **kw):
        t, c = time.perf_counter(), cpu_now()
        try:
            return fn(*a, **kw)
        finally:
            self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - t
            self.cpu[name] = self.cpu.get(name, 0.0) + cpu_now() - c
            self.rss_mb[name] = peak_rss_mb()
            log.info("step %s: %.2f s so far (process CPU %.2f s, peak RSS %.0f MB)", name, self.wall[name],
                     self.cpu[name], self.rss_mb[name])

    def instrument(self, module, names: dict[str, str]) -> None:
        """names: function name in `module` -> step name."""
        for fn_name, step in names.items():
            original = getattr(module, fn_name)
            setattr(module, fn_name, functools.wraps(original)(functools.partial(self.run, step, original)))


def child_logging(tag: str) -> None:
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s %(levelname)s [{tag}] %(name)s: %(message)s")
    logging.getLogger("airflow").setLevel(logging.WARNING)


def _child_main(target: Callable, args: tuple, out) -> None:
    try:
        result = target(*args)
        result["peak_rss_mb"] = peak_rss_mb()
        out.send({"ok": True, **result})
    except BaseException as exc:
        out.send({"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
        raise
    finally:
        out.close()


def run_in_child(target: Callable, *args) -> dict:
    """target(*args) -> dict, in a fresh spawned process; its result gets the child's peak RSS."""
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child_main, args=(target, args, sender), name=getattr(target, "__name__", "child"))
    child.start()
    sender.close()
    try:
        result = receiver.recv()
    except EOFError:
        result = {"ok": False, "error": "the child process died without a result"}
    child.join()
    if not result.pop("ok"):
        raise RuntimeError(f"{child.name} failed (exit {child.exitcode}): {result['error']}")
    return result


# ----------------------------------------------------------------------------- raw COPY baseline

def raw_copy(wh_dsn: str, path: Path, columns: list[str], options: str = "",
             indexes: list[list[str]] = ()) -> float:
    """Seconds to COPY the file into a logged table of text columns, commit included: a plain
    one, or one with `indexes` (btree, created before the COPY). `options` e.g.
    "(FORMAT csv, HEADER true)" for a CSV delivery."""
    conn = psycopg2.connect(wh_dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS public.bench_raw_copy")
            cur.execute("CREATE TABLE public.bench_raw_copy (" + ", ".join(f'"{c}" text' for c in columns) + ")")
            for cols in indexes:
                cur.execute("CREATE INDEX ON public.bench_raw_copy (" + ", ".join(f'"{c}"' for c in cols) + ")")
        conn.commit()
        with open(path, "r", encoding="utf-8") as f, conn.cursor() as cur:
            t = time.perf_counter()
            cur.copy_expert(f"COPY public.bench_raw_copy FROM STDIN {options}", f, size=1 << 20)
            conn.commit()
            seconds = time.perf_counter() - t
        with conn.cursor() as cur:
            cur.execute("DROP TABLE public.bench_raw_copy")
        conn.commit()
        return seconds
    finally:
        conn.close()


def copy_query_to_file(dsn: str, select: str, path: Path, session: tuple[str, ...] = (), options: str = "") -> int:
    """COPY (select) TO a file (text, or `options` e.g. "(FORMAT csv, HEADER true)"); returns the row count."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur, open(path, "w", encoding="utf-8") as f:
            for statement in session:
                cur.execute(statement)
            cur.copy_expert(f"COPY ({select}) TO STDOUT {options}", f)
            return cur.rowcount
    finally:
        conn.close()


# ----------------------------------------------------------------------------- report

def format_table(head: tuple[str, ...], lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(h), *(len(l[i]) for l in lines)) if lines else len(h) for i, h in enumerate(head)]
    fmt = lambda row: "  ".join(c.rjust(w) for c, w in zip(row, widths))  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths]), *map(fmt, lines)])


def fmt_opt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"
