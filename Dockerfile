# Shouwang service image: `shouwang run` (ingest + detectors + alerts + API).
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
    SHOUWANG_MQTT_EMBEDDED_FALLBACK=false
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)"
CMD ["shouwang", "run"]
