"""The administrative-unit reference and the legacy -> 2025 code table (no database)."""
from __future__ import annotations

import unicodedata

import pytest

from ioc_pipeline.reference import admin_units
from ioc_pipeline.reference.admin_units import AmbiguousMappingError, load_reference


@pytest.fixture(scope="module")
def ref():
    return load_reference()


def _units(ref, scheme, level):
    return [u for u in ref.units if u.scheme == scheme and u.level == level]


def test_totals(ref):
    assert len(_units(ref, "2025", "province")) == 34
    assert len(_units(ref, "2025", "commune")) == 3321
    assert len(_units(ref, "legacy", "province")) == 63
    assert len(_units(ref, "legacy", "district")) == 696
    # 10,040 legacy rows: 5 are ward-less island districts, the rest distinct communes.
    assert len(_units(ref, "legacy", "commune")) == 10035
    assert admin_units.REFERENCE_VERSION == "vietnamadminunits==1.0.4"


def test_code_formats(ref):
    widths = {"province": 2, "district": 3, "commune": 5}
    for u in ref.units:
        assert len(u.code) == widths[u.level] and u.code.isdigit(), u
        assert len(u.province_code) == 2
        assert (u.district_code is not None) == (u.scheme == "legacy" and u.level == "commune"), u


def test_da_nang(ref):
    assert ref.province("2025", "48").name == "Thành phố Đà Nẵng"
    assert len(ref.communes("2025", "48")) == 94
    assert ref.legacy_provinces_of("48") == ["48", "49"]
    assert ref.province("legacy", "49").name == "Tỉnh Quảng Nam"
    assert ref.legacy_provinces_of("01") == ["01"]
    assert ref.legacy_provinces_of("99") == []


def test_every_legacy_da_nang_quang_nam_commune_maps_into_48(ref):
    new_48 = {u.code for u in ref.communes("2025", "48")}
    legacy = [u.code for p in ("48", "49") for u in ref.communes("legacy", p)]
    assert len(legacy) == 47 + 233
    gaps = [c for c in legacy if ref.to_2025(c) not in new_48]
    assert gaps == []
    # every 2025 commune of 48 is some legacy commune's target, except the Hoàng Sa special
    # zone, which was a legacy district (498) without communes
    assert new_48 - {ref.to_2025(c) for c in legacy} == {"20333"}


def test_domain_example_00004(ref):
    legacy = [u for u in ref.communes("legacy", "01") if u.code == "00004"]
    assert [u.name for u in legacy] == ["Phường Trúc Bạch"]
    current = [u for u in ref.communes("2025", "01") if u.code == "00004"]
    assert [u.name for u in current] == ["Phường Ba Đình"]
    assert ref.to_2025("00004") == "00004"  # Trúc Bạch was merged whole into Ba Đình


def test_divided_commune_maps_to_default(ref):
    # Xã Hòa Liên (20296, Hòa Vang) was divided between Hải Vân and Liên Chiểu; the
    # reference marks Liên Chiểu (20197) as default.
    rules = {m.legacy_code: m for m in ref.mappings}
    assert rules["20296"].rule == "divided_default"
    assert ref.to_2025("20296") == "20197"
    assert [u.name for u in ref.communes("2025", "48") if u.code == "20197"] == ["Phường Liên Chiểu"]
    # Phường Cống Vị (00007, Hà Nội) -> default Phường Ngọc Hà (00008)
    assert rules["00007"] == admin_units.CommuneMapping("00007", "00008", "divided_default")


def test_mapping_counts_and_completeness(ref):
    by_rule = {}
    for m in ref.mappings:
        by_rule[m.rule] = by_rule.get(m.rule, 0) + 1
    assert by_rule == {"whole": 9564, "divided_default": 471}
    assert ref.unmapped_legacy == []
    legacy_codes = {u.code for u in _units(ref, "legacy", "commune")}
    new_codes = {u.code for u in _units(ref, "2025", "commune")}
    assert {m.legacy_code for m in ref.mappings} == legacy_codes
    # 2025 communes no legacy commune maps to: the five island special zones (legacy
    # districts without communes) and Yên Sở, formed only from non-default parts of
    # divided communes.
    orphans = {u.code: u.name for u in _units(ref, "2025", "commune")
               if u.code in new_codes - {m.new_code for m in ref.mappings}}
    assert orphans == {"00340": "Phường Yên Sở", "11948": "Đặc khu Bạch Long Vĩ",
                       "19742": "Đặc khu Cồn Cỏ", "20333": "Đặc khu Hoàng Sa",
                       "21548": "Đặc khu Lý Sơn", "26732": "Đặc khu Côn Đảo"}
    assert ref.to_2025("99999") is None


