# One image for every mlserve process: `mlserve serve` (the default command) and
# `mlserve worker`; `mlserve db upgrade` as a one-off. Configuration only through the
# environment (MLSERVE_*, or DATABASE_URL / REDIS_URL / PORT): docs/deployment.md.
#
#   podman build -t mlserve .         (or docker build)
#   podman run -p 8000:8000 -e MLSERVE_SECRET_KEY=... mlserve
#
# Stage 1 builds a virtual environment with mlserve and its production extras; stage 2
# copies it into a slim Python base with no compiler, running as an unprivileged user.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/mlserve
COPY pyproject.toml README.md /src/
COPY src /src/src
# postgres (psycopg), redis (queue, shared rate limits), s3 (obstore): what a cluster uses.
RUN /opt/mlserve/bin/pip install "/src[postgres,redis,s3]"

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/mlserve/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MLSERVE_HOME=/var/lib/mlserve \
    MLSERVE_HOST=0.0.0.0
RUN useradd --system --uid 10001 --home-dir /var/lib/mlserve --create-home mlserve
COPY --from=build /opt/mlserve /opt/mlserve
USER 10001
WORKDIR /var/lib/mlserve
# The port is MLSERVE_PORT, else PORT (platforms set it), else 8000.
EXPOSE 8000
# Liveness: the process answers. (Readiness, /ready, is for the load balancer.)
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('PORT') or os.environ.get('MLSERVE_PORT', '8000')}/health\", timeout=2)"]
# SIGINT is the graceful stop of both processes: granian stops accepting and finishes
# the requests in flight; a worker (Huey) finishes its running jobs (on SIGTERM it would
# abandon them). Docker, podman and containerd (Kubernetes) send it on stop.
STOPSIGNAL SIGINT
ENTRYPOINT ["mlserve"]
CMD ["serve", "--no-worker", "--workers", "2"]
