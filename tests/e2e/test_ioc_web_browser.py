"""The IOC page in a real headless Chromium (Debian's chromium and chromium-driver, through
Selenium) against the warehouse a real pipeline run filled (tests/e2e/conftest.py): the
overview, an indicator page, a commune page and the wall view load without console errors and
show the numbers of ioc.indicator_values. Screenshots go to .data/screenshots/ (not committed).

Skipped, with the reason in `make test`'s summary, where no browser is installed: `.ci/run`
installs chromium and chromium-driver when it runs as root."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg2
import pytest
import requests

from ioc_web import serve
from tests.fixtures import databases
from tests.reliability.support import rows

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("IOC_SCREENSHOT_DIR", REPO / ".data" / "screenshots"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver")


def _browser_missing() -> str | None:
    if not CHROMIUM or not CHROMEDRIVER:
        return ("browser test skipped: no chromium/chromedriver on PATH "
                "(apt-get install chromium chromium-driver; .ci/run does it as root)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "browser test skipped: selenium is not installed (requirements-dev.txt; make test installs it)"
    return None


def parse_number(text: str) -> Decimal | None:
    """'1.234,56 %' (the page's Vietnamese format) -> Decimal; '–' -> None."""
    text = text.replace("%", "").strip()
    return None if text == "–" else Decimal(text.replace(".", "").replace(",", "."))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def page(request):
    """`python -m ioc_web` on a free port, logged in as a fresh login IN ROLE ioc_reader."""
    missing = _browser_missing()
    if missing:
        pytest.skip(missing)
    # only once a browser is there: the views as the session's first night left them, in a copy
    # of our own (the login and its grant are written into it; the run's copies stay untouched)
    first_night = request.getfixturevalue("pipeline_run").step("d1").warehouse
    pg_server = request.getfixturevalue("pg_server")
    admin = databases.copy(pg_server, databases.name_of(first_night), f"ioc_web_e2e_{uuid.uuid4().hex[:8]}")
    role = f"ioc_web_e2e_{uuid.uuid4().hex[:8]}"
    serve.ensure_login(admin, "e2e-page-password", role=role)
    params = psycopg2.extensions.parse_dsn(admin)
    dsn = psycopg2.extensions.make_dsn(**{**params, "user": role, "password": "e2e-page-password"})
    port = free_port()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    log = open(SCREENSHOTS / "web.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "ioc_web", "--port", str(port)], cwd=REPO,
                            env={**os.environ, "IOC_WEB_DSN": dsn}, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None, "the page exited"
            time.sleep(0.2)
        yield {"url": url, "admin": admin}
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
        conn = psycopg2.connect(admin)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'REVOKE ALL ON DATABASE "{params["dbname"]}" FROM "{role}"')
            cur.execute(f'DROP ROLE IF EXISTS "{role}"')
        conn.close()
        databases.drop(pg_server, params["dbname"])


@pytest.fixture(scope="module")
def browser(page):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1920,1080", "--lang=vi-VN"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    # the viewport itself at 1920x1080 (the wall's screen), whatever the window's frame takes
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False})
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def visit(browser, url: str, shot: str) -> None:
    """Load `url`, let the charts draw, save a screenshot; fail on any console error."""
    browser.get_log("browser")   # drop what earlier pages logged
    browser.get(url)
    time.sleep(1.0)
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    browser.save_screenshot(str(SCREENSHOTS / f"{shot}.png"))
    assert errors == [], f"console errors on {url}: {errors}"
    assert browser.execute_script("return document.readyState") == "complete"


def first_text(browser, css: str) -> dict[str, str]:
    """data-indicator -> the element's own first text (the number, without its warning flags)."""
    return browser.execute_script("""
        const out = {};
        document.querySelectorAll(arguments[0]).forEach(el => {
            out[el.getAttribute('data-indicator')] = el.childNodes[0].textContent.trim(); });
        return out;""", css)


