"""The indicator catalog as data (include/indicators.yaml), upserted when the migrations run.

An indicator is an entry in the YAML file plus its SQL in include/sql/indicators/, never a
migration. The upsert runs in the migration transaction whenever the file changed (its checksum
is recorded in audit.schema_migration as `indicators:<sha256>`); entries removed from the file
stay in the table, since mart.indicator_history rows refer to them.
"""
from __future__ import annotations

import hashlib
import logging

import yaml

from ioc_pipeline import config

log = logging.getLogger(__name__)

CATALOG_PATH = config.INCLUDE_DIR / "indicators.yaml"
COLUMNS = ("indicator_code", "name_vi", "name_en", "sector", "unit", "kind", "levels", "target_value",
           "source_codes", "definition")


class IndicatorCatalogError(Exception):
    pass


def load(text: str | None = None) -> list[dict]:
    """The entries, each with exactly the catalog's columns (a missing or unknown key fails)."""
    raw = yaml.safe_load(text if text is not None else CATALOG_PATH.read_text(encoding="utf-8")) or []
    if not isinstance(raw, list):
        raise IndicatorCatalogError(f"{CATALOG_PATH.name}: a list of indicators expected")
    seen: set[str] = set()
    for entry in raw:
        code = entry.get("indicator_code") if isinstance(entry, dict) else None
        if not code or set(entry) != set(COLUMNS):
            raise IndicatorCatalogError(
                f"{CATALOG_PATH.name}: indicator {code or entry!r} needs exactly the keys {', '.join(COLUMNS)}")
        if code in seen:
            raise IndicatorCatalogError(f"{CATALOG_PATH.name}: indicator {code} is listed twice")
        seen.add(code)
    return raw


def version() -> str:
    return "indicators:" + hashlib.sha256(CATALOG_PATH.read_bytes()).hexdigest()


def upsert(cur, entries: list[dict] | None = None) -> int:
    """Insert or update every entry of the file in mart.indicator_catalog; returns how many."""
    entries = load() if entries is None else entries
    cols = ", ".join(COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "indicator_code")
    for entry in entries:
        cur.execute(
            f"INSERT INTO mart.indicator_catalog ({cols}) VALUES ({', '.join(['%s'] * len(COLUMNS))})"
            f" ON CONFLICT (indicator_code) DO UPDATE SET {updates}",
            [entry[c] for c in COLUMNS])
    log.info("indicator catalog: %d indicator(s) upserted from %s", len(entries), CATALOG_PATH.name)
    return len(entries)
