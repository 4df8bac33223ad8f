"""Glue between the REST client and the batch.

Two shapes of REST resource (sources.md):
- incremental (civil_status, public_services): the batch is the window [watermark, D+1 00:00 +07:00)
  asked with updated_since / updated_until;
- snapshot (population): no watermark; the batch is the source's snapshot of the run's as-of
  date D, asked with as_of=D. A re-run of D asks again and the merge replaces that date's rows.
Either way the source's total_items (distinct keys) guards against pages skipped during the
extraction: batch.extract extracts again when fewer keys arrived.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from ioc_pipeline.declaration.catalog import Source
from ioc_pipeline.extract import rest
from ioc_pipeline.extract.window import Window

Fetch = Callable[[], tuple[Iterator[dict], Callable[[], int | None]]]


def window_params(window: Window) -> dict[str, str]:
    params = {"updated_until": window.end}
    if window.start:
        params["updated_since"] = window.start
    return params


def snapshot_params(window: Window) -> dict[str, str]:
    """The query of the snapshot of the window's as-of date (validated: it goes on the wire)."""
    return {"as_of": dt.date.fromisoformat(window.as_of).isoformat()}


def fetcher(source: Source, window: Window, **endpoint_kw) -> Fetch:
    """A fetch() for batch.extract: each call extracts the whole batch again from page 1."""
    endpoint = rest.endpoint_from_airflow_connection(source.connection, source.path, source=source.code, **endpoint_kw)
    params = window_params(window) if source.watermark else snapshot_params(window)

    def fetch():
        state: dict = {"total": None}

        def items() -> Iterator[dict]:
            for page in rest.iter_pages(endpoint, params):
                if state["total"] is None:
                    state["total"] = page.total_items
                yield from page.items

        return items(), lambda: state["total"]

    return fetch
