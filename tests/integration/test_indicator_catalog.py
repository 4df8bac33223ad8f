"""The indicator catalog is data (include/indicators.yaml), upserted by the migrations."""
import pytest

from ioc_pipeline import warehouse
from ioc_pipeline.views import indicator_catalog
from tests.integration.warehouse_helpers import migrated

pytestmark = pytest.mark.integration


def catalog_rows(conn) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM mart.indicator_catalog ORDER BY indicator_code")
        rows = cur.fetchall()
    conn.commit()
    return rows


def test_the_yaml_catalog_holds_exactly_what_the_old_catalog_migrations_inserted(warehouse_db):
    conn = migrated(warehouse_db)
    from_yaml = catalog_rows(conn)
    assert [r[0] for r in from_yaml] == sorted(e["indicator_code"] for e in indicator_catalog.load())
    with warehouse.transaction(conn) as cur:   # the applied history, run again over the upserted rows
        for path in warehouse.migration_files():
            if "_indicator_catalog_" in path.name:
                cur.execute(path.read_text(encoding="utf-8"))
    assert catalog_rows(conn) == from_yaml


def test_a_changed_file_is_upserted_at_the_next_migration_and_only_then(warehouse_db, monkeypatch, tmp_path):
    conn = migrated(warehouse_db)
    assert warehouse.migrate(conn) == []                      # unchanged: nothing to do
    text = indicator_catalog.CATALOG_PATH.read_text(encoding="utf-8")
    changed = tmp_path / "indicators.yaml"
    changed.write_text(text.replace("name_en: School fee payments made without cash",
                                    "name_en: Tuition paid without cash"), encoding="utf-8")
    monkeypatch.setattr(indicator_catalog, "CATALOG_PATH", changed)
    assert warehouse.migrate(conn) == [indicator_catalog.version()]
    names = {r[0]: r[2] for r in catalog_rows(conn)}
    assert names["TUITION_NONCASH_PCT"] == "Tuition paid without cash"


@pytest.mark.parametrize("text, message", [
    ("- {indicator_code: X}", "needs exactly the keys"),
    ("indicator_code: X", "a list of indicators expected"),
])
def test_a_malformed_entry_is_refused_naming_it(text, message):
    with pytest.raises(indicator_catalog.IndicatorCatalogError, match=message):
        indicator_catalog.load(text)
