"""Client side of the sector REST protocol (civil_status, population, public_services).

Why so defensive: the sources are other agencies' systems. They answer 429 under load, 5xx and
timeouts happen, a proxy may return an HTML error page with status 200, and a body may be cut
off. Anything that is not exactly the protocol's JSON page is a failed *attempt* (retried), never
data, and a batch must fail loudly rather than load half a window. See sources.md "REST protocol".

Behaviour, in short:
- one GET per page, `Authorization: Bearer <token>`; redirects are not followed (the token must
  not travel to another address);
- 401/403 and other 4xx/3xx fail at once (retrying cannot help);
- 500/502/503/504, connection errors, timeouts and malformed bodies are retried with exponential
  backoff and jitter, at most `max_attempts` per page;
- 429 waits `Retry-After` (seconds or HTTP-date), capped at `backoff_max` so a hostile server
  cannot park the task for hours; a missing or unreadable header falls back to the backoff;
- `timeout` bounds the connect, every read, and the whole response of one attempt (the total is
  checked whenever bytes arrive, so a server dripping a byte at a time is cut off too);
- an empty result (total_items 0) yields exactly one empty page 1, so callers always see the
  first page's totals.

The token never appears in a log line, an exception message or a repr.
"""
from __future__ import annotations

import json
import logging
import math
import random
import re
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from datetime import datetime, UTC
from typing import Any
from collections.abc import Iterator
from urllib.parse import urlsplit

import requests
import urllib3

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 1000              # protocol limit
MAX_BODY_BYTES = 64 * 1024 * 1024  # a page of 1000 records is ~1 MB; more is not a page
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
_TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: safe in a header, no CR/LF injection
_PAGE_KEYS = ("items", "page", "total_items", "total_pages")


class SourceError(Exception):
    """A source could not be read; the message says where, what happened and what to do.

    `status` is the last HTTP status (None for network errors), `attempts` how many requests
    were made for the failing page.
    """

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 0):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


@dataclass(frozen=True)
class RestEndpoint:
    """One REST resource of a source, with its retry policy."""

    base_url: str
    path: str
    token: str = field(repr=False)
    page_size: int = MAX_PAGE_SIZE
    timeout: float = 30.0
    max_attempts: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    source: str = ""  # label for messages, e.g. the connection id

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base_url must be http(s)://host[:port], got {_safe_url(self.base_url)!r}")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("base_url must not carry credentials, a query or a fragment")
        if not self.path.startswith("/"):
            raise ValueError(f"path must start with '/', got {self.path!r}")
        if not isinstance(self.token, str) or not _TOKEN_RE.match(self.token):
            # never echo the token: say only what is wrong with it
            raise ValueError("token must be non-empty visible ASCII without spaces or line breaks")
        if not isinstance(self.page_size, int) or not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {self.page_size!r}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0, got {self.timeout!r}")
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts!r}")
        if not 0 <= self.backoff_base <= self.backoff_max:
            raise ValueError("need 0 <= backoff_base <= backoff_max")

    @property
    def url(self) -> str:
        """Full resource URL without query (safe to show)."""
        return self.base_url.rstrip("/") + self.path

    @property
    def label(self) -> str:
        return f"{self.source} {self.url}" if self.source else self.url


@dataclass(frozen=True)
class Page:
    """One validated page: `items` are JSON objects, totals as the server reported them."""

    number: int
    items: list[dict] = field(repr=False)  # records may hold personal data: keep out of reprs
    total_items: int
    total_pages: int


