# The autoscaler daemon as a container image, built in two stages: `builder` installs the
# package and its pinned dependencies (constraints.txt) into a virtual environment; the
# runtime stage copies only that environment onto a fresh slim base (no pip cache, no build
# files, no compiler, no numpy or matplotlib: `autoscaler simulate` is not in the image). The
# builder compiles the decision core with mypyc (setup.py: same source, same decisions, about
# 1.6 times the decisions per second); the build tools stay in the builder's own venv.
#
#   docker build -t autoscaler .
#   docker run -d --name autoscaler \
#     -v /srv/autoscaler/etc:/etc/autoscaler:ro \          # config.yaml + policies/
#     -v autoscaler-state:/var/lib/autoscaler \            # state.db (SQLite)
#     -v /srv/autoscaler/secrets:/run/secrets:ro \         # neevcloud_token, admin_token
#     -p 127.0.0.1:9464:9464 autoscaler
#
# The daemon listens on AUTOSCALER_LISTEN (0.0.0.0:9464 here, over the config's http.listen)
# so the published port reaches it. `{file: NAME}` credentials are found in /run/secrets.
# AUTOSCALER_CONFIG names the config and AUTOSCALER_LOG_LEVEL overrides log.level. The daemon
# logs JSON lines to stderr and stops cleanly on SIGTERM (`docker stop`).
FROM python:3.11-slim AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A C compiler for the compiled core (the base image has Python's headers).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml setup.py README.md constraints.txt ./
COPY autoscaler/ ./autoscaler/
RUN python -m venv /opt/autoscaler \
 && python -m venv build-venv \
 && build-venv/bin/pip install mypy==2.4.1 setuptools==84.2.1 \
 && AUTOSCALER_COMPILE=1 build-venv/bin/pip wheel --no-build-isolation --no-deps --wheel-dir dist . \
 && /opt/autoscaler/bin/pip install --constraint constraints.txt dist/autoscaler-*.whl \
 && /opt/autoscaler/bin/autoscaler --version

FROM python:3.11-slim

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="autoscaler" \
      org.opencontainers.image.description="Autoscaling controller daemon for dedicated LLM model deployments on GPU clouds" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="python:3.11-slim"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/autoscaler/bin:$PATH \
    AUTOSCALER_CONFIG=/etc/autoscaler/config.yaml \
    AUTOSCALER_LISTEN=0.0.0.0:9464

# A fixed numeric id, so orchestrators can check runAsNonRoot and volumes can be chowned.
RUN groupadd --system --gid 10001 autoscaler \
 && useradd --system --uid 10001 --gid autoscaler --no-create-home \
        --home-dir /var/lib/autoscaler --shell /usr/sbin/nologin autoscaler \
 && install -d -o autoscaler -g autoscaler -m 0700 /var/lib/autoscaler \
 && install -d -m 0755 /etc/autoscaler

COPY --from=builder /opt/autoscaler /opt/autoscaler

WORKDIR /var/lib/autoscaler
USER 10001:10001
VOLUME /var/lib/autoscaler
EXPOSE 9464

# No curl in slim images: Python's urllib does the probe. Override the URL when the daemon
# listens elsewhere.
ENV AUTOSCALER_HEALTH_URL=http://127.0.0.1:9464/healthz
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['AUTOSCALER_HEALTH_URL'], timeout=4)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["autoscaler", "run"]
