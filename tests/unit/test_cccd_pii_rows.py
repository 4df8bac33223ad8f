"""Pure functions: CCCD structure, keyed hash and mask, staging-row building, NFC."""
import hashlib
import hmac
import unicodedata

import pytest

from ioc_pipeline.personal_data import cccd, pii
from ioc_pipeline.ingest import rows
from ioc_pipeline.declaration.catalog import get

KEY = b"k" * 32


@pytest.mark.parametrize("value, year, sex", [
    ("001089012345", 1989, "M"),   # G=0: 1900s male
    ("049195000001", 1995, "F"),   # G=1: 1900s female
    ("048203123456", 2003, "M"),   # G=2: 2000s male
    ("096312000000", 2012, "F"),   # G=3: 2000s female
    ("079400000000", 2100, "M"),   # G=4: 2100s
    ("079999000000", 2399, "F"),   # G=9: 2300s female
])
def test_cccd_birth_year_and_sex_from_century_digit(value, year, sex):
    parts = cccd.parse(value)
    assert parts.well_formed and parts.prefix_known
    assert (parts.birth_year, parts.sex, parts.prefix) == (year, sex, value[:3])


@pytest.mark.parametrize("value", ["04919500000", "0491950000012", "04919500000A", "", " 049195000001", "０４９１９５０００００１"])
def test_cccd_malformed(value):
    parts = cccd.parse(value)
    assert not parts.well_formed and parts.birth_year is None and parts.prefix is None


@pytest.mark.parametrize("prefix, known", [("001", True), ("049", True), ("096", True), ("003", False),
                                           ("000", False), ("097", False), ("050", False), ("085", False)])
def test_cccd_prefix_is_one_of_the_63_codes(prefix, known):
    assert cccd.parse(prefix + "195000001").prefix_known is known


def test_63_prefixes():
    assert len(cccd.PROVINCE_PREFIXES) == 63


def test_keyed_hash_is_stable_keyed_and_not_the_id():
    h = pii.keyed_hash(KEY, "049195000001")
    assert h == pii.keyed_hash(KEY, "049195000001")
    assert h != pii.keyed_hash(b"x" * 32, "049195000001")
    assert len(h) == 64 and "049195000001" not in h
    # known HMAC-SHA256 vector (RFC 4231 test case 2)
    assert pii.keyed_hash(b"Jefe", "what do ya want for nothing?") == \
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    # RFC 4231 test case 6: a key longer than the block size is hashed first
    assert pii.keyed_hash(b"\xaa" * 131, "Test Using Larger Than Block-Size Key - Hash Key First") == \
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"


@pytest.mark.parametrize("key", [b"", b"Jefe", b"k" * 32, b"k" * 64, b"k" * 65, bytes(range(256))])
def test_keyed_hash_is_hmac_sha256_and_keyed_hashes_is_it_per_value(key):
    values = ["049195000001", "", "Cafe\u0301", "x" * 200, None]
    expected = [None if v is None else hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in values]
    assert pii.keyed_hashes(key, values) == expected
    assert [pii.keyed_hash(key, v) for v in values[:-1]] == expected[:-1]


def test_mask_keeps_only_the_prefix():
    assert pii.mask("049195000001") == "049*********"
    assert pii.mask("12") == "**"
    assert pii.mask(None) is None


def test_clean_text_nfc_nulls_and_hostile_values():
    nfd = unicodedata.normalize("NFD", "Nguyễn Thị Hoà")
    assert rows.clean_text(nfd) == unicodedata.normalize("NFC", nfd) != nfd
    assert rows.clean_text("") is None and rows.clean_text("   ") is None and rows.clean_text(None) is None
    assert rows.clean_text(True) == "true" and rows.clean_text(12) == "12"
    assert rows.clean_text("a\x00b") == "a\ufffdb"
    assert rows.clean_text({"x": 1}) == '{"x": 1}'


def test_row_builder_never_carries_clear_personal_data():
    source = get("civil_status")
    build = rows.row_builder(source, KEY, "2026-11-20", "48")
    item = {"record_id": "R1", "registration_type": "birth", "registered_on": "2024-01-02", "commune_code": "20194",
            "subject_cccd": "049195000001", "subject_full_name": "Trần Văn Bình", "subject_birth_date": "1995-03-04",
            "subject_sex": "F", "book_digitized": True, "synced_to_ministry": False,
            "updated_at": "2024-01-03T08:00:00+07:00"}
    row = dict(zip(rows.staging_columns(source), build(7, item)))
    assert row["_row_id"] == 7 and row["_as_of_date"] == "2026-11-20" and row["_province_code"] == "48"
    assert "subject_cccd" not in row
    assert row["subject_cccd_hash"] == pii.keyed_hash(KEY, "049195000001")
    assert row["subject_cccd_mask"] == "049*********"
    assert (row["subject_cccd_well_formed"], row["subject_cccd_prefix_known"]) == (True, True)
    assert (row["subject_cccd_birth_year"], row["subject_cccd_sex"]) == (1995, "F")
    assert row["subject_full_name"] == rows.REDACTED
    assert row["book_digitized"] == "true" and row["synced_to_ministry"] == "false"
    flat = repr(row)
    assert "049195000001" not in flat and "Bình" not in flat


def test_row_builder_empty_personal_fields_are_null():
    source = get("civil_status")
    build = rows.row_builder(source, KEY, "2026-11-20", "48")
    row = dict(zip(rows.staging_columns(source), build(1, {"subject_cccd": "", "subject_full_name": None})))
    assert row["subject_cccd_hash"] is None and row["subject_cccd_well_formed"] is None
    assert row["subject_full_name"] is None


def test_json_booleans_must_be_json_booleans():
    assert rows.typed_json_text(True, "boolean") == "true"
    assert rows.typed_json_text("true", "boolean") == '"true"'
    assert rows.typed_json_text(1, "boolean") == "1"
    assert rows.typed_json_text(5, "integer") == "5"
    assert rows.typed_json_text(True, "integer") == "true"
    assert rows.typed_json_text("5", "integer") == '"5"'
    assert rows.typed_json_text(None, "boolean") is None
