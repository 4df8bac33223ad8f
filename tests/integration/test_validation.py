"""validate_table against a real PostgreSQL staging table: exact failing row ids, no row values."""
from __future__ import annotations

import dataclasses
import json
import logging

import psycopg2
import pytest
from sqlalchemy.engine import URL

from ioc_pipeline.ingest.validation import ExpectationResult, load_suite, validate_table

pytestmark = pytest.mark.integration

# A value only present in failing rows; it must never come back in a result.
SECRET = "079203001234"

# _row_id, id_hash, id_well_formed, sex, district_code, amount
ROWS = [
    (10, f"h-{SECRET}", True, "M", SECRET, 5),  # bad district, bad hash prefix
    (11, "h-b", True, "F", "D01", 7),
    (12, None, False, "F", "D02", 9),  # null hash, malformed id
    (13, "h-d", True, "X", "D03", 11),  # bad sex
    (14, "h-e", False, None, "D01", 13),  # malformed id, null sex
]


def sqlalchemy_url(dsn: str) -> str:
    """The libpq DSN of a test database as a SQLAlchemy URL (TCP or Unix socket)."""
    p = psycopg2.extensions.parse_dsn(dsn)
    host = p.get("host", "localhost")
    if host.startswith("/"):  # embedded server: GX wants a host, the socket goes in the query
        return URL.create("postgresql+psycopg2", username=p.get("user"), host="localhost",
                          database=p["dbname"], query={"host": host}).render_as_string()
    return URL.create("postgresql+psycopg2", username=p.get("user"), password=p.get("password"),
                      host=host, port=int(p.get("port", 5432)),
                      database=p["dbname"]).render_as_string(hide_password=False)


@pytest.fixture
def staged(empty_db):
    """A small staging.batch_t table; returns the SQLAlchemy URL of its database."""
    with psycopg2.connect(empty_db) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA staging")
        cur.execute(
            "CREATE UNLOGGED TABLE staging.batch_t (_row_id bigint PRIMARY KEY, id_hash text,"
            " id_well_formed boolean, sex text, district_code text, amount int)"
        )
        cur.executemany("INSERT INTO staging.batch_t VALUES (%s,%s,%s,%s,%s,%s)", ROWS)
    conn.close()
    return sqlalchemy_url(empty_db)


def run(tmp_path, url, expectations, table="batch_t") -> list[ExpectationResult]:
    path = tmp_path / "src_test.json"
    path.write_text(json.dumps({"name": "src_test", "expectations": expectations}))
    return validate_table(url, "staging", table, load_suite(path))


def plain_gx_batch(url: str, table: str):
    """GX on its own (not through validate_table): the control and the oracle of tests below."""
    import great_expectations as gx

    return (
        gx.get_context(mode="ephemeral")
        .data_sources.add_postgres("plain", connection_string=url)
        .add_table_asset("t", table_name=table, schema_name="staging")
        .add_batch_definition_whole_table("all")
        .get_batch()
    )


def exp(etype, severity=None, **kwargs) -> dict:
    item = {"type": etype, "kwargs": kwargs}
    if severity:
        item["severity"] = severity
    return item


def urq(where: str, select: str = "*") -> dict:
    return exp("unexpected_rows_expectation",
               unexpected_rows_query=f"SELECT {select} FROM {{batch}} WHERE {where}")


def test_row_level_expectations_return_exact_failing_row_ids(tmp_path, staged):
    results = run(tmp_path, staged, [
        exp("expect_column_values_to_not_be_null", column="id_hash"),
        exp("expect_column_values_to_not_be_null", column="district_code"),
        exp("expect_column_values_to_be_in_set", column="sex", value_set=["M", "F"]),
        exp("expect_column_values_to_match_regex", column="district_code", regex="^D[0-9]{2}$"),
        urq("NOT id_well_formed"),
        urq("amount > 100"),
        exp("expect_column_values_to_be_in_set", "info", column="district_code",
            value_set=["D01", "D02", "D03"]),
    ])
    assert [r.index for r in results] == list(range(7))  # suite order, whatever GX's order
    got = [(r.success, r.failing_row_ids, r.unexpected_count, r.exception) for r in results]
    assert got == [
        (False, [12], 1, None),
        (True, [], 0, None),
        (False, [13], 1, None),  # nulls are not "unexpected" for in_set
        (False, [10], 1, None),
        (False, [12, 14], 2, None),
        (True, [], 0, None),
        (False, [10], 1, None),
    ]
    assert all(r.row_level for r in results)
    assert results[0].element_count == 5
    assert results[4].observed_value == 2  # GX's unexpected row count
    assert results[6].severity == "warning"
    assert all(isinstance(i, int) for r in results for i in r.failing_row_ids)