class _RetryableFailure(Exception):
    """One attempt failed in a way another attempt may fix."""

    def __init__(self, reason: str, status: int | None = None, wait: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.wait = wait  # from Retry-After; None = use the backoff


class _BearerAuth(requests.auth.AuthBase):
    """Bearer auth as an auth object, so requests never swaps in ~/.netrc credentials."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "<_BearerAuth ***>"


def iter_pages(
    endpoint: RestEndpoint,
    params: dict[str, str],
    session: requests.Session | None = None,
) -> Iterator[Page]:
    """Yield pages 1..total_pages, total_pages taken from the first page's answer.

    `params` are sent as given (e.g. updated_since/updated_until with offset, or as_of); requests
    URL-encodes them. Raises SourceError when a page cannot be had; pages already yielded then
    belong to a failed window and must be discarded by the caller.
    """
    for key, value in params.items():
        if key in ("page", "page_size"):
            raise ValueError(f"{key!r} is set by iter_pages, not by the caller")
        if not isinstance(value, str):
            # requests silently drops None: a missing bound would widen the window unnoticed
            raise TypeError(f"param {key!r} must be a string, got {type(value).__name__}")
    return _pages(endpoint, dict(params), session)


def _pages(endpoint: RestEndpoint, params: dict[str, str], session: requests.Session | None) -> Iterator[Page]:
    own_session = session is None
    session = session or requests.Session()
    try:
        first = _fetch_page(session, endpoint, params, 1)
        received = len(first.items)
        _log_progress(endpoint, first, received, first)
        yield first
        for number in range(2, first.total_pages + 1):
            page = _fetch_page(session, endpoint, params, number)
            if (page.total_items, page.total_pages) != (first.total_items, first.total_pages):
                log.warning(
                    "%s page %d: totals changed during extraction (%d items/%d pages, first page said %d/%d)",
                    endpoint.label, number, page.total_items, page.total_pages,
                    first.total_items, first.total_pages,
                )
            received += len(page.items)
            _log_progress(endpoint, page, received, first)
            yield page
    finally:
        if own_session:
            session.close()


def _log_progress(endpoint: RestEndpoint, page: Page, received: int, first: Page) -> None:
    log.info(
        "%s page %d/%d (%d/%d items)",
        endpoint.label, page.number, max(first.total_pages, 1), received, first.total_items,
    )


def _fetch_page(session: requests.Session, endpoint: RestEndpoint, params: dict[str, str], number: int) -> Page:
    """One page, retried per the endpoint's policy."""
    last: _RetryableFailure | None = None
    for attempt in range(1, endpoint.max_attempts + 1):
        try:
            return _attempt(session, endpoint, params, number, attempt)
        except _RetryableFailure as failure:
            last = failure
            if attempt == endpoint.max_attempts:
                break
            delay = failure.wait if failure.wait is not None else _backoff(endpoint, attempt)
            log.warning(
                "%s page %d: attempt %d/%d failed (%s); retrying in %.1f s",
                endpoint.label, number, attempt, endpoint.max_attempts, failure.reason, delay,
            )
            time.sleep(delay)
    assert last is not None
    raise SourceError(
        f"{endpoint.label} page {number}: gave up after {endpoint.max_attempts} attempts: {last.reason}; "
        "the source is down, overloaded or sending bad data: check it, then re-run the task "
        "(nothing of this window was loaded)",
        status=last.status,
        attempts=endpoint.max_attempts,
    )


def _backoff(endpoint: RestEndpoint, attempt: int) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, capped."""
    cap = min(endpoint.backoff_max, endpoint.backoff_base * 2 ** (attempt - 1))
    return cap / 2 + random.uniform(0, cap / 2)


def _attempt(
    session: requests.Session, endpoint: RestEndpoint, params: dict[str, str], number: int, attempt: int
) -> Page:
    query = {**params, "page": str(number), "page_size": str(endpoint.page_size)}
    where = f"{endpoint.label} page {number}"
    deadline = time.monotonic() + endpoint.timeout
    try:
        with session.get(
            endpoint.url,
            params=query,
            auth=_BearerAuth(endpoint.token),
            headers={"Accept": "application/json"},
            timeout=(endpoint.timeout, endpoint.timeout),
            stream=True,
            allow_redirects=False,
        ) as resp:
            status = resp.status_code
            if status == 200:
                body = _read_body(resp, deadline, endpoint.timeout, MAX_BODY_BYTES)
                return _parse_page(body, number, endpoint.page_size)
            _raise_for_status(resp, endpoint, where, attempt, deadline)
            raise _RetryableFailure(f"unexpected HTTP {status}", status)  # other 2xx: not a page
    except requests.Timeout as exc:
        raise _RetryableFailure(f"timed out after {endpoint.timeout:g} s ({_describe(exc, endpoint)})") from None
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise _RetryableFailure(f"connection problem ({_describe(exc, endpoint)})") from None


def _raise_for_status(
    resp: requests.Response, endpoint: RestEndpoint, where: str, attempt: int, deadline: float
) -> None:
    """Classify a non-200 answer: raise _RetryableFailure or SourceError."""
    status = resp.status_code
    if status in (401, 403):
        who = f"connection '{endpoint.source}'" if endpoint.source else "the endpoint"
        raise SourceError(
            f"{where}: HTTP {status}: the bearer token of {who} was refused; "
            "check the connection's password (the token) and its validity with the source's operator",
            status=status, attempts=attempt,
        )
    if status == 429:
        wait = _retry_after(resp.headers.get("Retry-After"), endpoint.backoff_max)
        raise _RetryableFailure("HTTP 429 too many requests", status, wait)
    if status in RETRYABLE_STATUS:
        raise _RetryableFailure(f"HTTP {status}", status)
    if 300 <= status < 400:
        target = _safe_url(resp.headers.get("Location", ""))
        raise SourceError(
            f"{where}: HTTP {status} redirect to {target!r} not followed (the token stays with the "
            "configured address); set the connection's host/schema to the final address",
            status=status, attempts=attempt,
        )
    if 400 <= status < 500:
        detail = _error_detail(resp, endpoint, deadline)
        raise SourceError(
            f"{where}: HTTP {status} request rejected{detail}; retrying cannot help: check the "
            "path and the parameters (window bounds, page_size) against the source's API",
            status=status, attempts=attempt,
        )
    if status >= 500:
        raise SourceError(
            f"{where}: HTTP {status} from the source; not a transient error per the protocol: "
            "report it to the source's operator",
            status=status, attempts=attempt,
        )


def _read_body(resp: requests.Response, deadline: float, timeout: float, cap: int) -> bytes:
    """Read the (decoded) body, bounded in size and in total time."""
    declared = resp.headers.get("Content-Length", "")
    if re.fullmatch(r"[0-9]{1,20}", declared) and int(declared) > cap:
        raise _RetryableFailure(f"body of {declared} bytes exceeds {cap} bytes", 200)
    chunks: list[bytes] = []
    size = 0
    while True:
        # read1 returns as soon as some bytes arrived, so the deadline is checked per recv
        chunk = resp.raw.read1(65536, decode_content=True)
        if not chunk:
            break
        size += len(chunk)
        if size > cap:
            raise _RetryableFailure(f"body exceeds {cap} bytes", 200)
        if time.monotonic() > deadline:
            raise _RetryableFailure(f"response took longer than {timeout:g} s in total", 200)
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_page(body: bytes, number: int, page_size: int) -> Page:
    """Check the body is exactly a protocol page; anything else is a failed attempt."""

    def bad(why: str) -> _RetryableFailure:
        return _RetryableFailure(f"invalid page body: {why}", 200)

    def reject_constant(name: str) -> Any:
        raise ValueError(f"non-JSON constant {name}")

    try:
        doc = json.loads(body, parse_constant=reject_constant)
    except RecursionError:
        raise bad("JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        kind = "HTML, not JSON" if body.lstrip()[:1] == b"<" else "not valid JSON (truncated?)"
        raise bad(f"{kind}: {type(exc).__name__} at {getattr(exc, 'pos', '?')} of {len(body)} bytes") from None
    if not isinstance(doc, dict):
        raise bad(f"top level is {type(doc).__name__}, not an object")
    missing = [k for k in _PAGE_KEYS if k not in doc]
    if missing:
        raise bad(f"missing {', '.join(missing)}")
    for key in ("page", "total_items", "total_pages"):
        if not _is_count(doc[key]):
            raise bad(f"{key} is not a non-negative integer")
    if doc["page"] != number:
        raise bad(f"asked for page {number}, server answered page {doc['page']}")
    echoed = doc.get("page_size", page_size)
    if not _is_count(echoed) or not 1 <= echoed <= page_size:
        raise bad(f"page_size {echoed!r} is not 1..{page_size} as requested")
    items = doc["items"]
    if not isinstance(items, list) or not all(isinstance(it, dict) for it in items):
        raise bad("items is not a list of objects")
    if len(items) > echoed:
        # page_size bounds the request, not the answer: a record updated during the extraction
        # may be served twice. Completeness is guarded by distinct keys against total_items
        # (batch.extract), so a longer page is data, not a failure.
        log.info("page %d holds %d items, more than its page_size %d", number, len(items), echoed)
    total_items, total_pages = doc["total_items"], doc["total_pages"]
    expected_pages = math.ceil(total_items / max(echoed, len(items)))
    # total_items counts distinct keys; a record served twice (moved between pages during the
    # extraction) takes a second slot, so a server may announce more pages, never fewer.
    if total_pages < expected_pages and not (total_items == 0 and total_pages in (0, 1)):
        raise bad(f"total_pages {total_pages} does not match {total_items} items at {echoed} per page (too few pages)")
    if total_items == 0 and items:
        raise bad("items on a page of an empty result")
    return Page(number=number, items=items, total_items=total_items, total_pages=total_pages)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _retry_after(value: str | None, cap: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), capped; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,12}", value):
        seconds = float(int(value))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:  # HTTP-dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = max(0.0, (when - datetime.now(UTC)).total_seconds())
    return min(seconds, cap)


def _error_detail(resp: requests.Response, endpoint: RestEndpoint, deadline: float) -> str:
    """A short, sanitised reason from a JSON error body (error/message/detail), or ''."""
    try:
        doc = json.loads(_read_body(resp, deadline, endpoint.timeout, 65536))
    except Exception:  # noqa: BLE001 - any unreadable body: no detail
        return ""
    if not isinstance(doc, dict):
        return ""
    for key in ("error", "message", "detail"):
        if isinstance(doc.get(key), str):
            text = _redact(doc[key], endpoint)
            text = "".join(ch if ch.isprintable() else " " for ch in text)[:200]
            return f" ({key}: {text!r})"
    return ""


def _describe(exc: BaseException, endpoint: RestEndpoint) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return _redact(text, endpoint)[:300]


def _redact(text: str, endpoint: RestEndpoint) -> str:
    return text.replace(endpoint.token, "***") if endpoint.token else text


def _safe_url(url: str) -> str:
    """scheme://host[:port]/path of a URL: no credentials, no query, no fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}{port}{parts.path}"[:200] if parts.scheme else parts.path[:200]


def endpoint_from_airflow_connection(conn_id: str, path: str, **kw: Any) -> RestEndpoint:
    """Build an endpoint from an Airflow connection: host, port, schema = http|https, password = token.

    Uses the Airflow 3 task SDK (`airflow.sdk.Connection.get`): inside a task it asks the
    supervisor (and so the metadata DB / secrets backend); in a plain script it reads the
    AIRFLOW_CONN_<ID> environment variables (JSON or URI) and configured secrets backends.
    A host given as a full URL ("https://api.example.vn") is accepted too. `kw` goes to
    RestEndpoint (page_size, timeout, ...).
    """
    from airflow.sdk import Connection  # lazy: keep this module importable without Airflow
    from airflow.sdk.exceptions import AirflowNotFoundException

    env = f"AIRFLOW_CONN_{conn_id.upper()}"
    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        raise SourceError(
            f"connection '{conn_id}' is not defined: add it in Airflow (or set {env}) with "
            "host, port, schema http/https and the bearer token as password"
        ) from None
    host = (conn.host or "").strip()
    scheme = (conn.schema or "").strip().lower() or "http"
    port = conn.port
    if "://" in host:  # host holds a whole URL
        parts = urlsplit(host)
        scheme, host, port = parts.scheme.lower(), parts.hostname or "", port or parts.port
    if not host:
        raise SourceError(f"connection '{conn_id}' has no host; set it (e.g. 127.0.0.1) in Airflow or {env}")
    if scheme not in ("http", "https"):
        raise SourceError(f"connection '{conn_id}': schema must be 'http' or 'https', got {scheme[:20]!r}")
    token = (conn.password or "").strip()
    if not token:
        raise SourceError(f"connection '{conn_id}' has no password; put the source's bearer token there")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    base_url = f"{scheme}://{host}" + (f":{int(port)}" if port else "")
    kw.setdefault("source", conn_id)
    try:
        return RestEndpoint(base_url=base_url, path=path, token=token, **kw)
    except ValueError as exc:
        raise SourceError(f"connection '{conn_id}': {exc}") from None
