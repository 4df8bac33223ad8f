"""Which sources the simulator plays: every source of the pipeline's catalog
(include/sources.yaml) that has a module simulator/<source_code>.py, in catalog order.

A source module declares `generate(...)` (REST and SQL sources: into the simulator's database;
file sources: `generate(dsn, landing_dir, ...)` into the landing folder), `CLI_OPTIONS` (its
size options of `python -m simulator generate`: flag -> (generate's keyword, default, help)) and,
for a REST source, `RESOURCE` (what server.py serves). A catalog source without a module is
left out: its connection must then be configured.
"""
from __future__ import annotations

import importlib
import importlib.util
import logging
from types import ModuleType

from ioc_pipeline.declaration import catalog

log = logging.getLogger(__name__)


def modules(kind: str | None = None) -> list[tuple[str, str, ModuleType]]:
    """(source code, kind, module) of every simulated source, of one kind or all."""
    found = []
    for source in catalog.load().values():
        if kind is not None and source.kind != kind:
            continue
        name = f"{__package__}.{source.code}"
        if importlib.util.find_spec(name) is None:
            log.warning("no simulator module for source %s (%s.py): configure its connection", source.code, name)
            continue
        found.append((source.code, source.kind, importlib.import_module(name)))
    return found