def test_pages_in_chromium_show_the_views_numbers(page, browser):
    from selenium.webdriver.common.by import By

    admin, url = page["admin"], page["url"]
    province = dict(rows(admin, "SELECT indicator_code, value FROM ioc.indicator_values WHERE admin_level = 'province'"))
    assert len(province) == 19

    # overview: every indicator's value, and the flag of a source that never fully succeeded
    visit(browser, url + "/", "overview")
    shown = first_text(browser, "#indicators td.value")
    assert {c: parse_number(t) for c, t in shown.items()} == province
    never = {r[0] for r in rows(admin, "SELECT source_code FROM ioc.source_freshness WHERE last_success_at IS NULL")}
    catalog = dict(rows(admin, "SELECT indicator_code, source_codes FROM ioc.indicator_catalog"))
    for code, sources in catalog.items():
        flagged = browser.find_elements(By.CSS_SELECTOR, f'td.value[data-indicator="{code}"] .flag-never')
        assert bool(flagged) == bool(never & set(sources.split(","))), code
    assert browser.find_elements(By.CSS_SELECTOR, "#sources .source"), "the sources' strip"

    # an indicator page: headline, chart drawn, every commune's value in the ranking table
    code = "BHYT_CHIP_ID_VISITS_PCT"
    communes = dict(rows(admin, """SELECT admin_code, value FROM ioc.indicator_values
                                    WHERE indicator_code = %s AND admin_level = 'commune'""", (code,)))
    visit(browser, f"{url}/indicator/{code}", "indicator")
    assert parse_number(first_text(browser, ".headline .value")[code]) == province[code]
    table = browser.execute_script("""
        const out = {};
        document.querySelectorAll('#commune-table tbody tr').forEach(tr => {
            out[tr.getAttribute('data-admin-code')] = tr.querySelector('td.value').textContent.trim(); });
        return out;""")
    assert {c: parse_number(t) for c, t in table.items()} == communes
    assert browser.find_elements(By.CSS_SELECTOR, "#trend-chart canvas, #trend-chart svg")
    assert browser.find_elements(By.CSS_SELECTOR, "#ranking-chart canvas, #ranking-chart svg")
    # the search box filters the ranking by name
    name = rows(admin, "SELECT admin_name FROM ioc.indicator_values WHERE indicator_code = %s AND admin_level = 'commune'"
                       " ORDER BY admin_code LIMIT 1", (code,))[0][0]
    browser.find_element(By.ID, "commune-search").send_keys(name.lower())
    visible = [tr for tr in browser.find_elements(By.CSS_SELECTOR, "#commune-table tbody tr") if tr.is_displayed()]
    assert 1 <= len(visible) < len(communes) and all(name.lower() in tr.get_attribute("data-name") for tr in visible)

    # a commune page: every commune-level indicator of that commune
    admin_code = next(iter(sorted(communes)))
    expected = dict(rows(admin, """SELECT indicator_code, value FROM ioc.indicator_values
                                    WHERE admin_code = %s AND admin_level = 'commune'""", (admin_code,)))
    visit(browser, f"{url}/commune/{admin_code}", "commune")
    assert {c: parse_number(t) for c, t in first_text(browser, "#indicators td.value").items()} == expected

    # the wall view at 1920x1080: the slide shows its indicator's value, then rotates
    visit(browser, f"{url}/wall?rotate=2", "wall")
    first = browser.find_element(By.ID, "slide").get_attribute("data-indicator")
    assert parse_number(browser.find_element(By.ID, "slide-value").text) == province[first]
    assert browser.find_element(By.ID, "as-of").get_attribute("datetime") == str(
        rows(admin, "SELECT max(as_of_date) FROM ioc.indicator_values")[0][0])
    time.sleep(2.5)
    second = browser.find_element(By.ID, "slide").get_attribute("data-indicator")
    assert second != first and parse_number(browser.find_element(By.ID, "slide-value").text) == province[second]
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
