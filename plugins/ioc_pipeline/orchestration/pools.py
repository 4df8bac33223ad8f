"""The Airflow pools the DAGs use: one per REST source, named after its connection, so calls to a
source are limited whatever runs at once (nightly, manual, backfill): its `extract` task takes a
slot. Created by the launchers (`make run`/`make ui`, scripts/celery_run.py) and by a
deployment's init step, with the deployment's Airflow configuration:

    python -m ioc_pipeline.orchestration.pools

A task whose pool does not exist is never scheduled, so this runs before the scheduler does.
"""
from __future__ import annotations

from ioc_pipeline.declaration import catalog
from ioc_pipeline.declaration.catalog import Source

REST_POOL_SLOTS = 1   # the REST client reads one page at a time; one extraction per source at once


def pool_for(source: Source) -> str | None:
    return source.connection if source.kind == "rest" else None


def wanted() -> dict[str, tuple[int, str]]:
    """{pool name: (slots, description)} from the source catalog."""
    return {pool_for(s): (REST_POOL_SLOTS, f"calls to the {s.code} REST source (connection {s.connection})")
            for s in catalog.load().values() if pool_for(s)}


def ensure() -> list[str]:
    """Create or update the pools in Airflow's metadata database; returns their names."""
    from airflow.models.pool import Pool

    for name, (slots, description) in wanted().items():
        Pool.create_or_update_pool(name=name, slots=slots, description=description, include_deferred=False)
    return sorted(wanted())


if __name__ == "__main__":
    print("pools:", ", ".join(ensure()))
