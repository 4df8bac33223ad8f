# Project 06 IOC pipeline. `make demo` and `make test` work on a fresh machine with only
# Python 3.11 and make: everything else is installed into .venv from the pinned files.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATE ?=
export GX_ANALYTICS_ENABLED := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test test-fast run ui stop lock clean help check-suite docs quarantine

help:
	@echo "make demo              whole nightly pipeline on the embedded defaults, then the indicator table"
	@echo "make test              the whole test suite (unit, integration, contract, end to end)"
	@echo "make test-fast         unit, integration and contract tests only: no real Airflow run, no browser"
	@echo "make run DATE=YYYY-MM-DD   every ingest DAG, then refresh_ioc_views, for DATE"
	@echo "make ui                Airflow UI (airflow standalone) on the same configuration"
	@echo "make check-suite SOURCE=civil_status [SUITE=file.json]   try a suite on a sample of the source"
	@echo "make docs              build the data-quality report (Data Docs) and print where to open it"
	@echo "make quarantine SOURCE=civil_status [BATCH=id]   quarantined rows per batch, with reasons"
	@echo "make stop              stop the simulator and the embedded PostgreSQL"
	@echo "make celery-run [DATE=YYYY-MM-DD]   every DAG once on a local CeleryExecutor (Redis + PostgreSQL on 127.0.0.1)"
	@echo "make bench [BENCH_ARGS=...]   ingest paths against a raw COPY of the same rows (docs/performance.md)"
	@echo "make bench-nightly         the nightly cycle and the view refresh at province scale"

$(STAMP): requirements.txt constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.3.1
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/pipeline.py demo

run: $(STAMP)
	@test -n "$(DATE)" || { echo "usage: make run DATE=YYYY-MM-DD"; exit 2; }
	$(PY) scripts/pipeline.py run $(DATE)

ui: $(STAMP)
	$(PY) scripts/pipeline.py ui

# Try a suite on a sample of the source before committing it (docs/expectations.md).
check-suite: $(STAMP)
	@test -n "$(SOURCE)" || { echo "usage: make check-suite SOURCE=<source_code> [SUITE=path.json]"; exit 2; }
	$(PY) scripts/pipeline.py check-suite $(SOURCE) $(if $(SUITE),--suite $(SUITE))

# Data-quality report from the warehouse (also rebuilt by refresh_ioc_views after each run)
docs: $(STAMP)
	$(PY) scripts/pipeline.py docs

quarantine: $(STAMP)
	@test -n "$(SOURCE)" || { echo "usage: make quarantine SOURCE=<source_code> [BATCH=<batch_id>]"; exit 2; }
	$(PY) scripts/pipeline.py quarantine $(SOURCE) $(if $(BATCH),--batch $(BATCH))

stop: $(STAMP)
	$(PY) scripts/pipeline.py stop

test: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest

# The tests that need no real DAG run (markers in pytest.ini; docs/testing.md)
test-fast: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -m "not e2e and not browser"

# Re-pin after editing requirements.txt: resolves in a scratch venv, writes constraints.txt.
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install --quiet -r requirements.txt
	.lockvenv/bin/pip freeze --exclude-editable > constraints.txt
	rm -rf .lockvenv

clean: stop
	rm -rf .data $(VENV)

# Ingest paths vs raw COPY (bench/README.md, docs/performance.md): by default civil_status, tuition, land and
# health_visits at 100k and 1M rows; e.g. make bench BENCH_ARGS="--source tuition --rows 5000000".
# make bench-nightly: the nightly cycle and the view refresh at province scale (BENCH_ARGS for its options).
.PHONY: bench bench-nightly  # the bench/ folder would otherwise make the target look up to date
bench: $(STAMP)
	$(PY) bench/bench_ingest.py $(BENCH_ARGS)

bench-nightly: $(STAMP)
	$(PY) bench/bench_nightly.py $(BENCH_ARGS)

# Every DAG once on a local CeleryExecutor deployment: api-server, scheduler, dag-processor and a
# Celery worker against Redis and PostgreSQL on 127.0.0.1 (scripts/celery_run.py --help). Not in `make test`.
.PHONY: celery-run
celery-run: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) scripts/celery_run.py $(if $(DATE),--date $(DATE)) $(CELERY_RUN_ARGS)
