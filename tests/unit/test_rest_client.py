"""The REST client against a real HTTP server on 127.0.0.1, scripted per test.

Each test queues the answers the server gives, in order, and then checks what the client did
with them (data, retries, errors) and what the server actually received.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from email.utils import format_datetime
from datetime import datetime, timedelta, UTC
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from ioc_pipeline.extract.rest import (
    Page,
    RestEndpoint,
    SourceError,
    _retry_after,
    endpoint_from_airflow_connection,
    iter_pages,
)

TOKEN = "tok-SECRET-7f3a9c"  # must never show up in messages or logs
PATH = "/api/v1/civil-status/records"


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0          # sleep before answering
    drip: float = 0.0           # if > 0: send the body one byte at a time, sleeping in between
    content_length: int | None = None  # override (e.g. to announce more than is sent)


@dataclass
class Seen:
    path: str
    raw_query: str
    query: dict
    headers: dict


class ScriptedServer:
    """ThreadingHTTPServer answering from a queue; records every request it receives."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                with outer.lock:
                    outer.seen.append(Seen(parts.path, parts.query, parse_qs(parts.query), dict(self.headers)))
                    reply = outer.replies.pop(0) if outer.replies else Reply(
                        599, b"script exhausted", {"Content-Type": "text/plain"})
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                length = reply.content_length if reply.content_length is not None else len(reply.body)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                if reply.drip:
                    for i in range(len(reply.body)):
                        self.wfile.write(reply.body[i:i + 1])
                        self.wfile.flush()
                        time.sleep(reply.drip)
                else:
                    self.wfile.write(reply.body)

            def log_message(self, *args) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # the client hung up on a slow answer: expected in these tests

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def queue(self, *replies: Reply) -> None:
        self.replies.extend(replies)


@pytest.fixture
def server():
    srv = ScriptedServer()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


def page(number: int, items: list, total_items: int, total_pages: int, page_size: int = 2, **extra) -> Reply:
    doc = {"items": items, "page": number, "page_size": page_size,
           "total_items": total_items, "total_pages": total_pages, **extra}
    return Reply(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})


def json_reply(status: int, doc, headers: dict | None = None) -> Reply:
    return Reply(status, json.dumps(doc).encode(), {"Content-Type": "application/json", **(headers or {})})


def endpoint(srv: ScriptedServer, **kw) -> RestEndpoint:
    opts = dict(page_size=2, timeout=2.0, max_attempts=3, backoff_base=0.01, backoff_max=0.02, source="sector_test")
    opts.update(kw)
    return RestEndpoint(base_url=srv.base_url, path=PATH, token=TOKEN, **opts)


def rec(i: int) -> dict:
    return {"record_id": f"R{i}", "updated_at": "2026-11-20T10:00:00+07:00"}


# --- happy path -------------------------------------------------------------------------------


def test_pages_in_order_with_bearer_token_and_progress_log(server, caplog):
    server.queue(page(1, [rec(1), rec(2)], 5, 3), page(2, [rec(3), rec(4)], 5, 3), page(3, [rec(5)], 5, 3))
    caplog.set_level(logging.INFO, logger="ioc_pipeline.extract.rest")

    pages = list(iter_pages(endpoint(server), {"as_of": "2026-11-20"}))

    assert [p.number for p in pages] == [1, 2, 3]
    assert [r["record_id"] for p in pages for r in p.items] == ["R1", "R2", "R3", "R4", "R5"]
    assert all((p.total_items, p.total_pages) == (5, 3) for p in pages)
    assert [s.query["page"] for s in server.seen] == [["1"], ["2"], ["3"]]
    assert all(s.query["page_size"] == ["2"] and s.query["as_of"] == ["2026-11-20"] for s in server.seen)
    assert all(s.path == PATH and s.headers["Authorization"] == f"Bearer {TOKEN}" for s in server.seen)
    messages = [r.getMessage() for r in caplog.records]
    assert any("page 2/3 (4/5 items)" in m for m in messages)
    assert any("page 3/3 (5/5 items)" in m for m in messages)
    assert not any("R1" in m for m in messages)  # never item content


