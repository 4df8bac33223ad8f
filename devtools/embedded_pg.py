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


def ensure_server(data_dir: str | os.PathLike, *, tcp_port: int | None = None) -> str:
    """Start (or reuse) the embedded server in `data_dir`; return its socket directory. With
    `tcp_port`, it also listens on 127.0.0.1:tcp_port (listen_tcp), for BI tools' logins."""
    import pgserver  # heavy import, only where the embedded server is wanted

    # pgserver logs every initdb/pg_ctl step at INFO, and at interpreter exit (after pytest
    # closed its streams); its warnings and errors are enough.
    logging.getLogger("pgserver").setLevel(logging.WARNING)

    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: leave the server running for the Airflow processes that follow.
    server = pgserver.get_server(str(data_dir), cleanup_mode=None)
    socket_dir = server.get_postmaster_info().socket_dir
    if tcp_port:
        listen_tcp(data_dir, str(socket_dir), tcp_port, server.system_user)
    log.info("embedded PostgreSQL running, socket in %s", socket_dir)
    return str(socket_dir)


# Over TCP every login needs its password (the superuser has none, so it cannot log in that
# way); the Unix socket, reachable only on this machine, keeps trust for the pipeline's tools.
_HBA = """# written by devtools.embedded_pg.listen_tcp
local all all trust
host  all all 127.0.0.1/32 scram-sha-256
host  all all ::1/128      scram-sha-256
"""


def server_port(data_dir: str | os.PathLike) -> int:
    """The port of the running embedded server (also its socket file's number: .s.PGSQL.<port>)."""
    lines = (Path(data_dir).resolve() / "postmaster.pid").read_text().splitlines()
    return int(lines[3])


def listen_tcp(data_dir: str | os.PathLike, socket_dir: str, port: int, system_user: str | None = None) -> bool:
    """Make the running embedded server listen on 127.0.0.1:`port` with password authentication
    (pgserver starts it on the socket only). PostgreSQL names its socket after the same port, so
    clients of the socket must then give `port` too (server_port). Restarts the server once;
    if the port is taken by something else, keeps the socket only and says so. True if listening."""
    import socket

    from pgserver._commands import pg_ctl

    data_dir = Path(data_dir).resolve()
    lines = (data_dir / "postmaster.pid").read_text().splitlines()
    hba = data_dir / "pg_hba.conf"
    if hba.read_text() != _HBA:
        hba.write_text(_HBA)   # rewritten in place: the file keeps its owner
        pg_ctl(["reload"], pgdata=data_dir, user=system_user)
    if int(lines[3]) == port and lines[5].strip() == "127.0.0.1":
        return True
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            log.warning("port %d is taken: the embedded PostgreSQL stays on its Unix socket only (set IOC_PG_PORT)", port)
            return False
    pg_ctl(["-w", "restart", "-m", "fast", "-o", f"-h 127.0.0.1 -p {port} -k {socket_dir}"],
           pgdata=data_dir, user=system_user, timeout=60)
    log.info("embedded PostgreSQL listening on 127.0.0.1:%d (password logins)", port)
    return True


def dsn(socket_dir: str, dbname: str = "postgres", port: int | None = None) -> str:
    """A libpq keyword DSN for the embedded server (user postgres, trust auth)."""
    return f"host={socket_dir} user=postgres dbname={dbname}" + (f" port={port}" if port else "")


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
