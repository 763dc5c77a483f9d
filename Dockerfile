# mkt_pipeline: the generator CLI (entrypoint) and the Dagster code location, in one image.
#   docker build -t mkt-pipeline .
#   docker run -e HOST=172.31.42.41 -e MARKET_DATA_MAX_EPS=2500 mkt-pipeline          # FX, real-time
#   docker run -e MARKET=equities -e MODE=faster-than-life mkt-pipeline --start_ts 2025-07-01T13:00:00Z --end_ts 2025-07-01T16:00:00Z
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    MKT_CACHE_DIR=/opt/dagster/cache

WORKDIR /opt/mkt_pipeline
COPY pyproject.toml README.md ./
COPY mkt_pipeline ./mkt_pipeline
# [deploy]: dagster-postgres (the compose instance's storage) and dagster-docker (run launcher)
RUN pip install '.[deploy]'

COPY workspace.yaml ./
COPY dagster_home/dagster.yaml ${DAGSTER_HOME}/dagster.yaml
COPY deploy ./deploy
COPY docker/entrypoint.sh /usr/local/bin/mkt-entrypoint
RUN chmod 0755 /usr/local/bin/mkt-entrypoint \
    && useradd --create-home --uid 10001 mkt \
    && mkdir -p /opt/dagster/cache ${DAGSTER_HOME}/storage /data \
    && chown -R mkt /opt/dagster /data
USER mkt

ENTRYPOINT ["/usr/local/bin/mkt-entrypoint"]
CMD []