def test_offset_plus_arrives_as_plus(server):
    server.queue(page(1, [], 0, 0))
    since, until = "2026-11-19T00:00:00+07:00", "2026-11-21T00:00:00+07:00"

    list(iter_pages(endpoint(server), {"updated_since": since, "updated_until": until}))

    seen = server.seen[0]
    assert seen.query["updated_since"] == [since] and seen.query["updated_until"] == [until]
    assert "%2B07%3A00" in seen.raw_query  # encoded, so the server cannot read it as a space


def test_empty_result_yields_one_empty_page(server, caplog):
    server.queue(page(1, [], 0, 0))
    caplog.set_level(logging.INFO, logger="ioc_pipeline.extract.rest")

    pages = list(iter_pages(endpoint(server), {}))

    assert pages == [Page(number=1, items=[], total_items=0, total_pages=0)]
    assert len(server.seen) == 1
    assert any("page 1/1 (0/0 items)" in r.getMessage() for r in caplog.records)


# --- retries ----------------------------------------------------------------------------------


def test_503_then_ok_is_retried(server):
    server.queue(Reply(503, b"busy"), page(1, [rec(1)], 1, 1))

    pages = list(iter_pages(endpoint(server), {}))

    assert [r["record_id"] for r in pages[0].items] == ["R1"]
    assert len(server.seen) == 2


def test_5xx_until_attempts_run_out(server):
    server.queue(Reply(500), Reply(502), Reply(504))

    with pytest.raises(SourceError) as err:
        list(iter_pages(endpoint(server, max_attempts=3), {}))

    assert "gave up after 3 attempts: HTTP 504" in str(err.value)
    assert PATH in str(err.value) and err.value.status == 504 and err.value.attempts == 3
    assert len(server.seen) == 3


def test_failure_on_a_later_page_raises_after_earlier_pages(server):
    server.queue(page(1, [rec(1), rec(2)], 3, 2), Reply(503), Reply(503))
    got = []

    with pytest.raises(SourceError, match="page 2: gave up after 2 attempts"):
        for p in iter_pages(endpoint(server, max_attempts=2), {}):
            got.append(p.number)

    assert got == [1]


def test_429_waits_retry_after_seconds(server):
    server.queue(json_reply(429, {"error": "slow down"}, {"Retry-After": "1"}), page(1, [rec(1)], 1, 1))

    start = time.monotonic()
    pages = list(iter_pages(endpoint(server, backoff_max=5.0), {}))
    waited = time.monotonic() - start

    assert len(pages[0].items) == 1 and len(server.seen) == 2
    assert 0.95 <= waited < 2.5  # honoured Retry-After, not the 0.01 s backoff


def test_429_counts_as_an_attempt(server):
    server.queue(*[Reply(429, b"", {"Retry-After": "0"}) for _ in range(2)])

    with pytest.raises(SourceError, match="gave up after 2 attempts: HTTP 429"):
        list(iter_pages(endpoint(server, max_attempts=2), {}))
    assert len(server.seen) == 2


def test_429_with_garbage_retry_after_uses_backoff(server):
    server.queue(Reply(429, b"", {"Retry-After": "soon-ish"}), page(1, [], 0, 0))

    start = time.monotonic()
    list(iter_pages(endpoint(server, backoff_max=5.0), {}))

    assert time.monotonic() - start < 0.5  # backoff_base 0.01, not some default wait
    assert len(server.seen) == 2


