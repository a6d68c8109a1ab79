# The one image behind web (gunicorn), worker and beat; see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TRACEABILITY_VAR_DIR=/app/var \
    STATIC_ROOT=/app/static \
    MEDIA_ROOT=/app/media

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY requirements/base.txt requirements/base.txt
RUN pip install -r requirements/base.txt

COPY . .

# Settings only parse DATABASE_URL at import (no connection), so collectstatic needs no database.
RUN SECRET_KEY=collectstatic-only \
    DATABASE_URL=postgresql://build@localhost/build \
    CELERY_BROKER_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput --verbosity 0

# Named volumes mounted on these directories start with the ownership set here.
RUN useradd --system --uid 10001 --home-dir /app traceability \
    && mkdir -p /app/media /app/var/beat \
    && chown -R traceability:traceability /app/media /app/var
USER traceability

EXPOSE 8000
# Liveness only: a database outage must not get the web process restarted (docs/operations.md).
# The worker and beat containers of docker-compose.yml turn this off.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=5)"]
# The access line ends with the request's id, as every other line of the request carries it.
CMD ["gunicorn", "traceability.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-", \
     "--access-logformat", "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\" request_id=%({x-request-id}o)s"]
