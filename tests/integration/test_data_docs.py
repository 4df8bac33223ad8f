"""The data-quality site (`make docs`, and refresh_ioc_views' build_data_docs task) from a real warehouse:
real civil_status batches (one committed with hostile keys, one failed), stored reconciliation
warnings, every page linked, every value escaped, no clear personal value anywhere in the site."""
import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import markupsafe
import psycopg2
import pytest

from ioc_pipeline.ingest import batch
from ioc_pipeline.declaration import catalog
from ioc_pipeline.quality import data_docs
from ioc_pipeline.views import reconciliation
from tests.conftest import REPO
from tests.integration import test_reconciliation as recon_fixture
from tests.integration.test_batch_civil_status import rec
from tests.integration.warehouse_helpers import PROVINCE, find_leaks, migrated, run_batch

pytestmark = pytest.mark.integration

D = recon_fixture.D
HOSTILE = '<script>alert("x")</script>'
NAME = "Trần Văn Bình"
NEXT = "2026-11-21T10:00:00+07:00"
GOOD = [rec(f"N{i}", subject_cccd=f"048225{500 + i:06d}", subject_full_name=NAME, updated_at=NEXT) for i in range(100)]
BAD = [rec(HOSTILE, subject_sex="?", updated_at=NEXT),
       rec("B_cccd", subject_cccd="04822500012", subject_full_name=NAME, updated_at=NEXT)]


def clear_values():
    ids = [r["subject_cccd"] for r in recon_fixture.DEATHS + GOOD + BAD if r["subject_cccd"]]
    return ids, [NAME, "Lê Thị Ánh"]


@pytest.fixture
def warehouse(warehouse_db):
    """Batches: D (deaths, committed), D+1 (committed, 2 quarantined), D+2 (failed); reconciliation for D."""
    conn = migrated(warehouse_db)
    recon_fixture.load(conn, warehouse_db)
    reconciliation.reconcile(conn, D, PROVINCE)
    run_batch(conn, warehouse_db, "civil_status", D + dt.timedelta(days=1), [GOOD + BAD], run_id="r2")
    with pytest.raises(batch.BatchFailed):
        run_batch(conn, warehouse_db, "civil_status", D + dt.timedelta(days=2),
                  [[rec(f"X{i}", subject_sex="?", updated_at="2026-11-22T10:00:00+07:00") for i in range(3)]],
                  run_id="r3")
    with conn.cursor() as cur:
        cur.execute("SELECT batch_id, status, as_of_date FROM audit.batch ORDER BY batch_id")
        batches = cur.fetchall()
    conn.commit()
    yield conn, warehouse_db, batches
    conn.close()


def site_texts(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text(encoding="utf-8") for p in root.rglob("*") if p.is_file()}


