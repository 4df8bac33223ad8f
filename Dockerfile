# The pipeline's image for docker-compose.yaml: Airflow 3.3.2 and the pipeline, installed from the
# runtime lock (requirements.lock: the same pins as `make`, with hashes, without the test tools),
# so the containers run exactly the versions the tests ran. A plain Python base rather than apache/airflow: that image ships
# providers pinned by Airflow's own constraints, which would be re-resolved against ours.
#
# BASE_IMAGE: python:3.11-slim-bookworm from a registry (default), or an image built from Debian's
# packages (docker/debian_images.sh: ioc-debian/python:3.11, docker-compose.debian.yaml).
# PIP_INDEX: empty (PyPI, plus the wheels in docker/wheelhouse if any), or "--no-index" where the
# build reaches no index: then every pinned file must be in docker/wheelhouse, downloaded on the
# host from the same lock (scripts/stack_check.sh does: pip download --require-hashes). Either way
# pip checks every file against the lock's hashes.
ARG BASE_IMAGE=python:3.11-slim-bookworm

# --- the dependencies, in a venv copied into the final image (the wheelhouse stays here) ---
FROM ${BASE_IMAGE} AS deps
ARG PIP_INDEX=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.lock /tmp/requirements.lock
COPY docker/wheelhouse/ /tmp/wheelhouse/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --quiet $PIP_INDEX --find-links /tmp/wheelhouse pip==24.3.1 \
 && /opt/venv/bin/pip install --quiet $PIP_INDEX --find-links /tmp/wheelhouse \
      --require-hashes --no-deps -r /tmp/requirements.lock \
 && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +

# --- the image ---
FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__CORE__DEFAULT_TIMEZONE=Asia/Ho_Chi_Minh \
    PYTHONPATH=/opt/airflow/plugins:/opt/airflow \
    GX_ANALYTICS_ENABLED=false

# uid 50000, gid 0: the official image's convention (host volumes writable by group root)
RUN useradd --uid 50000 --gid 0 --home-dir /opt/airflow --create-home --shell /bin/bash airflow
WORKDIR /opt/airflow

# dependencies first: this layer is rebuilt only when the pins change
COPY --from=deps /opt/venv /opt/venv

COPY dags/ dags/
COPY plugins/ plugins/
COPY include/ include/
COPY simulator/ simulator/
COPY scripts/ scripts/
COPY ioc_web/ ioc_web/
# the named volumes mounted here (logs, home, landing) take these owners when first created
RUN mkdir -p /opt/airflow/logs /opt/airflow/landing /opt/airflow/home \
 && chown -R 50000:0 /opt/airflow && chmod -R g+w /opt/airflow

USER 50000
CMD ["airflow", "version"]
