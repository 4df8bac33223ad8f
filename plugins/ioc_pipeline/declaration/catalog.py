"""The source catalog (include/sources.yaml) as typed, validated objects.

Read at DAG-parse time, so it stays cheap: YAML only, no database, no Airflow variables.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ioc_pipeline import config

CATALOG_PATH = config.INCLUDE_DIR / "sources.yaml"
_IDENT = re.compile(r"[a-z][a-z0-9_]{0,40}")
PII_KINDS = ("cccd", "bhyt", "name")
# Declared JSON types: a REST source must send these as JSON booleans / integers; any other
# JSON value is staged in its JSON form so validation rejects it (a "true" string is a fault).
FIELD_TYPES = ("text", "boolean", "integer")
KINDS = ("rest", "sql", "file")
# How a core row is replaced (ingest/merge.py writes the one statement each generates):
#   newer_updated_at  by a version with updated_at >= its own (incremental sources)
#   latest_batch      by the row of a later batch (snapshots: no updated_at)
#   later_file_date   by a correction of its own file or a file named on or after its own date
MERGE_POLICIES = ("newer_updated_at", "latest_batch", "later_file_date")
FILE_FORMATS = ("csv", "xlsx")
# Named-date placeholders of a file pattern: {facility} a code, {day} YYYYMMDD, {month} YYYYMM.
_PLACEHOLDERS = {"facility": r"(?P<facility>[A-Za-z0-9-]{1,40})", "day": r"(?P<day>[0-9]{8})",
                 "month": r"(?P<month>[0-9]{6})"}


class CatalogError(Exception):
    pass


@dataclass(frozen=True)
class Field:
    name: str
    pii: str | None = None
    type: str = "text"


@dataclass(frozen=True)
class Sheet:
    """One sheet of a workbook source: its columns, and its key column when a workbook carries
    several record kinds (staged as `sheet` + `item_id`)."""

    name: str
    columns: tuple[str, ...]
    id: str | None = None


@dataclass(frozen=True)
class FileSpec:
    """Where a file source's deliveries lie in the landing folder and how to read them."""

    pattern: str
    format: str
    sheets: tuple[Sheet, ...] = ()

    @property
    def regex(self) -> re.Pattern:
        """The pattern as a regex over the path relative to the landing folder."""
        parts = re.split(r"(\{[a-z]+\})", self.pattern)
        return re.compile("".join(_PLACEHOLDERS[p[1:-1]] if p.startswith("{") else re.escape(p) for p in parts))

    @property
    def folder(self) -> str:
        """The pattern's fixed directory part (where discovery looks)."""
        return self.pattern.rsplit("/", 1)[0] if "/" in self.pattern else ""

    @property
    def dated(self) -> bool:
        return "{day}" in self.pattern or "{month}" in self.pattern

    @property
    def multi_sheet(self) -> bool:
        return any(s.id for s in self.sheets)


@dataclass(frozen=True)
class Source:
    code: str
    title: str
    owner: str
    sector: str
    kind: str
    connection: str
    key: tuple[str, ...]
    record_date: str | None
    fields: tuple[Field, ...]
    merge: str
    cadence_days: int = 1
    quarantine_threshold: float = 0.05
    watermark: str | None = None
    path: str | None = None
    files: FileSpec | None = None
    extra: dict = field(default_factory=dict)

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def dag_id(self) -> str:
        return f"ingest_{self.code}"

    @property
    def core_table(self) -> str:
        """One name per thing: the source's core table is named by its code."""
        return f"core.{self.code}"

    @property
    def asset_uri(self) -> str:
        return f"ioc://warehouse/{self.core_table}"

    @property
    def suite_path(self) -> Path:
        return config.EXPECTATIONS_DIR / f"{self.code}.json"

    @property
    def projection_sql(self) -> str:
        """Its SELECT list from staging to core columns (include/sql/...; ingest/merge.py)."""
        return f"sources/{self.code}/projection.sql"


