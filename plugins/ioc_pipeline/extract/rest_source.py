"""Glue between the REST client and the batch: one window of an incremental REST resource."""
from __future__ import annotations

from typing import Callable, Iterator

from ..batch import BatchPlan
from ..catalog import Source
from . import rest


def window_fetcher(source: Source, plan: BatchPlan, **endpoint_kw) -> Callable[[], tuple[Iterator[dict], Callable[[], int | None]]]:
    """A fetch() for batch.extract: each call extracts the whole window again from page 1."""
    endpoint = rest.endpoint_from_airflow_connection(source.connection, source.path, source=source.code, **endpoint_kw)
    params = {"updated_until": plan.window_end}
    if plan.window_start:
        params["updated_since"] = plan.window_start

    def fetch():
        state: dict = {"total": None}

        def items() -> Iterator[dict]:
            for page in rest.iter_pages(endpoint, params):
                if state["total"] is None:
                    state["total"] = page.total_items
                yield from page.items

        return items(), lambda: state["total"]

    return fetch
