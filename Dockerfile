# Shouwang service image. docker-compose.yml runs it three ways: `shouwang db upgrade` (migrate),
# `shouwang run --role ingest` and `shouwang run --role api`; alone, `shouwang run` runs everything.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY shouwang shouwang
COPY storage storage
COPY ingest ingest
COPY detectors detectors
COPY alerts alerts
COPY api api
COPY simulators simulators
RUN pip install --no-cache-dir . && useradd --system --home /data shouwang && mkdir -p /data && chown shouwang /data
USER shouwang
ENV SHOUWANG_DATABASE_URL=sqlite:////data/shouwang.db \
    SHOUWANG_API_HOST=0.0.0.0 \
    SHOUWANG_MQTT_EMBEDDED_FALLBACK=false \
    SHOUWANG_LOG_FORMAT=json
EXPOSE 8000
# Readiness: the database answers and (ingest, all) the broker is connected.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s CMD python -c "import sys, urllib.request as u; sys.exit(u.urlopen('http://127.0.0.1:8000/api/health/ready', timeout=4).status != 200)"
STOPSIGNAL SIGTERM
CMD ["shouwang", "run"]
