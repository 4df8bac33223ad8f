"""Container healthchecks of docker-compose.yaml that need neither curl nor the airflow CLI (whose
start-up alone can outlast a healthcheck's timeout on a small machine):

    python scripts/healthcheck.py http URL            # answers 2xx/3xx within 5 s
    python scripts/healthcheck.py job TriggererJob    # a job of this type on this host heartbeats
    python scripts/healthcheck.py celery              # this host's Celery worker answers a ping

`job` reads Airflow's metadata database (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN) the way
`airflow jobs check --job-type T --hostname H` does: a running job whose latest heartbeat is
recent. Exit 0 when healthy, 1 otherwise (with the reason on stderr).
"""
from __future__ import annotations

import os
import socket
import sys

HEARTBEAT_GRACE_S = 120


def http(url: str) -> None:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as r:
        if r.status >= 400:
            raise SystemExit(f"{url}: HTTP {r.status}")


def job(job_type: str) -> None:
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    hosts = {os.environ.get("HOSTNAME", ""), socket.gethostname(), socket.getfqdn()} - {""}
    with psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username, password=url.password,
                          dbname=url.database, connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute("""SELECT count(*) FROM job WHERE job_type = %s AND state = 'running' AND hostname = ANY(%s)
                          AND latest_heartbeat > now() - make_interval(secs => %s)""",
                    (job_type, sorted(hosts), HEARTBEAT_GRACE_S))
        if not cur.fetchone()[0]:
            raise SystemExit(f"no running {job_type} with a recent heartbeat on {sorted(hosts)}")


def celery() -> None:
    from celery import Celery

    app = Celery(broker=os.environ["AIRFLOW__CELERY__BROKER_URL"])
    name = f"celery@{socket.gethostname()}"
    if not app.control.ping(destination=[name], timeout=5):
        raise SystemExit(f"{name} did not answer a ping")


def main(argv: list[str]) -> int:
    checks = {"http": http, "job": job, "celery": celery}
    if not argv or argv[0] not in checks:
        print(__doc__, file=sys.stderr)
        return 2
    checks[argv[0]](*argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
