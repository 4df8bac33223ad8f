"""The embedded PostgreSQL used where no server is configured (demo, tests).

`pgserver` ships real PostgreSQL binaries in a wheel. The server listens on a Unix socket
inside its data folder and keeps running after this process exits, so Airflow's task
subprocesses can reach it through an ordinary connection URI.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


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


def stop_server(data_dir: str | os.PathLike) -> bool:
    """Stop the embedded server of `data_dir` if it runs; True if one was stopped."""
    data_dir = Path(data_dir).resolve()
    if not (data_dir / "postmaster.pid").exists():
        return False
    import pgserver

    # A handle with cleanup_mode='stop' held only by this process stops the server on cleanup.
    pgserver.get_server(str(data_dir), cleanup_mode="stop").cleanup()
    return True
