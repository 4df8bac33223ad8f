"""Administrative-unit reference: both schemes and the legacy -> 2025 commune code table.

Why: source records dated before 2025-07-01 carry legacy (63-province) commune codes, later
ones carry 2025 (34-province) codes, and the same five digits can name different units in
the two schemes. The normative reference is the package `vietnamadminunits` 1.0.4
(sources.md, "Administrative units"). Its converter maps addresses by *name keys*; we run
the same join once, over every legacy commune, to get a code-to-code table, and refuse to
produce one if any step of the join is ambiguous (the migration must fail rather than
guess). Nothing is fetched at run time: everything comes from the installed package files.
"""
from __future__ import annotations

import csv
import functools
import importlib.metadata
import importlib.util
import io
import json
import logging
import sqlite3
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

REFERENCE_PACKAGE = "vietnamadminunits"
REFERENCE_VERSION = "vietnamadminunits==1.0.4"

SCHEMES = ("legacy", "2025")
UNIT_COLUMNS = ("scheme", "level", "code", "name", "province_code", "district_code")
MAPPING_COLUMNS = ("legacy_code", "new_code", "rule")


class ReferenceDataError(Exception):
    """The installed reference data is not the normative one or is inconsistent."""


class AmbiguousMappingError(ReferenceDataError):
    """A name-key join of the legacy -> 2025 table resolves to more than one unit."""


@dataclass(frozen=True)
class Unit:
    """One administrative unit. `district_code` is the enclosing district (legacy communes only)."""

    scheme: str  # 'legacy' | '2025'
    level: str  # 'province' | 'district' | 'commune'
    code: str  # text with leading zeros: province 2, district 3, commune 5 digits
    name: str  # NFC
    province_code: str
    district_code: str | None


@dataclass(frozen=True)
class CommuneMapping:
    legacy_code: str
    new_code: str
    rule: str  # 'whole' | 'divided_default'


@dataclass
class AdminReference:
    """Both schemes plus the code table. Shared through a cache: treat as read-only."""

    units: list[Unit]
    mappings: list[CommuneMapping]
    unmapped_legacy: list[str]  # legacy commune codes with no 2025 unit (reported, not fatal)
    # new (2025) province code -> legacy province codes merged into it
    province_sources: dict[str, list[str]] = field(default_factory=dict)
    _by_key: dict = field(init=False, repr=False, compare=False)
    _communes: dict = field(init=False, repr=False, compare=False)
    _to_2025: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_key = {(u.scheme, u.level, u.code): u for u in self.units}
        self._communes = defaultdict(list)
        for u in sorted(self.units, key=lambda u: u.code):
            if u.level == "commune":
                self._communes[(u.scheme, u.province_code)].append(u)
        self._to_2025 = {m.legacy_code: m.new_code for m in self.mappings}

    def communes(self, scheme: str, province_code: str) -> list[Unit]:
        """Communes of a province in one scheme, ordered by code."""
        _check_scheme(scheme)
        return list(self._communes.get((scheme, province_code), []))

    def province(self, scheme: str, code: str) -> Unit:
        """The province `code` of `scheme`; KeyError when the scheme has no such province."""
        _check_scheme(scheme)
        return self._by_key[(scheme, "province", code)]

    def legacy_provinces_of(self, new_province_code: str) -> list[str]:
        """Legacy province codes merged into a 2025 province ('48' -> ['48', '49'])."""
        return list(self.province_sources.get(new_province_code, []))

    def to_2025(self, legacy_commune_code: str) -> str | None:
        """2025 commune code of a legacy commune code, or None when it has none."""
        return self._to_2025.get(legacy_commune_code)

    def counts(self) -> dict[str, int]:
        """Figures for logs and reports."""
        out: dict[str, int] = defaultdict(int)
        for u in self.units:
            out[f"{u.scheme}_{u.level}"] += 1
        for m in self.mappings:
            out[f"map_{m.rule}"] += 1
        out["unmapped_legacy"] = len(self.unmapped_legacy)
        return dict(out)


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {SCHEMES}")


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


