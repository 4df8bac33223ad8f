"""The SQL extractor's pure parts: where the table is, which columns are read, and what a
missing column or a missing table says."""
import dataclasses

import pytest

from ioc_pipeline.declaration import catalog
from ioc_pipeline.ingest.batch import BatchFailed
from ioc_pipeline.extract import sql_source

LAND = catalog.get("land")


def with_table(value):
    return dataclasses.replace(LAND, extra={"table": value})


def test_table_of_reads_schema_and_name():
    assert sql_source.table_of(LAND) == ("public", "land_certificates")
    assert sql_source.table_of(with_table("registry.certs")) == ("registry", "certs")
    assert sql_source.table_of(with_table("certs")) == ("public", "certs")
    for bad in ("", None, "a.b.c", "x; DROP TABLE y", "public.\"q\""):
        with pytest.raises(BatchFailed, match="table: schema.name"):
            sql_source.table_of(with_table(bad))


def test_contract_columns_first_then_extra_ones():
    present = ["remarks"] + list(reversed(LAND.field_names))
    assert sql_source.plan_columns(LAND, present, "public", "t") == LAND.field_names + ["remarks"]


def test_missing_column_is_named():
    present = [f for f in LAND.field_names if f not in ("cleaned", "owner_kind")]
    with pytest.raises(BatchFailed, match="missing from the source table public.t: owner_kind, cleaned"):
        sql_source.plan_columns(LAND, present, "public", "t")


def test_missing_table_is_said():
    with pytest.raises(BatchFailed, match="does not exist"):
        sql_source.plan_columns(LAND, [], "public", "t")