def test_retry_after_parsing():
    in_3s = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    assert _retry_after("1", 60) == 1.0
    assert _retry_after(" 7 ", 60) == 7.0
    assert _retry_after("3600", 60) == 60  # capped at backoff_max
    assert 1.5 <= _retry_after(in_3s, 60) <= 3.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 60) == 0.0  # in the past: go now
    for garbage in (None, "", "soon", "-5", "1.5", "²", "Wed, 99 Foo 2015"):
        assert _retry_after(garbage, 60) is None, garbage


def test_html_error_page_is_never_data(server):
    html = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    server.queue(Reply(502, html, {"Content-Type": "text/html"}),
                 Reply(200, html, {"Content-Type": "text/html"}),
                 Reply(200, html, {"Content-Type": "text/html"}))

    with pytest.raises(SourceError) as err:
        list(iter_pages(endpoint(server, max_attempts=3), {}))

    assert "HTML, not JSON" in str(err.value)
    assert len(server.seen) == 3


def test_truncated_json_is_retried(server):
    good = page(1, [rec(1), rec(2)], 2, 1)
    cut = good.body[: len(good.body) // 2]
    server.queue(Reply(200, cut, {"Content-Type": "application/json"}),                       # short but complete
                 Reply(200, cut, {"Content-Type": "application/json"}, content_length=len(good.body)),  # cut off
                 good)

    pages = list(iter_pages(endpoint(server), {}))

    assert [r["record_id"] for r in pages[0].items] == ["R1", "R2"]
    assert len(server.seen) == 3


def test_page_longer_than_its_page_size_is_data(server):
    """page_size bounds the request; completeness is checked on distinct keys (batch.extract)."""
    server.queue(page(1, [rec(1), rec(2), rec(3)], 3, 2), page(2, [], 3, 2))

    pages = list(iter_pages(endpoint(server), {}))

    assert [r["record_id"] for r in pages[0].items] == ["R1", "R2", "R3"]
    assert len(server.seen) == 2


@pytest.mark.parametrize("bad_doc, why", [
    ({"items": [], "page": 1}, "missing total_items, total_pages"),
    ({"items": {"R1": {}}, "page": 1, "total_items": 1, "total_pages": 1}, "items is not a list of objects"),
    ({"items": ["R1"], "page": 1, "total_items": 1, "total_pages": 1}, "items is not a list of objects"),
    ({"items": [], "page": 2, "total_items": 0, "total_pages": 0}, "server answered page 2"),
    ({"items": [], "page": 1, "page_size": 5000, "total_items": 0, "total_pages": 0}, "page_size 5000"),
    ({"items": [], "page": 1, "total_items": 7, "total_pages": 1}, "total_pages 1 does not match"),
    ({"items": [], "page": True, "total_items": 0, "total_pages": 0}, "page is not a non-negative integer"),
    ({"items": [], "page": 1, "total_items": -1, "total_pages": 0}, "total_items is not a non-negative"),
    ([{"record_id": "R1"}], "top level is list"),
])
def test_malformed_page_is_a_failed_attempt(server, bad_doc, why):
    server.queue(json_reply(200, bad_doc), page(1, [rec(1)], 1, 1))
    warnings = []
    handler = logging.Handler()
    handler.emit = lambda record: warnings.append(record.getMessage())
    logger = logging.getLogger("ioc_pipeline.extract.rest")
    logger.addHandler(handler)
    try:
        pages = list(iter_pages(endpoint(server), {}))
    finally:
        logger.removeHandler(handler)

    assert [r["record_id"] for r in pages[0].items] == ["R1"]  # the bad answer was not data
    assert len(server.seen) == 2
    assert any(why in w for w in warnings), warnings


def test_nan_is_not_json(server):
    body = b'{"items": [{"x": NaN}], "page": 1, "total_items": 1, "total_pages": 1}'
    server.queue(Reply(200, body), page(1, [rec(1)], 1, 1))

    pages = list(iter_pages(endpoint(server), {}))

    assert pages[0].items == [rec(1)] and len(server.seen) == 2


def test_slow_answer_times_out_and_is_retried(server):
    server.queue(Reply(200, page(1, [], 0, 0).body, delay=1.0), page(1, [rec(1)], 1, 1))

    start = time.monotonic()
    pages = list(iter_pages(endpoint(server, timeout=0.3), {}))

    assert pages[0].items == [rec(1)] and len(server.seen) == 2
    assert time.monotonic() - start < 0.9


def test_dripping_body_is_cut_at_the_total_timeout(server):
    slow = page(1, [rec(1)], 1, 1)
    server.queue(Reply(200, slow.body, drip=0.05), Reply(200, slow.body, drip=0.05))

    start = time.monotonic()
    with pytest.raises(SourceError, match="longer than 0.3 s in total"):
        list(iter_pages(endpoint(server, timeout=0.3, max_attempts=2), {}))
    assert time.monotonic() - start < 1.5  # each byte arrives within the read timeout


def test_connection_refused_is_retried_then_fails():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ep = RestEndpoint(f"http://127.0.0.1:{port}", PATH, TOKEN, max_attempts=2, backoff_base=0.01, backoff_max=0.02)

    with pytest.raises(SourceError, match="gave up after 2 attempts: connection problem") as err:
        list(iter_pages(ep, {}))
    assert err.value.status is None


# --- errors that must not be retried ----------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_refused_token_fails_at_once(server, status, caplog):
    # a hostile server echoing the token must not get it into our message either
    server.queue(json_reply(status, {"error": f"bad token {TOKEN}"}), page(1, [], 0, 0))
    caplog.set_level(logging.DEBUG)

    with pytest.raises(SourceError) as err:
        list(iter_pages(endpoint(server), {}))

    msg = str(err.value)
    assert f"HTTP {status}" in msg and "token of connection 'sector_test' was refused" in msg
    assert err.value.attempts == 1 and len(server.seen) == 1
    assert TOKEN not in msg and TOKEN not in caplog.text


@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_4xx_fail_without_retry_with_sanitised_detail(server, status):
    server.queue(json_reply(status, {"error": f"bad updated_since\n(token {TOKEN})"}), page(1, [], 0, 0))

    with pytest.raises(SourceError) as err:
        list(iter_pages(endpoint(server), {"updated_since": "yesterday"}))

    msg = str(err.value)
    assert f"HTTP {status} request rejected" in msg and "bad updated_since" in msg
    assert TOKEN not in msg and "\n" not in msg
    assert len(server.seen) == 1


def test_redirect_is_not_followed(server):
    server.queue(Reply(302, b"", {"Location": "http://elsewhere.example/steal?x=1"}), page(1, [], 0, 0))

    with pytest.raises(SourceError, match="redirect to 'http://elsewhere.example/steal' not followed"):
        list(iter_pages(endpoint(server), {}))
    assert len(server.seen) == 1


# --- the token stays secret -------------------------------------------------------------------


def test_token_absent_from_logs_errors_and_repr(server, caplog):
    caplog.set_level(logging.DEBUG)  # includes urllib3's own request logging
    server.queue(Reply(503), json_reply(429, {}, {"Retry-After": "0"}), Reply(200, b"<html>oops</html>"),
                 page(1, [rec(1), rec(2)], 3, 2), Reply(500), Reply(500), Reply(500), Reply(500))
    ep = endpoint(server, max_attempts=4)

    with pytest.raises(SourceError) as err:
        list(iter_pages(ep, {}))

    assert len(server.seen) == 8
    assert "page 2: gave up after 4 attempts" in str(err.value)
    assert TOKEN not in str(err.value) and TOKEN not in caplog.text
    assert TOKEN not in repr(ep)


def test_bad_token_is_rejected_without_echo():
    with pytest.raises(ValueError) as err:
        RestEndpoint("http://127.0.0.1:1", PATH, "abc\r\nX-Evil: 1")
    assert "abc" not in str(err.value)


# --- argument checks --------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [dict(page_size=1001), dict(page_size=0), dict(timeout=0), dict(max_attempts=0),
                                dict(backoff_base=5, backoff_max=1)])
