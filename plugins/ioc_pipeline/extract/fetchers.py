"""Which extractor serves which kind of source."""
from __future__ import annotations

from ..batch import BatchFailed, BatchPlan
from ..catalog import Source


def fetcher_for(source: Source, plan: BatchPlan):
    if source.kind == "rest" and source.watermark:
        from .rest_source import window_fetcher

        return window_fetcher(source, plan)
    if source.kind == "rest":  # no watermark: a daily snapshot asked by the run's as-of date
        from .rest_snapshot import snapshot_fetcher

        return snapshot_fetcher(source, plan)
    raise BatchFailed(f"{source.code}: no extractor for kind {source.kind!r} yet")