def _parse(code: str, raw: dict) -> Source:
    if not _IDENT.fullmatch(code):
        raise CatalogError(f"source code {code!r} is not lower_snake_case")
    try:
        fields = tuple(
            Field(f) if isinstance(f, str) else Field(f["name"], f.get("pii"), f.get("type", "text"))
            for f in raw["fields"]
        )
        known = {"title", "owner", "sector", "kind", "connection", "key", "record_date", "fields",
                 "merge", "cadence_days", "quarantine_threshold", "watermark", "path", "files"}
        src = Source(
            code=code, title=raw["title"], owner=raw["owner"], sector=raw["sector"], kind=raw["kind"],
            connection=raw["connection"], key=tuple(raw["key"]), record_date=raw.get("record_date"),
            fields=fields, merge=raw["merge"], cadence_days=int(raw.get("cadence_days", 1)),
            quarantine_threshold=float(raw.get("quarantine_threshold", 0.05)),
            watermark=raw.get("watermark"), path=raw.get("path"),
            files=_parse_files(code, raw["files"]) if raw.get("files") is not None else None,
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
    for col in (*src.key, *([src.record_date] if src.record_date else []), *([src.watermark] if src.watermark else [])):
        if col not in names:
            raise CatalogError(f"source {code!r}: {col!r} is not one of its fields")
    if src.kind not in KINDS:
        raise CatalogError(f"source {code!r}: kind must be one of {KINDS}")
    if src.merge not in MERGE_POLICIES:
        raise CatalogError(f"source {code!r}: merge must be one of {MERGE_POLICIES}")
    if (src.kind == "file") != (src.merge == "later_file_date"):
        raise CatalogError(f"source {code!r}: file sources, and only they, merge by later_file_date")
    if src.merge == "newer_updated_at" and "updated_at" not in names:
        raise CatalogError(f"source {code!r}: merge newer_updated_at needs a field updated_at")
    if src.record_date is None and src.kind != "file":
        raise CatalogError(f"source {code!r}: record_date is required (only a file source may have none)")
    if (src.kind == "file") != (src.files is not None):
        raise CatalogError(f"source {code!r}: `files` is required for kind file and only for it")
    if src.files:
        _check_file_fields(src)
    if not 0 <= src.quarantine_threshold <= 1:
        raise CatalogError(f"source {code!r}: quarantine_threshold must be a share between 0 and 1")
    return src


def _parse_files(code: str, raw: dict) -> FileSpec:
    pattern, fmt = str(raw["pattern"]), raw["format"]
    if fmt not in FILE_FORMATS:
        raise ValueError(f"files.format must be one of {FILE_FORMATS}")
    unknown = set(re.findall(r"\{([^}]*)\}", pattern)) - set(_PLACEHOLDERS)
    if unknown or pattern.startswith("/") or ".." in pattern.split("/"):
        raise ValueError(f"files.pattern {pattern!r}: relative path with placeholders {sorted(_PLACEHOLDERS)} only")
    sheets = tuple(Sheet(name, tuple(spec["columns"]), spec.get("id")) for name, spec in (raw.get("sheets") or {}).items())
    if (fmt == "xlsx") != bool(sheets):
        raise ValueError("files.sheets is required for xlsx and only for it")
    return FileSpec(pattern=pattern, format=fmt, sheets=sheets)


def _check_file_fields(src: Source) -> None:
    """Every sheet column must be a field; a multi-sheet workbook stages `sheet` + `item_id`."""
    names = set(src.field_names)
    for sheet in src.files.sheets:
        missing = [c for c in sheet.columns if c not in names]
        if missing or (sheet.id and sheet.id not in sheet.columns):
            raise CatalogError(f"source {src.code!r}: sheet {sheet.name!r} columns {missing or [sheet.id]} are not fields")
    if src.files.multi_sheet and not {"sheet", "item_id"} <= names:
        raise CatalogError(f"source {src.code!r}: a workbook of several sheets stages fields `sheet` and `item_id`")


@functools.lru_cache(maxsize=1)
def load() -> dict[str, Source]:
    raw = yaml.safe_load(CATALOG_PATH.read_text(encoding="utf-8")) or {}
    return {code: _parse(code, entry) for code, entry in raw.items()}


def connections(kind: str) -> list[str]:
    """The connection ids the sources of one kind (rest, sql, file) read, each once, in catalog order."""
    return list(dict.fromkeys(s.connection for s in load().values() if s.kind == kind))


def codes(kind: str) -> list[str]:
    """The codes of the sources of one kind, in catalog order."""
    return [s.code for s in load().values() if s.kind == kind]


def get(code: str) -> Source:
    try:
        return load()[code]
    except KeyError:
        raise CatalogError(f"unknown source {code!r}; known: {', '.join(load())}") from None
