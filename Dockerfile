# The nlsql API and job worker (one image, two commands). Build: docker build -t nlsql .
# Run with compose.yaml (PostgreSQL, a one-shot migrate, the API with several workers, a worker).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NLSQL_DATA_DIR=/data \
    NLSQL_HOST=0.0.0.0 \
    NLSQL_PORT=8000 \
    NLSQL_LOG_FORMAT=json

WORKDIR /app
# Dependencies first (cached while only the code changes), then the code, installed in place:
# the migrations (alembic/, alembic.ini) are read from beside the package.
COPY pyproject.toml README.md alembic.ini ./
COPY backend ./backend
COPY alembic ./alembic
RUN pip install -e . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin nlsql \
    && mkdir -p /data/job-results \
    && chown -R nlsql:nlsql /data

USER nlsql
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["nlsql"]
CMD ["serve", "--workers", "4"]
