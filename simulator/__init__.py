"""Bundled sector-source simulator: serves data exactly in the contracts of sources.md.

Why it exists: the pipeline must be demonstrable and testable without the real sector
systems, and must meet every fault listed in sources.md ("What goes wrong", "REST
protocol"). The simulator keeps the SOURCE side of the data (clear IDs and names included)
in its own PostgreSQL database, schema `sim`, never in the warehouse.

Layout: one generator module per source, named by its source code (`civil_status`,
`population`, `public_services`, `land`, `tuition`, and the file deliveries `health_visits`,
`social_payments`, `project06_tracker`), found from the pipeline's catalog by `sources`;
`store` for the shared database plumbing, `landing` and `file_truth` for
writing files into the landing folder and their ground truth, `people` for names/IDs,
`faults` and `server` for the HTTP side.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# The admin-unit reference lives in the core package (plugins/ioc_pipeline). Airflow and
# pytest put `plugins` on sys.path; `python -m simulator` from the repo root does not.
if importlib.util.find_spec("ioc_pipeline") is None:  # pragma: no cover - depends on launcher
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))
