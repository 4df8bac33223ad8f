# The pipeline's image for docker-compose.yaml: Airflow 3.3.2 and the pipeline, installed from the
# same pinned files as `make` (requirements.txt + constraints.txt), so the containers run exactly
# the versions the tests ran. A plain Python base rather than apache/airflow: that image ships
# providers pinned by Airflow's own constraints, which would be re-resolved against ours.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
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
COPY requirements.txt constraints.txt ./
RUN pip install pip==24.3.1 \
 && pip install -r requirements.txt -c constraints.txt

COPY dags/ dags/
COPY plugins/ plugins/
COPY include/ include/
COPY simulator/ simulator/
COPY scripts/ scripts/
COPY ioc_web/ ioc_web/
RUN mkdir -p /opt/airflow/logs /opt/airflow/landing && chown -R 50000:0 /opt/airflow && chmod -R g+w /opt/airflow

USER 50000
CMD ["airflow", "version"]