def test_site_links_every_source_and_batch(warehouse, tmp_path):
    conn, _, batches = warehouse
    index = data_docs.build(conn, tmp_path / "docs")
    root = index.parent
    assert index == (tmp_path / "docs" / "index.html").resolve() and index.is_file()
    pages = site_texts(root)
    home = pages["index.html"]
    for code in catalog.load():
        assert f'href="sources/{code}.html"' in home and f"sources/{code}.html" in pages, code
    civil = pages["sources/civil_status.html"]
    for batch_id, status, _ in batches:
        assert f'href="../batches/{batch_id}.html"' in civil and f"batches/{batch_id}.html" in pages
    (ok1, _, d1), (ok2, _, _), (failed, status, _) = batches
    assert status == "failed"
    # the index shows the latest batch (the failed one) and its error; the trend every day
    assert f'href="batches/{failed}.html">{failed}</a> <span class="bad">failed</span>' in home
    assert "quarantine share 100.0% of 3 keys exceeds the threshold" in home
    assert home.count("<td>civil_status</td>") == 3
    # the committed D+1 batch: 100 loaded, 2 quarantined = 98.04 % valid
    assert "98.04%" in civil
    # every expectation result of a batch, with its reason
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), count(*) FILTER (WHERE success) FROM audit.validation_result WHERE batch_id = %s",
                    (ok2,))
        evaluated, passed = cur.fetchone()
        cur.execute("SELECT reason FROM audit.validation_result WHERE batch_id = %s", (ok2,))
        reasons = [r[0] for r in cur.fetchall()]
    conn.commit()
    page = pages[f"batches/{ok2}.html"]
    # the verdict apart from the expectations: row-level quarantines under the threshold are no FAILs
    assert "Batch verdict: committed: 100 rows loaded, 2 quarantined (1.96% of 102 keys, threshold 5%)" in page
    assert f"<h2>Expectations: {passed} of {evaluated} passed, {evaluated - passed} with quarantined rows" in page
    assert evaluated == 26 and '<tr class="fail"' not in page and "failed</span>" not in page
    assert page.count("<code>expect_") + page.count("<code>unexpected_rows_expectation</code>") == evaluated
    for reason in reasons:
        assert str(markupsafe.escape(reason)) in page
    # per expectation, as GX's Data Docs: kwargs, % unexpected, masked sample keys; a failures-only filter
    assert re.search(r"<dt>value_set</dt><dd><code>[^<]*birth, [^<]*death", page), page
    assert "1 unexpected (0.98% of 102)" in page
    assert "<li><code>B_cccd</code> = <code>048********</code></li>" in page
    assert '<input type="checkbox" id="failures-only"' in page and "#failures-only:checked ~ table tr.pass{display:none}" in page
    assert page.count('<tr class="pass"') == passed
    # quarantine summary: the reasons with counts and the keys, masked failing values
    assert "<h2>Quarantine: 2 rows</h2>" in page
    assert "<td>subject_cccd is not 12 digits</td><td class=\"n\">1</td>" in page
    assert "<code>B_cccd</code>" in page and "<code>048********</code>" in page
    # reconciliation: stored counts on their own page, the index and the batch of that date
    recon = pages["reconciliation.html"]
    assert re.search(r"DEATH_BEFORE_SOCIAL_PAYMENT</code></td><td>20194 [^<]+</td><td class=\"n\">2</td>"
                     r"<td class=\"n\">1</td>", recon), recon
    assert "DEATH_BEFORE_HEALTH_VISIT" in recon and "DEATH_BEFORE_SOCIAL_PAYMENT" in home
    assert "DEATH_BEFORE_SOCIAL_PAYMENT" in pages[f"batches/{ok1}.html"] and d1 == D
    assert "None stored for this date" in page
    # self-contained: no script, nothing fetched; the footer says what the site is
    for name, text in pages.items():
        assert "<script" not in text and "src=" not in text and "<link" not in text and "http" not in text, name
        assert "GX Data Docs or equivalent" in text, name


def test_hostile_values_are_escaped_and_no_clear_id_is_in_the_site(warehouse, tmp_path):
    conn, _, batches = warehouse
    root = data_docs.build(conn, tmp_path / "docs").parent
    pages = site_texts(root)
    page = pages[f"batches/{batches[1][0]}.html"]
    assert f"<code>{markupsafe.escape(HOSTILE)}</code>" in page and "&lt;script&gt;alert(&#34;x&#34;)" in page
    assert not any("<script" in t for t in pages.values())
    ids, names = clear_values()
    assert find_leaks(pages.values(), ids, names) == []
    # the scan would have found one
    assert find_leaks([page + ids[0]], ids, names)


def test_rebuild_replaces_the_whole_site(warehouse, tmp_path, monkeypatch):
    conn, _, batches = warehouse
    monkeypatch.setenv("IOC_DATA_DOCS_DIR", str(tmp_path / "site"))
    assert data_docs.default_dir() == (tmp_path / "site").resolve()
    first = data_docs.build(conn)
    assert (first.parent / f"batches/{batches[0][0]}.html").exists()
    (first.parent / "stale.html").write_text("left from an older build")
    again = data_docs.build(conn, batches_per_source=1)
    assert again == first
    assert not (first.parent / "stale.html").exists()
    assert sorted(p.name for p in (first.parent / "batches").iterdir()) == [f"{batches[-1][0]}.html"]
    assert [p.name for p in tmp_path.iterdir()] == ["site"]           # no temp or old copy left


