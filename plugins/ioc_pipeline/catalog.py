"""The source catalog (include/sources.yaml) as typed, validated objects.

Read at DAG-parse time, so it stays cheap: YAML only, no database, no Airflow variables.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import config

CATALOG_PATH = config.INCLUDE_DIR / "sources.yaml"
_IDENT = re.compile(r"[a-z][a-z0-9_]{0,40}")
PII_KINDS = ("cccd", "name")
# Declared JSON types: a REST source must send these as JSON booleans / integers; any other
# JSON value is staged in its JSON form so validation rejects it (a "true" string is a fault).
FIELD_TYPES = ("text", "boolean", "integer")
KINDS = ("rest", "sql", "file")


class CatalogError(Exception):
    pass


@dataclass(frozen=True)
class Field:
    name: str
    pii: str | None = None
    type: str = "text"


@dataclass(frozen=True)
class Source:
    code: str
    title: str
    owner: str
    sector: str
    kind: str
    connection: str
    key: tuple[str, ...]
    record_date: str
    fields: tuple[Field, ...]
    core_table: str
    cadence_days: int = 1
    quarantine_threshold: float = 0.05
    watermark: str | None = None
    path: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def dag_id(self) -> str:
        return f"ingest_{self.code}"

    @property
    def asset_uri(self) -> str:
        return f"ioc://warehouse/{self.core_table}"

    @property
    def suite_path(self) -> Path:
        return config.EXPECTATIONS_DIR / f"{self.code}.json"

    @property
    def merge_sql(self) -> str:
        return f"sources/{self.code}/merge.sql"


def _parse(code: str, raw: dict) -> Source:
    if not _IDENT.fullmatch(code):
        raise CatalogError(f"source code {code!r} is not lower_snake_case")
    try:
        fields = tuple(
            Field(f) if isinstance(f, str) else Field(f["name"], f.get("pii"), f.get("type", "text"))
            for f in raw["fields"]
        )
        known = {"title", "owner", "sector", "kind", "connection", "key", "record_date", "fields",
                 "core_table", "cadence_days", "quarantine_threshold", "watermark", "path"}
        src = Source(
            code=code, title=raw["title"], owner=raw["owner"], sector=raw["sector"], kind=raw["kind"],
            connection=raw["connection"], key=tuple(raw["key"]), record_date=raw["record_date"],
            fields=fields, core_table=raw["core_table"], cadence_days=int(raw.get("cadence_days", 1)),
            quarantine_threshold=float(raw.get("quarantine_threshold", 0.05)),
            watermark=raw.get("watermark"), path=raw.get("path"),
            extra={k: v for k, v in raw.items() if k not in known},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"{CATALOG_PATH.name}: source {code!r}: {exc!r}") from None
    names = src.field_names
    for f in src.fields:
        if not _IDENT.fullmatch(f.name):
            raise CatalogError(f"source {code!r}: field {f.name!r} is not lower_snake_case")
        if f.type not in FIELD_TYPES:
            raise CatalogError(f"source {code!r}: field {f.name!r} has unknown type {f.type!r}")
        if f.pii not in (None, *PII_KINDS):
            raise CatalogError(f"source {code!r}: field {f.name!r} has unknown pii kind {f.pii!r}")
    for col in (*src.key, src.record_date, *( [src.watermark] if src.watermark else [])):
        if col not in names:
            raise CatalogError(f"source {code!r}: {col!r} is not one of its fields")
    if src.kind not in KINDS:
        raise CatalogError(f"source {code!r}: kind must be one of {KINDS}")
    if not 0 <= src.quarantine_threshold <= 1:
        raise CatalogError(f"source {code!r}: quarantine_threshold must be a share between 0 and 1")
    return src


@functools.lru_cache(maxsize=1)
def load() -> dict[str, Source]:
    raw = yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8")) or {}
    return {code: _parse(code, entry) for code, entry in raw.items()}


def get(code: str) -> Source:
    try:
        return load()[code]
    except KeyError:
        raise CatalogError(f"unknown source {code!r}; known: {', '.join(load())}") from None
