"""Suite loading: every expectation of a file must build, or the file is rejected by name."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ioc_pipeline.ingest.validation import SuiteError, load_suite


def write_suite(tmp_path: Path, expectations: list, name: str = "src_test") -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "expectations": expectations, "meta": {}}))
    return path


NOT_NULL = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id_hash"}}


def test_valid_suite_loads_every_expectation_in_file_order(tmp_path):
    items = [
        NOT_NULL,
        {"type": "expect_column_values_to_be_in_set",
         "kwargs": {"column": "sex", "value_set": ["M", "F"]}, "severity": "warning",
         "meta": {"reason": "sex digit"}},
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
        {"type": "unexpected_rows_expectation",
         "kwargs": {"unexpected_rows_query": "SELECT * FROM {batch} WHERE NOT id_ok",
                    "description": "malformed ids"}},
    ]
    suite = load_suite(write_suite(tmp_path, items))
    assert suite.name == "src_test"
    assert len(suite.specs) == len(items) == len(suite.gx_suite.expectations)
    assert [s.index for s in suite.specs] == [0, 1, 2, 3]
    assert [s.type for s in suite.specs] == [i["type"] for i in items]
    assert suite.specs[1].meta == {"reason": "sex digit"}
    assert suite.specs[1].column == "sex"
    assert suite.specs[2].column is None


def test_unknown_type_names_file_index_and_type(tmp_path):
    typo = {"type": "expect_colum_typo", "kwargs": {"column": "a"}}
    path = write_suite(tmp_path, [NOT_NULL, typo])
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    message = str(err.value)
    assert str(path) in message and "#1" in message and "expect_colum_typo" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # missing the required column
        {"column": "id_hash", "colour": "red"},  # unknown kwarg
        {"column": "id_hash", "mostly": "most"},  # wrong type
    ],
)
def test_bad_kwargs_are_rejected_not_skipped(tmp_path, kwargs):
    path = write_suite(tmp_path, [NOT_NULL, NOT_NULL | {"kwargs": kwargs}])
    with pytest.raises(SuiteError, match=r"#1 \(expect_column_values_to_not_be_null\)") as err:
        load_suite(path)
    assert str(path) in str(err.value)


def test_unknown_entry_key_and_bad_severity_are_rejected(tmp_path):
    with pytest.raises(SuiteError, match="#0"):
        load_suite(write_suite(tmp_path, [NOT_NULL | {"sevrity": "warning"}]))
    with pytest.raises(SuiteError, match="severity 'fatal'"):
        load_suite(write_suite(tmp_path, [NOT_NULL | {"severity": "fatal"}]))


def test_invalid_json_and_bad_shapes_raise_suite_error(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": "x", "expectations": [')
    with pytest.raises(SuiteError, match="broken.json"):
        load_suite(broken)
    with pytest.raises(SuiteError, match="missing.json"):
        load_suite(tmp_path / "missing.json")
    with pytest.raises(SuiteError, match="kwargs"):
        load_suite(write_suite(tmp_path, [{"type": "expect_column_values_to_not_be_null"}]))
    no_name = tmp_path / "no_name.json"
    no_name.write_text(json.dumps({"expectations": [NOT_NULL]}))
    with pytest.raises(SuiteError, match="name"):
        load_suite(no_name)


def test_unexpected_rows_query_must_use_batch(tmp_path):
    item = {"type": "unexpected_rows_expectation",
            "kwargs": {"unexpected_rows_query": "SELECT * FROM staging.other WHERE x"}}
    with pytest.raises(SuiteError, match=r"#0 \(unexpected_rows_expectation\).*\{batch\}"):
        load_suite(write_suite(tmp_path, [item]))


def test_severity_default_critical_and_info_counts_as_warning(tmp_path):
    suite = load_suite(write_suite(tmp_path, [
        NOT_NULL,
        NOT_NULL | {"severity": "critical"},
        NOT_NULL | {"severity": "warning"},
        NOT_NULL | {"severity": "info"},
    ]))
    assert [s.severity for s in suite.specs] == ["critical", "critical", "warning", "warning"]
    # GX keeps its own value; only our spec maps info to warning.
    assert suite.gx_suite.expectations[3].severity.value == "info"


def test_row_level_classification_follows_expectation_class(tmp_path):
    items = {
        "expect_column_values_to_not_be_null": ({"column": "a"}, True),
        "expect_column_values_to_be_in_set": ({"column": "a", "value_set": [1]}, True),
        "expect_column_values_to_match_regex": ({"column": "a", "regex": "^x$"}, True),
        "expect_column_pair_values_to_be_equal": ({"column_A": "a", "column_B": "b"}, True),
        "expect_compound_columns_to_be_unique": ({"column_list": ["a", "b"]}, True),
        "unexpected_rows_expectation": ({"unexpected_rows_query": "SELECT * FROM {batch}"}, True),
        "expect_table_row_count_to_be_between": ({"min_value": 1}, False),
        "expect_table_columns_to_match_set": ({"column_set": ["a"]}, False),
        "expect_column_mean_to_be_between": ({"column": "a", "min_value": 0}, False),
        "expect_column_distinct_values_to_be_in_set": ({"column": "a", "value_set": [1]}, False),
    }
    suite = load_suite(write_suite(
        tmp_path, [{"type": t, "kwargs": kw} for t, (kw, _) in items.items()]
    ))
    assert {s.type: s.row_level for s in suite.specs} == {t: rl for t, (_, rl) in items.items()}
