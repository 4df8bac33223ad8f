"""HTTP side of the simulator: the REST protocol of sources.md, with switchable faults.

Why: the pipeline's REST extractor is tested against real HTTP, not mocks. Every request
queries the simulator's database (count + one page, in one snapshot), so a source of
millions of records never sits in memory. Endpoints:

- `GET <resource path>?updated_since=&updated_until=&page=&page_size=` (bearer token)
- `GET /_sim/health` (no token), `GET|POST /_sim/faults` (bearer token; JSON)

Only method, path, known query parameters and status are logged: never record content.
"""
from __future__ import annotations

import hmac
import json
import logging
import math
import threading
import time
from datetime import date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import psycopg2
import psycopg2.extras
import psycopg2.pool

from simulator import sources
from simulator.faults import FaultDecider, Faults
from simulator.resource import IncrementalResource

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
POOL_SIZE = 8
WINDOW_PARAMS = ("updated_since", "updated_until", "page", "page_size")
# The REST sources of the catalog that have a simulator module: incremental resources
# (`?updated_since=&updated_until=&page=&page_size=`), and dated snapshot ones
# (`?as_of=<date>&page=&page_size=`, population).
_REST = [module.RESOURCE for _, _, module in sources.modules("rest")]
RESOURCES: tuple[IncrementalResource, ...] = tuple(r for r in _REST if isinstance(r, IncrementalResource))
SNAPSHOT_RESOURCES = tuple(r for r in _REST if not isinstance(r, IncrementalResource))
SNAPSHOT_PARAMS = ("as_of", "page", "page_size")

