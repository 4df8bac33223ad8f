"""Turning hostile source values into staging rows.

Every contract field is staged as text (typing happens in SQL after validation, so a bad
value becomes a quarantined row, never a crashed load). Personal fields are transformed
here, in memory, before anything reaches the database: a CCCD becomes its keyed hash, its
mask and the parts the suites check; a name becomes a presence marker.
"""
from __future__ import annotations

import json
import re
import unicodedata
from typing import Any
from collections.abc import Callable

from ioc_pipeline.personal_data import cccd, pii
from ioc_pipeline.declaration.catalog import JSON_TYPES, Source

REDACTED = "[redacted]"
CCCD_SUFFIXES = ("hash", "mask", "well_formed", "prefix_known", "birth_year", "sex")
# Health-insurance card number: 2 letters, benefit digit, 2-digit province code, 10 digits.
BHYT_SUFFIXES = ("hash", "mask", "well_formed")
_BHYT = re.compile(r"[A-Z]{2}[0-9]{13}")
# Context columns every staging table carries besides the fields.
CONTEXT_COLUMNS = ("_row_id", "_as_of_date", "_province_code")
# File sources only: which cells could not be read as the contract says (never their values).
CELL_ERRORS = "_cell_errors"
# Every character str.isspace() accepts: a value made of these only is a null (clean_text).
# SQL sources apply the same rule in the source's own SELECT (extract/sql_source.py).
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
              "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")


def clean_text(value: Any) -> str | None:
    """Source value -> NFC text or None. Empty strings are nulls (sources.md)."""
    if value is None:
        return None
    if value.__class__ is str and value.isascii() and "\x00" not in value:  # most values: nothing to repair
        return value if value.strip() else None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value) if isinstance(value, float) else str(value)
    elif isinstance(value, str):
        text = value
    else:  # objects and lists are not contract values: stage their JSON so validation rejects them
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    # PostgreSQL text cannot hold NUL, nor UTF-8 a lone surrogate (JSON "\ud800"): replace
    # them, keep the row (inert) and let validation judge it.
    if not text.isascii():
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    text = unicodedata.normalize("NFC", text.replace("\x00", "\ufffd"))
    return text if text.strip() != "" else None


def typed_json_text(value: Any, declared: str) -> str | None:
    """A JSON value of a field declared boolean/integer: its canonical text when the JSON type is
    right, else its JSON form ('"true"', '1.5'), which the suite's value checks reject."""
    if value is None:
        return None
    if declared == "boolean" and isinstance(value, bool):
        return "true" if value else "false"
    if declared == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return clean_text(json.dumps(value, ensure_ascii=False) if isinstance(value, str) else value)


def staging_columns(source: Source) -> list[str]:
    return list(staging_column_types(source))


def staging_column_types(source: Source) -> dict[str, str]:
    """Staging columns in order, with their SQL types (fields are text, derived parts typed)."""
    types = {"_row_id": "bigint", "_as_of_date": "date", "_province_code": "text"}
    if source.kind == "file":
        types[CELL_ERRORS] = "text"
    for f in source.fields:
        if f.pii == "cccd":
            types.update({
                f"{f.name}_hash": "text", f"{f.name}_mask": "text", f"{f.name}_well_formed": "boolean",
                f"{f.name}_prefix_known": "boolean", f"{f.name}_birth_year": "integer", f"{f.name}_sex": "text",
            })
        elif f.pii == "bhyt":
            types.update({f"{f.name}_hash": "text", f"{f.name}_mask": "text", f"{f.name}_well_formed": "boolean"})
        else:
            types[f.name] = "text"
    return types


def cccd_parts(key: bytes, text: str) -> list:
    """A present CCCD -> its staged parts (CCCD_SUFFIXES order): keyed hash, mask, checks."""
    text = text.strip()
    parts = cccd.parse(text)
    return [pii.keyed_hash(key, text), pii.mask(text), parts.well_formed, parts.prefix_known, parts.birth_year,
            parts.sex]


def bhyt_parts(key: bytes, text: str) -> list:
    """A present health-insurance card number -> its staged parts (BHYT_SUFFIXES order)."""
    text = text.strip()
    return [pii.keyed_hash(key, text), pii.mask(text), bool(_BHYT.fullmatch(text))]


PII_PARTS = {"cccd": (cccd_parts, len(CCCD_SUFFIXES)), "bhyt": (bhyt_parts, len(BHYT_SUFFIXES))}


def row_builder(source: Source, key: bytes, as_of_date: str, province_code: str) -> Callable[[int, dict], list]:
    """A function (row_id, item) -> staging row values, in staging_columns() order."""
    steps: list[Callable[[dict], list]] = []
    for f in source.fields:
        name = f.name
        if f.pii == "cccd":
            def step(item, name=name):
                text = clean_text(item.get(name))
                return [None] * len(CCCD_SUFFIXES) if text is None else cccd_parts(key, text)
        elif f.pii == "bhyt":
            def step(item, name=name):
                text = clean_text(item.get(name))
                return [None] * len(BHYT_SUFFIXES) if text is None else bhyt_parts(key, text)
        elif f.pii == "name":
            def step(item, name=name):
                return [REDACTED if clean_text(item.get(name)) is not None else None]
        elif f.type in JSON_TYPES and source.kind == "rest":
            def step(item, name=name, declared=f.type):
                return [typed_json_text(item.get(name), declared)]
        else:
            def step(item, name=name):
                return [clean_text(item.get(name))]
        steps.append(step)

    file_source = source.kind == "file"

    def build(row_id: int, item: dict) -> list:
        row: list = [row_id, as_of_date, province_code]
        if file_source:
            row.append(item.get(CELL_ERRORS))
        for step in steps:
            row.extend(step(item))
        return row

    return build
