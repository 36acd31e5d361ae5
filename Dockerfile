# Kairos API image: `docker build -t kairos .` then
#   docker run -e KAIROS_ENVIRONMENT=production -e KAIROS_SECRET_KEY=... \
#     -e KAIROS_DATABASE_URL=postgresql+psycopg://... -p 8000:8000 kairos
# Run `kairos migrate` once per release (same image, command `kairos migrate`) and the
# worker as its own container (command `kairos worker`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    KAIROS_HOST=0.0.0.0 \
    KAIROS_PORT=8000
# Two malloc arenas keep a threaded server's memory flat (docs/deployment.md); glibc reads
# this at process start, for the API and the worker alike.
ENV MALLOC_ARENA_MAX=2

WORKDIR /srv/kairos
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY examples ./examples
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /srv/kairos kairos \
    && mkdir -p /srv/kairos/data \
    && chown kairos /srv/kairos/data

USER kairos
# The embedded default keeps its SQLite file in a volume-friendly place.
ENV KAIROS_DATABASE_URL=sqlite:////srv/kairos/data/kairos.db \
    KAIROS_EXPORT_DIR=/srv/kairos/data/exports
VOLUME ["/srv/kairos/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
ENTRYPOINT ["kairos"]
CMD ["serve"]
