"""Which extractor serves which kind of source."""
from __future__ import annotations

from ioc_pipeline.ingest.batch import BatchFailed, BatchPlan
from ioc_pipeline.declaration.catalog import Source


def fetcher_for(source: Source, plan: BatchPlan):
    if source.kind == "rest":
        from ioc_pipeline.extract.rest_source import fetcher

        return fetcher(source, plan)
    if source.kind == "sql":
        from ioc_pipeline.extract.sql_source import fetcher as sql_fetcher

        return sql_fetcher(source, plan)
    raise BatchFailed(f"{source.code}: no extractor for kind {source.kind!r} yet")
