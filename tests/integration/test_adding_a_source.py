"""docs/adding_a_source.md, walked for real: a new source is its declaration files and nothing
else. A copy of include/ gets the files of the walkthrough for a ninth source (catalog entry,
suite, projection, core-table DDL, indicator SQL, indicator catalog entry) and, with only that,
its DAG is built, its merge is generated, a batch loads (a bad row quarantined, an older version
refused) and its indicator reaches the ioc views."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FILES = Path(__file__).with_name("new_source")   # the walkthrough's files for the new source
CODE = "business_registrations"

# Runs in a child: the catalog and every include path are read once per process.
PROBE = r'''
import datetime as dt, json, sys
from ioc_pipeline import warehouse
from ioc_pipeline.declaration import catalog
from ioc_pipeline.ingest import runner
from ioc_pipeline.orchestration import dag_factory
from ioc_pipeline.reference.admin_units import load_reference
from ioc_pipeline.views import refresh

dsn, code = sys.argv[1], sys.argv[2]
dags = dag_factory.build_all()
dag = dags[f"ingest_{code}"]
source = catalog.get(code)
communes = sorted(u.code for u in load_reference().communes("2025", "48"))
D = dt.date(2026, 11, 20)

def item(rid, online, updated, commune=communes[0]):
    return {"registration_id": rid, "commune_code": commune, "registered_on": "2026-11-02",
            "owner_cccd": "048095001234", "online": online, "updated_at": updated}

conn = warehouse.connect(dsn)
warehouse.migrate(conn)
ses = runner.Session(conn, key=b"probe-pii-key-0123456789", province_code="48", sqlalchemy_url=sys.argv[3])
first = [item("B1", True, "2026-11-03T08:00:00+07:00"), item("B2", False, "2026-11-03T08:00:00+07:00"),
         item("B3", True, "2026-11-03T08:00:00+07:00"), item("B4", True, "2026-11-03T08:00:00+07:00", commune="99999")]
_, s1 = runner.run_window(ses, source, "r1", D - dt.timedelta(days=1), lambda: (iter(first), lambda: None))
# the next day: B2 again, newer and online; B1 again with an OLDER updated_at (must not win)
second = [item("B2", True, "2026-11-19T08:00:00+07:00"), item("B1", False, "2026-11-01T08:00:00+07:00")]
_, s2 = runner.run_window(ses, source, "r2", D, lambda: (iter(second), lambda: None))
refresh.refresh(conn, D, "48")
with conn.cursor() as cur:
    cur.execute(f"SELECT registration_id, online FROM {source.core_table} ORDER BY 1")
    core = cur.fetchall()
    cur.execute("SELECT numerator, denominator FROM ioc.indicator_values"
                " WHERE indicator_code = 'BUSINESS_ONLINE_PCT' AND admin_code = '48'")
    indicator = cur.fetchone()
    cur.execute("SELECT name_en FROM ioc.indicator_catalog WHERE indicator_code = 'BUSINESS_ONLINE_PCT'")
    catalog_name = cur.fetchone()
print(json.dumps({
    "tasks": sorted(dag.task_ids), "refresh_on": str(dags["refresh_ioc_views"].timetable.asset_condition),
    "first": [s1["rows_loaded"], s1["rows_quarantined"]], "second": [s2["rows_loaded"], s2["rows_quarantined"]],
    "core": core, "indicator": [float(x) for x in indicator], "catalog_name": catalog_name[0]}))
'''


def test_a_new_source_needs_only_its_declaration_files(empty_db, tmp_path):
    include = tmp_path / "include"
    shutil.copytree(REPO / "include", include)
    added = []
    for path in sorted(p for p in FILES.rglob("*") if p.is_file()):
        relative = path.relative_to(FILES)
        target = include / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative.name in ("sources.yaml", "indicators.yaml"):   # an entry appended to each
            target.write_text(target.read_text(encoding="utf-8") + path.read_text(encoding="utf-8"), encoding="utf-8")
        else:
            target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
        added.append(str(relative))
    # the walkthrough's list (+ the simulator module and this test: 8 files in all)
    assert added == ["expectations/business_registrations.json", "indicators.yaml", "sources.yaml",
                     "sql/indicators/business_registrations.sql",
                     "sql/migrations/999_core_business_registrations.sql",
                     "sql/sources/business_registrations/projection.sql"]
    from tests.integration.warehouse_helpers import sqlalchemy_url

    env = {**os.environ, "IOC_INCLUDE_DIR": str(include), "GX_ANALYTICS_ENABLED": "false",
           "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO)])}
    out = subprocess.run([sys.executable, "-c", PROBE, empty_db, CODE, sqlalchemy_url(empty_db)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["tasks"] == ["begin", "cleanup", "extract", "publish", "validate"]
    assert f"name='core.{CODE}', uri='postgres://ioc-warehouse:5432/ioc/core/{CODE}'" in got["refresh_on"]
    assert got["first"] == [3, 1]                       # B4's commune is no commune: quarantined
    assert got["second"] == [1, 0]                      # B2 replaced; B1's older version refused by the guard
    assert got["core"] == [["B1", True], ["B2", True], ["B3", True]]
    assert got["indicator"] == [3.0, 3.0]
    assert got["catalog_name"] == "Business registrations filed online"
