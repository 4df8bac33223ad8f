"""What the HTTP server needs to know about one incremental REST resource.

Why a spec instead of code per resource: civil_status, and later public_services, share
the protocol (window on `updated_at`, pages ordered by (updated_at, key), exact duplicates
served twice); only the table, key and fields differ.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from simulator.store import ICT


@dataclass(frozen=True)
class IncrementalResource:
    path: str                 # e.g. /api/v1/civil-status/records
    table: str                # sim.<table>: contract fields + updated_at + sim_* columns
    key: str                  # business key column
    fields: tuple[str, ...]   # contract fields, in contract order (updated_at included)
    ddl: str = ""             # idempotent DDL: lets the server answer on an ungenerated store

    def to_item(self, row: dict) -> dict:
        """One wire item: typed values in contract form, then the row's hostile overrides."""
        item = {}
        for name in self.fields:
            value = row[name]
            if isinstance(value, datetime):
                value = value.astimezone(ICT).isoformat()
            elif isinstance(value, date):
                value = value.isoformat()
            item[name] = value
        override = row.get("sim_wire_override")
        if override:
            item.update(json.loads(override) if isinstance(override, str) else override)
        return item
