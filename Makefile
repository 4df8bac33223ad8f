# Project 06 IOC pipeline. `make demo` and `make test` work on a fresh machine with only
# Python 3.11 and make: everything else is installed into .venv from the pinned files.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
DATE ?=
export GX_ANALYTICS_ENABLED := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-fast lint run ui stop lock clean help check-suite docs quarantine migrate

help:
	@echo "make demo              whole nightly pipeline on the embedded defaults, then the indicator table"
	@echo "make test              the whole test suite (unit, integration, contract, end to end)"
	@echo "make test-fast         unit, integration and contract tests only: no real Airflow run, no browser"
	@echo "make lint              ruff check (rules in pyproject.toml); .ci/run runs it before the tests"
	@echo "make run DATE=YYYY-MM-DD   every ingest DAG, then refresh_ioc_views, for DATE"
	@echo "make ui [IOC_UI_PORT=8080]   Airflow UI (airflow standalone) on the same configuration"
	@echo "make check-suite SOURCE=civil_status [SUITE=file.json] [ROWS=5000]   lint a suite, then try it on a sample of the source"
	@echo "make migrate           apply the warehouse's migrations as its owner (demo, run and ui do it first)"
	@echo "make docs              build the data-quality report (Data Docs) and print where to open it"
	@echo "make quarantine SOURCE=civil_status [BATCH=id]   quarantined rows per batch, with reasons"
	@echo "make web               the IOC page (read-only, port 8050) on the warehouse, and its URL"
	@echo "make stop              stop everything the commands started (IOC page, UI, simulator, embedded PostgreSQL)"
	@echo "make celery-run [DATE=YYYY-MM-DD]   every DAG once on a local CeleryExecutor (Redis + PostgreSQL on 127.0.0.1)"
	@echo "make stack-check       the compose stack built, started, a night run and compared, torn down (root, ~20 min)"
	@echo "make bench [BENCH_ARGS=...]   ingest paths against a raw COPY of the same rows (docs/performance.md)"
	@echo "make bench-nightly         the nightly cycle and the view refresh at province scale"
	@echo "make bench-web             the IOC page's server time with a year of history"

# The runtime, every package pinned with its hashes (requirements.lock, `make lock`).
$(STAMP): requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.3.1
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/pipeline.py demo

run: $(STAMP)
	@test -n "$(DATE)" || { echo "usage: make run DATE=YYYY-MM-DD"; exit 2; }
	$(PY) scripts/pipeline.py run $(DATE)

ui: $(STAMP)
	$(PY) scripts/pipeline.py ui

# The warehouse's migrations, as the owner (AIRFLOW_CONN_IOC_WAREHOUSE_OWNER, else ioc_warehouse's
# login; embedded: the superuser). The DAGs never migrate: they stop naming what is missing or
# changed (docs/operations.md, "Roles and migrations"). In docker compose: service warehouse-migrate.
migrate: $(STAMP)
	$(PY) scripts/pipeline.py migrate

# Try a suite on a sample of the source before committing it (docs/expectations.md).
check-suite: $(STAMP)
	@test -n "$(SOURCE)" || { echo "usage: make check-suite SOURCE=<source_code> [SUITE=path.json] [ROWS=5000]"; exit 2; }
	$(PY) scripts/pipeline.py check-suite $(SOURCE) $(if $(SUITE),--suite $(SUITE)) $(if $(ROWS),--rows $(ROWS))

# Data-quality report from the warehouse (also rebuilt by refresh_ioc_views after each run)
docs: $(STAMP)
	$(PY) scripts/pipeline.py docs

quarantine: $(STAMP)
	@test -n "$(SOURCE)" || { echo "usage: make quarantine SOURCE=<source_code> [BATCH=<batch_id>]"; exit 2; }
	$(PY) scripts/pipeline.py quarantine $(SOURCE) $(if $(BATCH),--batch $(BATCH))

stop: $(STAMP)
	$(PY) scripts/pipeline.py stop

# Test and lint tools on top (requirements-dev.txt, locked with hashes in requirements-dev.lock); not for make demo.
$(DEV_STAMP): $(STAMP) requirements-dev.lock
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	touch $(DEV_STAMP)

# One pytest worker per core (pytest-xdist); the tests of the shared Airflow run stay together
# on one worker (tests/conftest.py, SERIAL_GROUP; docs/testing.md). PYTEST_ARGS
# adds options, e.g. PYTEST_ARGS="-n 0" for one process, or "--durations=20".
PYTEST_PARALLEL := -n auto --dist loadgroup
test: $(DEV_STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

# The tests that need no real DAG run (markers in pyproject.toml; docs/testing.md)
test-fast: $(DEV_STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest $(PYTEST_PARALLEL) -m "not e2e and not browser" $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

# Re-pin after editing requirements*.txt: pip-tools (its pin in requirements-dev.txt) resolves with
# pip's own index settings and writes every package with the hashes of every file of its version:
# requirements.lock (runtime: the image) and requirements-dev.lock (runtime + tests: `make`).
# Pins already in a lock are kept when still allowed; delete the lock to re-resolve from scratch.
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --quiet pip==24.3.1 $$(grep -E '^pip-tools==' requirements-dev.txt)
	.lockvenv/bin/pip-compile $(LOCK_FLAGS) --output-file requirements.lock requirements.txt
	.lockvenv/bin/pip-compile $(LOCK_FLAGS) --output-file requirements-dev.lock requirements-dev.txt
	rm -rf .lockvenv

clean: stop
	rm -rf .data $(VENV)

# Ingest paths vs COPY and dlt (bench/README.md, docs/performance.md): by default tuition and health_visits at
# 100k, 1M and 5M rows, civil_status at 1M; e.g. make bench BENCH_ARGS="--source tuition --rows 1000000".
# It installs requirements-dev.txt (dlt for the comparison) first.
# make bench-nightly: the nightly cycle and the view refresh at province scale (BENCH_ARGS for its options).
.PHONY: bench bench-nightly bench-web  # the bench/ folder would otherwise make the target look up to date
bench: $(DEV_STAMP)
	$(PY) bench/bench_ingest.py $(BENCH_ARGS)

bench-nightly: $(STAMP)
	$(PY) bench/bench_nightly.py $(BENCH_ARGS)

# The IOC page's server time with a year of history at province scale (docs/performance.md).
bench-web: $(STAMP)
	$(PY) bench/bench_web.py $(BENCH_ARGS)

# Every DAG once on a local CeleryExecutor deployment: api-server, scheduler, dag-processor and a
# Celery worker against Redis and PostgreSQL on 127.0.0.1 (scripts/celery_run.py --help). Not in `make test`.
.PHONY: celery-run
celery-run: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) scripts/celery_run.py $(if $(DATE),--date $(DATE)) $(CELERY_RUN_ARGS)

# The IOC operators' page (ioc_web): read-only, login ioc_dashboard (IN ROLE ioc_reader), on
# http://127.0.0.1:8050/ (IOC_WEB_PORT); `make stop` stops it. README: "The IOC page".
.PHONY: web
web: $(STAMP)
	$(PY) scripts/pipeline.py web

# The production stack proved on this machine (scripts/stack_check.sh): container engine and compose
# installed/started when absent, images built (from Debian's packages when no registry answers), the
# stack up with the simulator, a night through the REST API compared with the simulator's truth, the
# landing watcher, screenshots of the UI, everything torn down. ~20 min on 2 cores; needs root. Not in `make test`.
.PHONY: stack-check
stack-check: $(DEV_STAMP)
	bash scripts/stack_check.sh
