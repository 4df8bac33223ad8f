"""The embedded PostgreSQL used where no server is configured (demo, tests, benchmarks).

`pgserver` ships real PostgreSQL binaries in a wheel. The server listens on a Unix socket
inside its data folder and keeps running after this process exits, so Airflow's task
subprocesses can reach it through an ordinary connection URI.

`choose_server` is the one rule the local tools share for which server to use: a named one,
else the server on 127.0.0.1:5432 if it answers, else the embedded one.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

LOCAL_SERVER = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


@dataclass(frozen=True)
class ServerChoice:
    params: dict                     # libpq keywords without dbname
    label: str                       # for reports: which server was used
    started_here: Path | None = None  # embedded data folder started by this call (stop it after)


def answers(dsn: str) -> bool:
    import psycopg2

    try:
        psycopg2.connect(dsn).close()
        return True
    except psycopg2.OperationalError:
        return False


def choose_server(choice: str | None, embedded_dir: str | os.PathLike) -> ServerChoice:
    """`choice`: a libpq DSN (must answer, else ValueError), 'embedded', or empty (the local
    server if it answers, else the embedded server in `embedded_dir`)."""
    import psycopg2.extensions

    if choice and choice != "embedded":
        if not answers(choice):
            raise ValueError(f"{choice!r} does not answer")
        params = psycopg2.extensions.parse_dsn(choice)
        label = f"server {params.get('host', 'local socket')}:{params.get('port', 5432)}"
    elif not choice and answers(LOCAL_SERVER):
        params = psycopg2.extensions.parse_dsn(LOCAL_SERVER)
        label = "server 127.0.0.1:5432"
    else:
        data_dir = Path(embedded_dir).resolve()
        was_running = (data_dir / "postmaster.pid").exists()
        return ServerChoice({"host": ensure_server(data_dir), "user": "postgres"}, "embedded (pgserver)",
                            None if was_running else data_dir)
    params.pop("dbname", None)
    return ServerChoice(params, label)


def maintenance(params: dict, statement: str) -> None:
    """Run one statement outside a transaction (CREATE/DROP DATABASE) on database postgres."""
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", **params)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def ensure_server(data_dir: str | os.PathLike) -> str:
    """Start (or reuse) the embedded server in `data_dir`; return its socket directory."""
    import pgserver  # heavy import, only where the embedded server is wanted

    # pgserver logs every initdb/pg_ctl step at INFO, and at interpreter exit (after pytest
    # closed its streams); its warnings and errors are enough.
    logging.getLogger("pgserver").setLevel(logging.WARNING)

    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: leave the server running for the Airflow processes that follow.
    server = pgserver.get_server(str(data_dir), cleanup_mode=None)
    socket_dir = server.get_postmaster_info().socket_dir
    log.info("embedded PostgreSQL running, socket in %s", socket_dir)
    return str(socket_dir)


def dsn(socket_dir: str, dbname: str = "postgres") -> str:
    """A libpq keyword DSN for the embedded server (user postgres, trust auth)."""
    return f"host={socket_dir} user=postgres dbname={dbname}"


def sqlalchemy_url(socket_dir: str, dbname: str) -> str:
    """SQLAlchemy URL; GX rejects a URL without a host, so name localhost and pass the socket."""
    return f"postgresql+psycopg2://postgres@localhost/{dbname}?host={socket_dir}"


def stop_server(data_dir: str | os.PathLike, wait_s: float = 30) -> bool:
    """Stop the embedded server of `data_dir` if it runs; True if one was stopped.

    pgserver stops a server only when the last process that asked for it lets go, and a process
    that was killed (e.g. `make ui` after Ctrl-C) never does: so stop the postmaster itself,
    with PostgreSQL's fast shutdown (SIGINT), and forget the handles."""
    import signal

    from devtools import processes

    data_dir = Path(data_dir).resolve()
    pid_file = data_dir / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:   # a stale pid file: the server is not running
        pid_file.unlink(missing_ok=True)
        return False
    if not processes.wait_gone(pid, wait_s):
        raise RuntimeError(f"the embedded PostgreSQL (pid {pid}) did not stop within {wait_s:.0f} s")
    (data_dir / ".handle_pids.json").unlink(missing_ok=True)
    return True
