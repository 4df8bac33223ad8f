# Debian bookworm's Python 3.11 (python3 package), in a venv so that `python` and `pip` work as in
# the python:3.11-slim-bookworm image (Debian's own python3 refuses pip installs: PEP 668).
ARG BASE=ioc-debian/base:bookworm
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /opt/python
ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8
CMD ["python3"]
