"""The warehouse the tests get (`warehouse_db`, a clone of one migrated template database per
session) is the warehouse that migrating an empty database gives."""
import pytest

from ioc_pipeline import warehouse

pytestmark = pytest.mark.integration


def test_a_cloned_warehouse_is_a_migrated_one(warehouse_db, empty_db):
    fresh = warehouse.connect(empty_db)
    applied = warehouse.migrate(fresh)
    clone = warehouse.connect(warehouse_db)
    assert warehouse.migrate(clone) == []            # nothing left to apply
    tables = """SELECT table_schema, table_name, count(*) FROM information_schema.columns
                 WHERE table_schema NOT IN ('pg_catalog', 'information_schema') GROUP BY 1, 2 ORDER BY 1, 2"""
    for query in ("SELECT version FROM audit.schema_migration ORDER BY 1", tables,
                  "SELECT count(*), count(DISTINCT code) FROM core.admin_unit"):
        with fresh.cursor() as a, clone.cursor() as b:
            a.execute(query)
            b.execute(query)
            assert a.fetchall() == b.fetchall(), query
    assert len(applied) > 20
    fresh.close()
    clone.close()
