"""What an extractor is asked for: a window of one source, as plain values.

Extractors receive a Window, never the orchestrator's batch types, so the extract package
depends on the catalog and on nothing of ingest or orchestration.
"""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Window:
    """start / end: ISO timestamps with offset (start None: from the beginning; both None: a
    snapshot or file source); as_of: the run's as-of date D (YYYY-MM-DD); province_code: the
    province the run reports for."""

    start: str | None
    end: str | None
    as_of: str
    province_code: str