def test_names_are_nfc_and_trimmed(ref):
    for u in ref.units:
        assert u.name == unicodedata.normalize("NFC", u.name).strip() and u.name, u


def test_unknown_scheme_and_province(ref):
    with pytest.raises(ValueError):
        ref.communes("1990", "48")
    with pytest.raises(KeyError):
        ref.province("2025", "49")  # closed in 2025


def test_agrees_with_package_converter(ref):
    """Our code table gives what the package's own address converter gives, for every commune."""
    from vietnamadminunits import convert_address

    districts = {u.code: u.name for u in _units(ref, "legacy", "district")}
    provinces = {u.code: u.name for u in _units(ref, "legacy", "province")}
    differ = []
    for c in _units(ref, "legacy", "commune"):
        # no street in the address: the converter then uses the default ward, offline
        new = convert_address(f"{c.name}, {districts[c.district_code]}, {provinces[c.province_code]}")
        if new.ward_code != ref.to_2025(c.code):
            differ.append((c.code, new.ward_code, ref.to_2025(c.code)))
    assert differ == []


def _conv(whole=None, divided=None):
    return {
        "DICT_PROVINCE": {"p": ["p"]},
        "DICT_PROVINCE_WARD_NO_DIVIDED": {"p": whole or {}},
        "DICT_PROVINCE_WARD_DIVIDED": {"p": divided or {}},
    }


def _build(conv, new_by_key=None):
    legacy_by_key = {"p_d_a": ["00001"], "p_d_b": ["00002"]}
    new_by_key = new_by_key or {("p", "x"): ["00010"], ("p", "y"): ["00011"]}
    return admin_units._build_mappings(conv, legacy_by_key, {"p": {"01"}}, new_by_key, {"p": {"01"}})


def test_synthetic_join_rules():
    mappings, unmapped, sources = _build(_conv(
        whole={"x": ["p_d_a"]},
        divided={"p_d_b": [{"newWardKey": "x", "isDefaultNewWard": False},
                           {"newWardKey": "y", "isDefaultNewWard": True}]}))
    assert mappings == [admin_units.CommuneMapping("00001", "00010", "whole"),
                        admin_units.CommuneMapping("00002", "00011", "divided_default")]
    assert unmapped == [] and sources == {"01": ["01"]}


def test_whole_wins_over_divided_and_gaps_are_reported():
    mappings, unmapped, _ = _build(_conv(
        whole={"x": ["p_d_a"]},
        divided={"p_d_a": [{"newWardKey": "y", "isDefaultNewWard": True}]}))
    assert mappings == [admin_units.CommuneMapping("00001", "00010", "whole")]
    assert unmapped == ["00002"]


@pytest.mark.parametrize("conv, new_by_key, culprit", [
    # one legacy commune merged whole into two new units
    (_conv(whole={"x": ["p_d_a"], "y": ["p_d_a"]}), None, "p_d_a"),
    # a divided commune with two defaults
    (_conv(divided={"p_d_a": [{"newWardKey": "x", "isDefaultNewWard": True},
                              {"newWardKey": "y", "isDefaultNewWard": True}]}), None, "p_d_a"),
    # a new ward key naming two units in the province
    (_conv(whole={"x": ["p_d_a"]}), {("p", "x"): ["00010", "00012"]}, "00012"),
])
def test_ambiguous_join_fails(conv, new_by_key, culprit):
    with pytest.raises(AmbiguousMappingError, match=culprit):
        _build(conv, new_by_key)


def test_conflicting_duplicate_code_fails():
    units = {}
    admin_units._add(units, admin_units.Unit("legacy", "commune", "00001", "Xã A", "01", "001"))
    admin_units._add(units, admin_units.Unit("legacy", "commune", "00001", "Xã A", "01", "001"))  # repeat: fine
    with pytest.raises(AmbiguousMappingError, match="00001"):
        admin_units._add(units, admin_units.Unit("legacy", "commune", "00001", "Xã B", "01", "001"))
