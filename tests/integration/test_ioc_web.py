"""The IOC page against a real warehouse: 40 days of indicator history (bench/web_history.py:
the real refresh's rows as template) read through a login IN ROLE ioc_reader. Every number a
page shows is checked against the ioc views, read here with SQL of the test's own."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import uuid
from decimal import Decimal

import psycopg2
import pytest
from fastapi.testclient import TestClient

from bench import web_history
from devtools import embedded_pg
from ioc_web import serve
from ioc_web.app import create_app
from ioc_web.db import LoginRefused

pytestmark = pytest.mark.integration

UNTIL = dt.date(2026, 11, 20)
DAYS = 40


def parse_number(text: str, lang: str = "vi") -> Decimal | None:
    """'1.234,56 %' (vi) / '1,234.56 %' (en) -> Decimal; '–' -> None."""
    text = text.replace("%", "").strip()
    if text == "–":
        return None
    text = text.replace(".", "").replace(",", ".") if lang == "vi" else text.replace(",", "")
    return Decimal(text)


def cells(html: str, cls: str) -> dict[str, str]:
    """data-indicator -> text of the <td class="... {cls}" data-indicator=...> cells (flags cut off)."""
    out = {}
    for code, body in re.findall(rf'<td class="[^"]*\b{cls}\b[^"]*" data-indicator="([A-Z0-9_]+)">(.*?)</td>', html, re.DOTALL):
        out[code] = re.sub(r"<span class=\"flag.*", "", body, flags=re.DOTALL).strip()
    return out


@pytest.fixture(scope="module")
def site(pg_server):
    name = f"ioc_web_test_{uuid.uuid4().hex[:8]}"
    embedded_pg.maintenance(pg_server, f'CREATE DATABASE "{name}"')
    admin = " ".join(f"{k}={v}" for k, v in {**pg_server, "dbname": name}.items())
    role = f"ioc_web_login_{uuid.uuid4().hex[:8]}"
    try:
        web_history.fill(admin, UNTIL, DAYS)
        serve.ensure_login(admin, "test-password", role=role)
        login = " ".join(f"{k}={v}" for k, v in {**pg_server, "dbname": name, "user": role,
                                                  "password": "test-password"}.items())
        app = create_app(login)
        with TestClient(app) as client:   # its shutdown closes the page's pool
            yield {"admin": admin, "login": login, "client": client, "role": role}
    finally:
        embedded_pg.maintenance(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        embedded_pg.maintenance(pg_server, f'DROP ROLE IF EXISTS "{role}"')


def query(dsn: str, sql: str, params=()) -> list[tuple]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else []
    conn.close()
    return rows


def test_overview_shows_every_indicator_as_in_the_views(site):
    r = site["client"].get("/")
    assert r.status_code == 200 and "Server-Timing" in r.headers
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    html = r.text
    expected = dict(query(site["admin"], "SELECT indicator_code, value FROM ioc.indicator_values WHERE admin_level = 'province'"))
    assert len(expected) == 19
    shown = {code: parse_number(text) for code, text in cells(html, "value").items()}
    assert shown == expected
    assert f'datetime="{UNTIL}"' in html and "20/11/2026" in html
    # change against 7 and 30 days before, in percentage points
    week = dict(query(site["admin"], """SELECT n.indicator_code, n.value - o.value FROM ioc.indicator_values n
        JOIN ioc.indicator_history o ON o.indicator_code = n.indicator_code AND o.admin_level = 'province'
         AND o.as_of_date = n.as_of_date - 7 WHERE n.admin_level = 'province'"""))
    code, delta = next((c, d) for c, d in week.items() if d and d > 0 and c.endswith("_PCT"))
    row = re.search(rf'<tr class="[^"]*" data-indicator="{code}">(.*?)</tr>', html, re.DOTALL).group(1)
    assert f"+{str(delta).replace('.', ',')} điểm" in row
    # communes meeting the target
    met, total = query(site["admin"], """SELECT count(*) FILTER (WHERE status = 'met'), count(*) FROM ioc.indicator_values
                                           WHERE indicator_code = %s AND admin_level = 'commune'""", (code,))[0]
    assert f">{met}/{total}<" in row
    # share valid as a percent, not the view's fraction
    share = query(site["admin"], "SELECT share_valid FROM ioc.data_quality WHERE source_code = 'civil_status' AND date = %s",
                  (UNTIL,))[0][0]
    source = re.search(r'data-source="civil_status">(.*?)</div>', html, re.DOTALL).group(1)
    assert f"{(share * 100).quantize(Decimal('0.01'))}".replace(".", ",") + " %" in source


def test_a_value_whose_source_never_succeeded_is_flagged(site):
    query(site["admin"], "UPDATE audit.source_run SET status = 'failed' WHERE source_code = 'health_visits'")
    try:
        html = site["client"].get("/").text
        flagged = re.search(r'data-indicator="BHYT_CHIP_ID_VISITS_PCT">[^<]*(<span class="flag flag-never"[^>]*>)', html)
        assert flagged and "health_visits" in flagged.group(1)
        assert 'data-indicator="CIVIL_SYNCED_PCT">' in html
        assert not re.search(r'data-indicator="CIVIL_SYNCED_PCT">[^<]*(<span class="flag [^"]*"[^>]*>)*<span class="flag flag-never', html)
        en = site["client"].get("/?lang=en").text
        assert "has never loaded successfully" in en
    finally:
        query(site["admin"], "UPDATE audit.source_run SET status = 'success' WHERE source_code = 'health_visits'")


def test_indicator_page_ranks_every_commune_and_exports_what_it_shows(site):
    code = "CIVIL_SYNCED_PCT"
    html = site["client"].get(f"/indicator/{code}").text
    rows = query(site["admin"], """SELECT admin_code, admin_name, value, rank_in_province, status FROM ioc.indicator_values
                                    WHERE indicator_code = %s AND admin_level = 'commune'""", (code,))
    assert len(rows) == 94
    shown = re.findall(r'<tr data-name="[^"]*" data-admin-code="(\d{5})">\s*<td class="num">([^<]*)</td>.*?'
                       r'<td class="num value">([^<]*)</td>', html, re.DOTALL)
    assert {c: (int(rank), parse_number(v)) for c, rank, v in shown} == {r[0]: (r[3], r[2]) for r in rows}
    ranks = [int(rank) for _, rank, _ in shown]
    assert ranks == sorted(ranks)   # best first
    met = sum(r[4] == "met" for r in rows)
    assert f"{met} trên 94 xã, phường đạt mục tiêu" in html
    chart = json.loads(re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html, re.DOTALL).group(1))
    assert len(chart["trend"]) == DAYS and chart["target"] == 100.0
    # CSV: the province row and the communes, as in the view
    r = site["client"].get(f"/indicator/{code}/csv")
    assert r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(table) == 95 and table[0]["admin_level"] == "province"
    assert {t["admin_code"]: (t["admin_name"], Decimal(t["value"])) for t in table[1:]} == {r[0]: (r[1], r[2]) for r in rows}


def test_commune_page_shows_every_indicator_of_the_commune_with_its_rank(site):
    code, name = query(site["admin"], "SELECT admin_code, admin_name FROM ioc.indicator_values WHERE admin_level = 'commune' LIMIT 1")[0]
    html = site["client"].get(f"/commune/{code}?lang=en").text
    rows = query(site["admin"], """SELECT indicator_code, value, rank_in_province FROM ioc.indicator_values
                                    WHERE admin_code = %s AND admin_level = 'commune'""", (code,))
    assert len(rows) == 14 and name in html
    assert {c: parse_number(t, "en") for c, t in cells(html, "value").items()} == {r[0]: r[1] for r in rows}
    assert f"{rows[0][2]} of 94" in html


def test_wall_view_and_date_selector(site):
    html = site["client"].get("/wall?rotate=5").text
    data = json.loads(re.search(r'<script type="application/json" id="wall-data">(.*?)</script>', html, re.DOTALL).group(1))
    assert data["rotate"] == 5 and len(data["slides"]) == 19
    assert all(len(s["top"]) == 5 for s in data["slides"] if s["code"] != "P06_TASKS_OVERDUE" and s["met"])
    earlier = UNTIL - dt.timedelta(days=10)
    old = site["client"].get(f"/?date={earlier}").text
    expected = dict(query(site["admin"], """SELECT indicator_code, value FROM ioc.indicator_history
                                             WHERE admin_level = 'province' AND as_of_date = %s""", (earlier,)))
    assert {c: parse_number(t) for c, t in cells(old, "value").items()} == expected
    assert old.count("<option ") == DAYS


def test_bad_input_and_escaped_output(site):
    c = site["client"]
    assert c.get("/indicator/NOT_AN_INDICATOR").status_code == 404
    assert c.get("/indicator/x;drop").status_code == 404
    assert c.get("/commune/48x").status_code == 404
    assert c.get("/?date=2026-13-40").status_code == 422
    code = query(site["admin"], "SELECT min(admin_code) FROM ioc.indicator_values WHERE admin_level = 'commune'")[0][0]
    query(site["admin"], "UPDATE mart.indicator_history SET admin_name = '<script>alert(1)</script>' WHERE admin_code = %s",
          (code,))
    html = c.get(f"/commune/{code}").text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    wall = c.get("/wall").text
    assert "<script>alert" not in wall


def test_the_login_reads_ioc_only_and_the_page_refuses_any_other(site, pg_server):
    with psycopg2.connect(site["login"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM ioc.indicator_values")
        assert cur.fetchone()[0] > 0
    for table in ("mart.indicator_history", "core.admin_unit", "audit.batch", "quarantine.rejected_row"):
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            query(site["login"], f"SELECT 1 FROM {table} LIMIT 1")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        query(site["login"], "DELETE FROM ioc.indicator_catalog")
    # the warehouse owner's login (the pipeline's) is refused by the page
    with pytest.raises(LoginRefused, match="superuser|can use schema"):
        create_app(site["admin"])


def test_reconciliation_warnings_name_the_commune(site):
    code, name = query(site["admin"], "SELECT admin_code, admin_name FROM ioc.indicator_values WHERE admin_level = 'commune'"
                                      " ORDER BY admin_code DESC LIMIT 1")[0]
    query(site["admin"], """INSERT INTO audit.reconciliation_result (as_of_date, check_code, commune_code, rows_flagged,
                            persons_flagged) VALUES (%s, 'death_before_social_payment', %s, 7, 3)""", (UNTIL, code))
    html = site["client"].get("/").text
    row = re.search(r'<table class="communes" id="reconciliation">(.*?)</table>', html, re.DOTALL).group(1)
    assert name in row and code in row and ">7<" in row
