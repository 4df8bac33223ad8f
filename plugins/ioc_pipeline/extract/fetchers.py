"""Which extractor serves which kind of source."""
from __future__ import annotations

from ..batch import BatchFailed, BatchPlan
from ..catalog import Source


def fetcher_for(source: Source, plan: BatchPlan):
    if source.kind == "rest":
        from .rest_source import fetcher

        return fetcher(source, plan)
    if source.kind == "sql":
        from .sql_source import fetcher as sql_fetcher

        return sql_fetcher(source, plan)
    raise BatchFailed(f"{source.code}: no extractor for kind {source.kind!r} yet")