def _data_dir() -> Path:
    """The package's data folder, found without importing it (its import loads parsers)."""
    spec = importlib.util.find_spec(REFERENCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ReferenceDataError(f"{REFERENCE_VERSION} is not installed")
    installed = importlib.metadata.version(REFERENCE_PACKAGE)
    if f"{REFERENCE_PACKAGE}=={installed}" != REFERENCE_VERSION:
        # Other versions differ in codes; silently loading one would remap history.
        raise ReferenceDataError(f"installed {REFERENCE_PACKAGE} {installed}, need {REFERENCE_VERSION}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _read_tables(data: Path) -> tuple[list[sqlite3.Row], list[sqlite3.Row]]:
    conn = sqlite3.connect(f"{(data / 'dataset.db').as_uri()}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        legacy = conn.execute(
            "SELECT province, district, ward, provinceCode, districtCode, wardCode,"
            " provinceKey, districtKey, wardKey FROM admin_units_legacy").fetchall()
        current = conn.execute(
            "SELECT province, ward, provinceCode, wardCode, provinceKey, wardKey"
            " FROM admin_units").fetchall()
    finally:
        conn.close()
    return legacy, current


def _add(units: dict, unit: Unit) -> None:
    """Insert a unit; an identical repeat collapses, a conflicting one is ambiguous."""
    key = (unit.scheme, unit.level, unit.code)
    seen = units.get(key)
    if seen is None:
        units[key] = unit
    elif seen != unit:
        raise AmbiguousMappingError(f"{unit.scheme} {unit.level} code {unit.code} names two units: "
                                    f"{seen.name!r} and {unit.name!r}")


def _build_units(legacy, current):
    """Units of both schemes, plus the name-key indexes the converter's join needs.

    Legacy rows are one per commune. Island districts without communes (Bạch Long Vĩ,
    Cồn Cỏ, Hoàng Sa, Lý Sơn, Côn Đảo) come as one row with NULL ward fields: they yield
    their province and district but no commune, so they account for all the repeated
    (NULL) wardCodes; no commune code can name them in legacy records.
    """
    units: dict = {}
    legacy_by_key: dict[str, list[str]] = defaultdict(list)  # "prov_dist_ward" -> codes
    legacy_prov_code: dict[str, set[str]] = defaultdict(set)  # province key -> codes
    islands = []
    for r in legacy:
        p, d = r["provinceCode"], r["districtCode"]
        _add(units, Unit("legacy", "province", p, _nfc(r["province"]), p, None))
        _add(units, Unit("legacy", "district", d, _nfc(r["district"]), p, None))
        legacy_prov_code[r["provinceKey"]].add(p)
        if not r["wardCode"]:
            islands.append(d)
            continue
        _add(units, Unit("legacy", "commune", r["wardCode"], _nfc(r["ward"]), p, d))
        legacy_by_key[f"{r['provinceKey']}_{r['districtKey']}_{r['wardKey']}"].append(r["wardCode"])
    if islands:
        log.info("legacy districts without communes (islands): %s", ", ".join(sorted(islands)))

    new_by_key: dict[tuple[str, str], list[str]] = defaultdict(list)  # (prov key, ward key) -> codes
    new_prov_code: dict[str, set[str]] = defaultdict(set)
    for r in current:
        p = r["provinceCode"]
        _add(units, Unit("2025", "province", p, _nfc(r["province"]), p, None))
        _add(units, Unit("2025", "commune", r["wardCode"], _nfc(r["ward"]), p, None))
        new_prov_code[r["provinceKey"]].add(p)
        # Ward keys are unique only within a province (wardKeyDuplicated): key by both.
        new_by_key[(r["provinceKey"], r["wardKey"])].append(r["wardCode"])
    return units, legacy_by_key, legacy_prov_code, new_by_key, new_prov_code


def _single(values, what: str) -> str | None:
    """The one value of a join step; None when empty; AmbiguousMappingError when several."""
    distinct = sorted(set(values))
    if len(distinct) > 1:
        raise AmbiguousMappingError(f"{what} resolves to several units: {distinct}")
    return distinct[0] if distinct else None


def _province_sources(dict_province, legacy_prov_code, new_prov_code):
    """New province code -> legacy province codes, and legacy province key -> new province key."""
    new_of_old: dict[str, list[str]] = defaultdict(list)
    sources: dict[str, list[str]] = {}
    for new_key, old_keys in dict_province.items():
        new_code = _single(new_prov_code.get(new_key, ()), f"2025 province key {new_key!r}")
        if new_code is None:
            raise ReferenceDataError(f"converter names 2025 province {new_key!r} missing from dataset")
        codes = []
        for old_key in old_keys:
            new_of_old[old_key].append(new_key)
            old_code = _single(legacy_prov_code.get(old_key, ()), f"legacy province key {old_key!r}")
            if old_code is None:
                raise ReferenceDataError(f"converter names legacy province {old_key!r} missing from dataset")
            codes.append(old_code)
        sources[new_code] = sorted(codes)
    new_key_of_old = {k: _single(v, f"legacy province key {k!r} in DICT_PROVINCE") for k, v in new_of_old.items()}
    return sources, new_key_of_old


def _build_mappings(conv, legacy_by_key, legacy_prov_code, new_by_key, new_prov_code):
    """Join legacy communes to 2025 communes the way the package's converter does.

    Converter order: province key via DICT_PROVINCE; then the legacy key in the
    no-divided lists of that new province ('whole'); only if absent there, the divided
    dict's entry marked isDefaultNewWard ('divided_default'). A key listed in both
    follows that order (whole wins) and is logged.
    """
    sources, new_key_of_old = _province_sources(conv["DICT_PROVINCE"], legacy_prov_code, new_prov_code)

    # Every 'whole' claim over all provinces: a legacy key claimed by two new units is ambiguous.
    whole: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for prov_key, wards in conv["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for ward_key, old_keys in wards.items():
            for old_key in old_keys:
                whole[old_key].append((prov_key, ward_key))
    for old_key, claims in whole.items():
        if len(set(claims)) > 1:
            raise AmbiguousMappingError(f"legacy {old_key!r} merged whole into several units: {sorted(set(claims))}")
    divided: dict[str, dict] = {}
    for prov_key, olds in conv["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old_key, parts in olds.items():
            if old_key in divided:
                raise AmbiguousMappingError(f"legacy {old_key!r} divided under two provinces")
            divided[old_key] = (prov_key, parts)

    in_both = sorted(set(whole) & set(divided))
    if in_both:
        log.warning("%d legacy communes both whole and divided; whole wins: %s", len(in_both), in_both)
    stray = sorted(k for k in set(whole) | set(divided) if k not in legacy_by_key and not k.endswith("_"))
    if stray:  # keys ending in "_" are the ward-less island districts
        log.warning("%d converter keys name no legacy commune: %s", len(stray), stray[:20])

    mappings: list[CommuneMapping] = []
    unmapped: list[str] = []
    for old_key, codes in sorted(legacy_by_key.items()):
        legacy_code = _single(codes, f"legacy key {old_key!r}")
        new_prov = new_key_of_old.get(old_key.split("_", 1)[0])
        new_code, rule = None, None
        if old_key in whole and new_prov is not None:
            prov_key, ward_key = whole[old_key][0]
            if prov_key != new_prov:  # the converter would never look there
                raise AmbiguousMappingError(f"legacy {old_key!r} merged into {prov_key!r}, "
                                            f"but its province moved to {new_prov!r}")
            new_code = _single(new_by_key.get((prov_key, ward_key), ()), f"2025 key {prov_key}_{ward_key}")
            rule = "whole"
        elif old_key in divided and new_prov is not None:
            prov_key, parts = divided[old_key]
            if prov_key != new_prov:
                raise AmbiguousMappingError(f"legacy {old_key!r} divided in {prov_key!r}, "
                                            f"but its province moved to {new_prov!r}")
            defaults = [p["newWardKey"] for p in parts if p.get("isDefaultNewWard")]
            ward_key = _single(defaults, f"default new ward of divided legacy {old_key!r}")
            if ward_key is not None:
                new_code = _single(new_by_key.get((prov_key, ward_key), ()), f"2025 key {prov_key}_{ward_key}")
            rule = "divided_default"
        if new_code is None:
            unmapped.append(legacy_code)
        else:
            mappings.append(CommuneMapping(legacy_code, new_code, rule))
    mappings.sort(key=lambda m: m.legacy_code)
    return mappings, sorted(unmapped), sources


@functools.lru_cache(maxsize=1)
def load_reference() -> AdminReference:
    """Load both schemes and the code table from the installed reference package (cached)."""
    data = _data_dir()
    legacy, current = _read_tables(data)
    with open(data / "converter_2025.json", encoding="utf-8") as fh:
        conv = json.load(fh)
    units, legacy_by_key, legacy_prov_code, new_by_key, new_prov_code = _build_units(legacy, current)
    mappings, unmapped, sources = _build_mappings(conv, legacy_by_key, legacy_prov_code, new_by_key, new_prov_code)
    ref = AdminReference(units=sorted(units.values(), key=lambda u: (u.scheme, u.level, u.code)),
                         mappings=mappings, unmapped_legacy=unmapped, province_sources=sources)
    log.info("admin reference %s loaded: %s", REFERENCE_VERSION, ref.counts())
    if unmapped:
        log.warning("%d legacy communes have no 2025 unit: %s", len(unmapped), unmapped[:50])
    return ref


def _copy(cur, table: str, columns: tuple[str, ...], rows) -> None:
    """COPY rows (tuples; None -> NULL) into `table` in CSV form."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        # CSV: an unquoted empty field is NULL; names are never empty (NOT NULL catches it).
        writer.writerow(["" if v is None else v for v in row])
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buf)


def load_into_warehouse(conn) -> dict[str, int]:
    """Replace core.admin_unit and core.commune_map_legacy_2025 in the caller's transaction.

    Does not commit: the migration runner commits together with its own bookkeeping.
    Returns the row counts now in both tables.
    """
    ref = load_reference()
    with conn.cursor() as cur:
        cur.execute("TRUNCATE core.admin_unit, core.commune_map_legacy_2025")
        _copy(cur, "core.admin_unit", UNIT_COLUMNS,
              ((u.scheme, u.level, u.code, u.name, u.province_code, u.district_code) for u in ref.units))
        _copy(cur, "core.commune_map_legacy_2025", MAPPING_COLUMNS,
              ((m.legacy_code, m.new_code, m.rule) for m in ref.mappings))
        cur.execute("SELECT (SELECT count(*) FROM core.admin_unit),"
                    " (SELECT count(*) FROM core.commune_map_legacy_2025)")
        n_units, n_map = cur.fetchone()
    counts = {"admin_unit": n_units, "commune_map_legacy_2025": n_map}
    log.info("admin units loaded into warehouse: %s", counts)
    return counts