def test_batch_level_expectations_fail_without_row_ids(tmp_path, staged):
    results = run(tmp_path, staged, [
        exp("expect_table_row_count_to_be_between", min_value=10, max_value=100),
        exp("expect_table_columns_to_match_set", column_set=["_row_id", "id_hash"]),
        exp("expect_column_mean_to_be_between", column="amount", min_value=0, max_value=100),
    ])
    assert [(r.row_level, r.success, r.failing_row_ids) for r in results] == [
        (False, False, []), (False, False, []), (False, True, []),
    ]
    assert results[0].observed_value == 5
    assert sorted(results[1].observed_value) == sorted(
        ["_row_id", "id_hash", "id_well_formed", "sex", "district_code", "amount"]
    )
    assert results[2].observed_value == 9


def test_errors_become_failed_results_with_one_line_exception(tmp_path, staged):
    results = run(tmp_path, staged, [
        urq("no_such_column > 1"),
        urq("amount >>> 1"),
        exp("expect_column_values_to_not_be_null", column="no_such_column"),
        urq("amount > 8", select="sex"),  # runs in GX, but names no row ids
        # a column-map class that GX resolves from table metadata on SQL: no rows to name
        exp("expect_column_values_to_be_of_type", column="district_code", type_="INTEGER"),
        exp("expect_column_values_to_not_be_null", column="id_hash"),  # unaffected neighbour
    ])
    for r in results[:5]:
        assert r.success is False and r.exception and "\n" not in r.exception, r
        assert r.failing_row_ids == []
    assert "no_such_column" in results[0].exception
    assert "no_such_column" in results[2].exception
    assert "_row_id" in results[3].exception
    assert results[4].observed_value == "TEXT"  # a type name, not row data: kept
    assert (results[5].success, results[5].failing_row_ids, results[5].exception) == (
        False, [12], None,
    )


def test_no_row_value_leaks_into_results(tmp_path, staged):
    expectations = [
        exp("expect_column_values_to_be_in_set", column="district_code",
            value_set=["D01", "D02", "D03"]),
        exp("expect_column_values_to_match_regex", column="id_hash", regex="^h-[a-z]$"),
        exp("expect_column_distinct_values_to_be_in_set", column="district_code",
            value_set=["D01"]),
        # ids are unique, so every value ties as "most common" and lands in observed_value
        exp("expect_column_most_common_value_to_be_in_set", column="id_hash", value_set=["x"]),
        exp("expect_column_pair_values_to_be_equal", column_A="district_code", column_B="id_hash"),
        urq("district_code NOT LIKE 'D%'"),
        urq("id_hash::bigint > 0"),  # the cast error quotes the offending (first) value
    ]
    results = run(tmp_path, staged, expectations)
    serialised = json.dumps([dataclasses.asdict(r) for r in results])
    assert SECRET not in serialised
    assert results[0].failing_row_ids == [10] and results[5].failing_row_ids == [10]
    assert results[3].observed_value and set(results[3].observed_value) == {"<redacted>"}
    assert results[6].exception and "<redacted>" in results[6].exception

    # Control: plain GX on the same data does carry the value, so the check above can fail.
    raw = plain_gx_batch(staged, "batch_t").validate(load_suite(tmp_path / "src_test.json").gx_suite, result_format="COMPLETE")
    assert SECRET in json.dumps(raw.to_json_dict())