def test_endpoint_validation(kw):
    with pytest.raises(ValueError):
        RestEndpoint("http://127.0.0.1:1", PATH, TOKEN, **kw)


def test_base_url_and_path_validation():
    with pytest.raises(ValueError):
        RestEndpoint("ftp://127.0.0.1", PATH, TOKEN)
    with pytest.raises(ValueError):
        RestEndpoint("http://user:pw@127.0.0.1", PATH, TOKEN)
    with pytest.raises(ValueError):
        RestEndpoint("http://127.0.0.1", "api/v1", TOKEN)


def test_params_are_checked_before_any_request(server):
    ep = endpoint(server)
    with pytest.raises(ValueError):
        iter_pages(ep, {"page": "3"})
    with pytest.raises(TypeError):
        iter_pages(ep, {"updated_since": None})
    assert server.seen == []


# --- Airflow connection -----------------------------------------------------------------------


def test_endpoint_from_airflow_connection_env(server, monkeypatch):
    host, port = server.base_url.removeprefix("http://").split(":")
    monkeypatch.setenv("AIRFLOW_CONN_SECTOR_REST_T1", json.dumps(
        {"conn_type": "http", "host": host, "port": int(port), "schema": "http", "password": f" {TOKEN}\n"}))

    ep = endpoint_from_airflow_connection("sector_rest_t1", PATH, page_size=500, timeout=2.0)

    assert (ep.base_url, ep.path, ep.token, ep.page_size, ep.source) == (
        server.base_url, PATH, TOKEN, 500, "sector_rest_t1")
    server.queue(page(1, [rec(1)], 1, 1, page_size=500))
    assert list(iter_pages(ep, {}))[0].items == [rec(1)]
    assert server.seen[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_endpoint_from_airflow_connection_host_as_url(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SECTOR_REST_T2", json.dumps(
        {"conn_type": "http", "host": "https://api.example.vn", "password": TOKEN}))

    ep = endpoint_from_airflow_connection("sector_rest_t2", PATH)

    assert ep.base_url == "https://api.example.vn" and ep.url == "https://api.example.vn" + PATH