HTML_502 = (b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
            b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n")


class BadRequest(Exception):
    """A query the protocol does not allow: answered 400 with a JSON error body."""


def _timestamp(name: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        ts = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: not an ISO 8601 timestamp (URL-encode the '+' of the offset)")
    if ts.tzinfo is None:
        raise BadRequest(f"{name}: timestamp needs an offset, e.g. +07:00")
    return ts


def _positive_int(name: str, value: str | None, default: int, maximum: int | None = None) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise BadRequest(f"{name}: not an integer")
    if n < 1:
        raise BadRequest(f"{name}: must be >= 1")
    if maximum is not None and n > maximum:
        raise BadRequest(f"{name}: at most {maximum}")
    return n


def _single_params(query: str) -> dict[str, str]:
    params = parse_qs(query, keep_blank_values=True)
    for name, values in params.items():
        if len(values) > 1:
            raise BadRequest(f"{name}: given more than once")
    return {k: v[0] for k, v in params.items()}


COUNT_CACHE_SECONDS = 10.0   # a window's counts are reused this long by the pages that follow
PAGE_CACHE_SIZE = 100_000


class SimServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer holding the database pool, token, resources and fault switches."""

    daemon_threads = True

    def __init__(self, address, dsn: str, token: str, faults: Faults | None) -> None:
        self.token = token
        self.decider = FaultDecider(faults)
        self.resources = {r.path: r for r in RESOURCES}
        self.snapshots = {r.path: r for r in SNAPSHOT_RESOURCES}
        self.pool = psycopg2.pool.ThreadedConnectionPool(1, POOL_SIZE, dsn)
        # Where each served page ended, and the window's counts, so that page k+1 of an
        # extraction continues from page k's last row (keyset) instead of OFFSET-scanning the
        # whole window again: paging a 1M-row window stays linear. Not used in race mode.
        self.page_ends: dict = {}
        self.window_counts: dict = {}
        self.cache_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(POOL_SIZE)
        with self.connection() as conn, conn.cursor() as cur:
            for r in RESOURCES + SNAPSHOT_RESOURCES:
                if r.ddl:
                    cur.execute(r.ddl)
        super().__init__(address, Handler)

    def connection(self):
        return _PooledConnection(self)

    def server_close(self) -> None:
        super().server_close()
        self.pool.closeall()


class _PooledConnection:
    """Context manager: an autocommit connection from the pool, bounded by a semaphore."""

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def __enter__(self):
        self.server._slots.acquire()
        try:
            self.conn = self.server.pool.getconn()
            self.conn.autocommit = True
        except Exception:
            self.server._slots.release()
            raise
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        broken = exc_type is not None and isinstance(exc, psycopg2.Error)
        self.server.pool.putconn(self.conn, close=broken or bool(self.conn.closed))
        self.server._slots.release()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimServer
    _status = 0
    _logged = False

    # ------------------------------------------------------------------ plumbing
    def log_request(self, code="-", size="-") -> None:  # replaced by _log_line
        pass

    def log_message(self, format, *args) -> None:
        log.debug("http: " + format, *args)

    def send_response(self, code, message=None) -> None:
        self._status = code
        super().send_response(code, message)

    def _log_line(self) -> None:
        if self._logged:
            return
        self._logged = True
        parts = urlsplit(self.path)
        try:  # only the protocol's parameters: nothing else a client sends is echoed to logs
            known = {k: v for k, v in _single_params(parts.query).items()
                     if k in WINDOW_PARAMS + SNAPSHOT_PARAMS}
        except BadRequest:
            known = {}
        shown = parts.path + ("?" + urlencode(known) if known else "")
        log.info("%s %s %s", self.command, shown, self._status)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self._log_line()  # before the body: the line exists once the client has its answer
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload, headers: dict | None = None) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", headers)

    def _error(self, status: int, error: str, message: str, headers: dict | None = None) -> None:
        self._json(status, {"error": error, "message": message}, headers)

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.server.token.encode())
        if not ok:
            self._error(401, "unauthorized", "missing or wrong bearer token",
                        {"WWW-Authenticate": 'Bearer realm="sector-simulator"'})
        return ok

    def _dispatch(self, method: str) -> None:
        self._status, self._logged = 0, False  # per request (keep-alive reuses the handler)
        try:
            path = urlsplit(self.path).path
            if method == "GET" and path == "/_sim/health":
                self._health()
            elif path == "/_sim/faults" and method in ("GET", "POST"):
                if self._authorized():
                    self._faults(method)
            elif method == "GET" and path in self.server.resources:
                if self._authorized():
                    self._incremental(self.server.resources[path])
            elif method == "GET" and path in self.server.snapshots:
                if self._authorized():
                    self._snapshot(self.server.snapshots[path])
            elif path in self.server.resources or path in self.server.snapshots or path.startswith("/_sim/"):
                self._error(405, "method_not_allowed", f"{method} not allowed here")
            else:
                self._error(404, "not_found", "no such resource")
        except BadRequest as exc:
            self._error(400, "bad_request", str(exc))
        except (BrokenPipeError, ConnectionResetError):
            self._status = self._status or 499  # client went away
        except Exception:
            log.exception("%s %s failed", method, urlsplit(self.path).path)
            if not self._status:
                self._error(500, "internal_error", "simulator error")
        finally:
            self._log_line()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # ------------------------------------------------------------------ endpoints
    def _health(self) -> None:
        with self.server.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
        self._json(200, {"status": "ok"})

    def _faults(self, method: str) -> None:
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            try:
                values = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(values, dict):
                    raise ValueError("expected a JSON object")  # noqa: TRY004 - answered as a 400 like any bad body
                self.server.decider.set(self.server.decider.faults.updated(values))
            except (ValueError, TypeError) as exc:
                raise BadRequest(f"faults: {exc}")
            log.info("faults now %s", self.server.decider.faults.as_dict())
        self._json(200, self.server.decider.faults.as_dict())

    def _incremental(self, res: IncrementalResource) -> None:
        params = _single_params(urlsplit(self.path).query)
        since = _timestamp("updated_since", params.get("updated_since"))
        until = _timestamp("updated_until", params.get("updated_until"))
        page = _positive_int("page", params.get("page"), 1)
        size = _positive_int("page_size", params.get("page_size"), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)

        fault, race_u, faults = self.server.decider.draw()
        if fault == "unavailable":
            return self._error(503, "unavailable", "service temporarily unavailable")
        if fault == "throttled":
            return self._error(429, "too_many_requests", "slow down", {"Retry-After": "1"})
        if fault == "html":
            return self._send(502, HTML_502, "text/html; charset=utf-8")
        if fault == "slow":
            time.sleep(faults.slow_seconds)

        body, moved = self._page(res, since, until, page, size, race_u < faults.race, race_u / max(faults.race, 1e-12),
                                 keyset=faults.race == 0)
        if moved:
            log.info("race: a record of page %d was updated during the extraction", page)
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        if fault == "truncate":
            data = data[: max(1, len(data) // 2)]
        self._send(200, data, "application/json; charset=utf-8")

    def _snapshot(self, res) -> None:
        """One page of the snapshot of `as_of` (required); transport faults as for windows."""
        params = _single_params(urlsplit(self.path).query)
        raw = params.get("as_of") or ""
        try:
            as_of = date.fromisoformat(raw) if len(raw) == 10 else None
        except ValueError:
            as_of = None
        if as_of is None:
            raise BadRequest("as_of: required, a date YYYY-MM-DD")
        page = _positive_int("page", params.get("page"), 1)
        size = _positive_int("page_size", params.get("page_size"), DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        fault, _, faults = self.server.decider.draw()
        if fault == "unavailable":
            return self._error(503, "unavailable", "service temporarily unavailable")
        if fault == "throttled":
            return self._error(429, "too_many_requests", "slow down", {"Retry-After": "1"})
        if fault == "html":
            return self._send(502, HTML_502, "text/html; charset=utf-8")
        if fault == "slow":
            time.sleep(faults.slow_seconds)
        with self.server.connection() as conn, conn.cursor() as cur:
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")  # count and page agree
            try:
                body = res.page(cur, as_of, page, size)
            finally:
                cur.execute("ROLLBACK")
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        if fault == "truncate":
            data = data[: max(1, len(data) // 2)]
        self._send(200, data, "application/json; charset=utf-8")

    def _page(self, res, since, until, page, size, race: bool, pick: float, keyset: bool = False):
        where, args = [], []
        if since is not None:
            where.append("updated_at >= %s")
            args.append(since)
        if until is not None:
            where.append("updated_at < %s")
            args.append(until)
        cond = ("WHERE " + " AND ".join(where)) if where else ""
        cols = ", ".join(f"t.{c}" for c in res.fields + ("sim_wire_override",))
        window = (res.table, since, until, size)
        srv = self.server
        with srv.cache_lock:
            cached = srv.window_counts.get(window[:3]) if keyset else None
            if cached and time.monotonic() - cached[1] > COUNT_CACHE_SECONDS:
                cached = None
            after = srv.page_ends.get((*window, page - 1)) if keyset and page > 1 else None
        with self.server.connection() as conn:
            with conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                # count and page from one snapshot
                cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    if cached:
                        counts = cached[0]
                    else:
                        cur.execute(f"SELECT count(*) AS keys, count(*) FILTER (WHERE sim_served_twice)"
                                    f" AS twice FROM {res.table} {cond}", args)
                        counts = cur.fetchone()
                    # Exact duplicates are served twice, next to each other.
                    # Skip to the page on the index alone (keyset after the previous page's
                    # last row when known, else OFFSET), then read only its rows.
                    if after:
                        seek = (f"{'AND' if cond else 'WHERE'} ({res.table}.updated_at, {res.table}.{res.key})"
                                f" >= (%s, %s) AND (updated_at, {res.key}, rep.n) > (%s, %s, %s)")
                        seek_args, offset = [after[0], after[1], *after], 0
                    else:
                        seek, seek_args, offset = "", [], (page - 1) * size
                    cur.execute(
                        f"SELECT {cols}, k.updated_at AS _k_at, k.n AS _k_n FROM (SELECT updated_at, {res.key}, rep.n"
                        f" FROM {res.table}"
                        f" CROSS JOIN LATERAL generate_series(1, CASE WHEN sim_served_twice THEN 2"
                        f" ELSE 1 END) AS rep(n) {cond} {seek} ORDER BY updated_at, {res.key}, rep.n"
                        f" LIMIT %s OFFSET %s) k JOIN {res.table} t ON t.{res.key} = k.{res.key}"
                        f" ORDER BY k.updated_at, k.{res.key}, k.n",
                        args + seek_args + [size, offset])
                    rows = cur.fetchall()
                finally:
                    cur.execute("ROLLBACK")
            if keyset:
                with srv.cache_lock:
                    if not cached:
                        srv.window_counts[window[:3]] = (counts, time.monotonic())
                    if rows:
                        last = rows[-1]
                        srv.page_ends[(*window, page)] = (last["_k_at"], last[res.key], last["_k_n"])
                    if len(srv.page_ends) > PAGE_CACHE_SIZE:
                        srv.page_ends.clear()
            for r in rows:
                r.pop("_k_at", None)
                r.pop("_k_n", None)
            served = counts["keys"] + counts["twice"]
            pages = math.ceil(served / size)
            moved = None
            if race and rows and page < pages:
                moved = rows[min(len(rows) - 1, int(pick * len(rows)))][res.key]
                self._move_to_end(conn, res, moved, cond, args, until)
        body = {"items": [res.to_item(r) for r in rows], "page": page, "page_size": size,
                "total_items": counts["keys"], "total_pages": pages}
        return body, moved

    @staticmethod
    def _move_to_end(conn, res, key, cond, args, until) -> None:
        """The record is updated 'now': after every other record of the window, still inside it."""
        cap = (until - timedelta(microseconds=1)) if until is not None else None
        with conn.cursor() as cur:
            cur.execute(
                f"UPDATE {res.table} SET updated_at = GREATEST(updated_at, LEAST("
                f"(SELECT max(updated_at) FROM {res.table} {cond}) + interval '1 second',"
                f" COALESCE(%s::timestamptz, 'infinity'))) WHERE {res.key} = %s",
                args + [cap, key])


def make_server(dsn: str, host: str = "127.0.0.1", port: int = 8765, token: str = "sim-token",
                faults: Faults | None = None) -> SimServer:
    """A ready server (port 0 picks a free one: see `server.server_address`); not yet serving."""
    if not token:
        raise ValueError("a bearer token is required")
    return SimServer((host, port), dsn, token, faults)


def serve(dsn: str, host: str = "127.0.0.1", port: int = 8765, token: str = "sim-token",
          faults: Faults | None = None) -> None:
    """Serve until interrupted."""
    server = make_server(dsn, host, port, token, faults)
    log.info("simulator serving %s on http://%s:%d (faults %s)",
             ", ".join(server.resources), *server.server_address[:2], server.decider.faults.as_dict())
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log.info("simulator stopping")
    finally:
        server.server_close()