def test_large_failure_count(tmp_path, empty_db):
    with psycopg2.connect(empty_db) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA staging")
        cur.execute(
            "CREATE UNLOGGED TABLE staging.big AS SELECT g::bigint AS _row_id,"
            " CASE WHEN g % 6 = 0 THEN 'ok' END AS id_hash FROM generate_series(1, 60000) g"
        )
    conn.close()
    results = run(tmp_path, sqlalchemy_url(empty_db), [
        exp("expect_column_values_to_not_be_null", column="id_hash"),
        urq("id_hash IS NULL"),
    ], table="big")
    expected = [g for g in range(1, 60001) if g % 6 != 0]
    assert len(expected) == 50000
    for r in results:
        assert (r.success, r.unexpected_count, r.exception) == (False, 50000, None)
        assert r.failing_row_ids == expected


def test_gx_info_logging_is_silenced(tmp_path, staged, caplog):
    caplog.set_level(logging.DEBUG)
    run(tmp_path, staged, [exp("expect_column_values_to_not_be_null", column="id_hash")])
    noisy = [r for r in caplog.records
             if r.name.startswith("great_expectations") and r.levelno < logging.WARNING]
    assert noisy == []
    assert logging.getLogger("great_expectations").getEffectiveLevel() == logging.WARNING


def test_failing_rows_are_exactly_those_gx_lists_itself(tmp_path, empty_db):
    """The lean pass names a map expectation's rows by GX's own query for them; the oracle is
    GX's COMPLETE result on the same table, which lists them itself. A row_condition, which
    GX's query string leaves out, must not widen the set (those are named by COMPLETE)."""
    with psycopg2.connect(empty_db) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA staging")
        cur.execute(
            "CREATE UNLOGGED TABLE staging.wide AS SELECT g::bigint AS _row_id,"
            " CASE WHEN g % 7 = 0 THEN NULL ELSE 'K' || (g % 40) END AS code,"   # repeats, nulls
            " CASE WHEN g % 11 = 0 THEN 'X' ELSE 'M' END AS sex,"
            " g % 13 AS a, g % 17 AS b, 'D' || lpad((g % 120)::text, 2, '0') AS district_code"
            " FROM generate_series(1, 3000) g"
        )
        cur.execute("INSERT INTO staging.wide VALUES (5001, 'UNIQUE-1', 'F', 1, 1, 'D01')")
    conn.close()
    url = sqlalchemy_url(empty_db)
    expectations = [
        exp("expect_column_values_to_not_be_null", column="code"),
        exp("expect_column_values_to_be_unique", column="code"),
        exp("expect_column_values_to_be_in_set", column="sex", value_set=["M", "F"]),
        exp("expect_column_values_to_match_regex", column="district_code", regex="^D[0-9]{2}$"),
        exp("expect_column_values_to_be_between", column="a", min_value=0, max_value=9),
        exp("expect_column_values_to_not_be_null", column="code", mostly=0.5),
        exp("expect_column_pair_values_to_be_equal", column_A="a", column_B="b"),
        exp("expect_select_column_values_to_be_unique_within_record", column_list=["a", "b"]),
        exp("expect_column_values_to_be_in_set", column="sex", value_set=["M"],
            row_condition='col("b") > 8', condition_parser="great_expectations"),
        exp("expect_column_values_to_not_be_null", column="sex"),  # nothing unexpected
    ]
    results = run(tmp_path, url, expectations, table="wide")

    suite = load_suite(tmp_path / "src_test.json").gx_suite
    oracle = plain_gx_batch(url, "wide").validate(suite, result_format={
        "result_format": "COMPLETE", "unexpected_index_column_names": ["_row_id"],
        "partial_unexpected_count": 10**6})
    by_id = {evr.expectation_config.id: evr for evr in oracle.results}
    for r, expectation in zip(results, suite.expectations):
        evr = by_id[expectation.id]
        listed = sorted(
            (e["_row_id"] for e in evr.result["unexpected_index_list"]), key=int
        ) if evr.result.get("unexpected_index_list") else []
        assert r.exception is None, r
        assert (r.success, r.unexpected_count, r.failing_row_ids) == (
            evr.success, evr.result["unexpected_count"], [int(i) for i in listed]), r.type
    assert results[1].unexpected_count > 2000 and results[8].failing_row_ids  # the checks bite
    assert len(results[8].failing_row_ids) < len(results[2].failing_row_ids)