def test_endpoint_from_airflow_connection_errors(monkeypatch):
    with pytest.raises(SourceError, match="'sector_rest_missing' is not defined.*AIRFLOW_CONN_SECTOR_REST_MISSING"):
        endpoint_from_airflow_connection("sector_rest_missing", PATH)
    monkeypatch.setenv("AIRFLOW_CONN_SECTOR_REST_T3", json.dumps({"conn_type": "http", "host": "127.0.0.1"}))
    with pytest.raises(SourceError, match="has no password"):
        endpoint_from_airflow_connection("sector_rest_t3", PATH)
    monkeypatch.setenv("AIRFLOW_CONN_SECTOR_REST_T4", json.dumps(
        {"conn_type": "http", "host": "127.0.0.1", "schema": "public", "password": TOKEN}))
    with pytest.raises(SourceError, match="schema must be 'http' or 'https'") as err:
        endpoint_from_airflow_connection("sector_rest_t4", PATH)
    assert TOKEN not in str(err.value)


def test_page_count_comes_from_the_first_page(server, caplog):
    # the source grew during extraction: still pages 1..2 as the first answer said, with a warning;
    # the caller's distinct-key check against total_items decides whether to re-extract
    server.queue(page(1, [rec(1), rec(2)], 4, 2), page(2, [rec(3), rec(4)], 6, 3))
    caplog.set_level(logging.INFO, logger="ioc_pipeline.extract.rest")

    pages = list(iter_pages(endpoint(server), {}))

    assert [p.number for p in pages] == [1, 2] and len(server.seen) == 2
    assert any("totals changed during extraction" in r.getMessage() for r in caplog.records)
