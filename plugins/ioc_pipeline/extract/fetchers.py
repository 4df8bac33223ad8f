"""Which extractor serves which kind of source."""
from __future__ import annotations

from ioc_pipeline.declaration.catalog import Source
from ioc_pipeline.errors import BatchFailed
from ioc_pipeline.extract.window import Window


def fetcher_for(source: Source, window: Window):
    if source.kind == "rest":
        from ioc_pipeline.extract.rest_source import fetcher

        return fetcher(source, window)
    if source.kind == "sql":
        from ioc_pipeline.extract.sql_source import fetcher as sql_fetcher

        return sql_fetcher(source, window)
    raise BatchFailed(f"{source.code}: no extractor for kind {source.kind!r} yet")