def test_make_docs_builds_the_site_and_says_where(warehouse, tmp_path):
    _, dsn, _ = warehouse
    p = psycopg2.extensions.parse_dsn(dsn)
    env = {**os.environ, "IOC_DATA_DIR": str(tmp_path / "data"),
           "AIRFLOW_CONN_IOC_WAREHOUSE": json.dumps({"conn_type": "postgres", "host": p["host"],
                                                      "port": int(p.get("port") or 5432), "login": p["user"],
                                                      "schema": p["dbname"]})}
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "pipeline.py"), "docs"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip().splitlines()[-1]
    index = (tmp_path / "data" / "data_docs" / "index.html").resolve()
    assert line == f"Data Docs: file://{index}"
    assert 'href="sources/civil_status.html"' in index.read_text(encoding="utf-8")


def test_refresh_dag_reconciles_then_builds_the_docs_whatever_happened():
    from ioc_pipeline.orchestration import dag_factory

    dag = dag_factory.build_refresh_dag(list(catalog.load().values()))
    refresh, recon, docs = (dag.get_task(t) for t in ("refresh_views", "reconcile", "build_data_docs"))
    assert recon.upstream_task_ids == {"refresh_views"} and docs.upstream_task_ids == {"reconcile"}
    assert recon.trigger_rule == "all_success"          # a failed refresh still fails the run
    # a teardown with no setup runs once everything upstream is done (all_done), and does not
    # decide the run's state: the views' outcome does
    assert docs.is_teardown and docs.trigger_rule == "all_done_setup_success" and not docs.on_failure_fail_dagrun
    assert not any(t.is_setup for t in dag.tasks)


def test_a_failed_batch_shows_its_evidence_and_full_error(warehouse, tmp_path):
    conn, _, batches = warehouse
    failed = batches[-1][0]
    pages = site_texts(data_docs.build(conn, tmp_path / "docs").parent)
    page = pages[f"batches/{failed}.html"]
    assert "Batch verdict: failed: nothing of this batch was published" in page
    with conn.cursor() as cur:
        cur.execute("SELECT error FROM audit.batch WHERE batch_id = %s", (failed,))
        error = cur.fetchone()[0]
    conn.commit()
    assert f"<pre>{markupsafe.escape(error)}</pre>" in page                 # the whole text, never cut
    assert "<h2>Failing rows kept as evidence: 3 rows</h2>" in page
    assert all(f"<td><code>X{i}</code></td>" in page for i in range(3))
    assert '<span class="tag quarantined">rejected</span>' in page
    source_page = pages["sources/civil_status.html"]
    assert f'<tr class="detail failed"><td colspan="10"><span class="bad">error</span><pre>{markupsafe.escape(error)}</pre>' \
        in source_page and '<input type="checkbox" id="failed-only">' in source_page


def test_suite_pages_say_what_each_source_checks_and_why(warehouse, tmp_path):
    conn, _, _ = warehouse
    pages = site_texts(data_docs.build(conn, tmp_path / "docs").parent)
    for code, source in catalog.load().items():
        assert f'href="suites/{code}.html"' in pages["index.html"]
        page = pages[f"suites/{code}.html"]
        suite = json.loads(source.suite_path.read_text(encoding="utf-8"))
        assert page.count("<tr id=\"e") == len(suite["expectations"]), code
        for item in suite["expectations"]:
            assert str(markupsafe.escape(item["meta"]["reason"])) in page, (code, item["meta"]["reason"])
    civil = pages["suites/civil_status.html"]
    assert "quarantines the failing rows" in civil and "<dt>value_set</dt>" in civil
