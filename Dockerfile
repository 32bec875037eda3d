# The autoscaler daemon as a container image.
#
#   docker build -t autoscaler .
#   docker run -d --name autoscaler \
#     -v /srv/autoscaler/etc:/etc/autoscaler:ro \          # config.yaml + policies/
#     -v autoscaler-state:/var/lib/autoscaler \            # state.db (SQLite)
#     -v /srv/autoscaler/secrets:/run/secrets:ro \         # neevcloud_token, admin_token
#     -p 127.0.0.1:9464:9464 autoscaler
#
# The config must listen on 0.0.0.0:9464 for the published port to reach it (see
# deploy/config.yaml). `{file: NAME}` credentials are found in /run/secrets. The daemon logs
# JSON lines to stderr and stops cleanly on SIGTERM (`docker stop`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed numeric id, so orchestrators can check runAsNonRoot and volumes can be chowned.
RUN groupadd --system --gid 10001 autoscaler \
 && useradd --system --uid 10001 --gid autoscaler --no-create-home \
        --home-dir /var/lib/autoscaler --shell /usr/sbin/nologin autoscaler \
 && install -d -o autoscaler -g autoscaler -m 0700 /var/lib/autoscaler \
 && install -d -m 0755 /etc/autoscaler

WORKDIR /src
COPY pyproject.toml README.md ./
COPY autoscaler/ ./autoscaler/
RUN pip install . && rm -rf build && autoscaler --version

WORKDIR /var/lib/autoscaler
USER 10001:10001
VOLUME /var/lib/autoscaler
EXPOSE 9464

# No curl in slim images: Python's urllib does the probe. Override the URL when the config
# listens elsewhere.
ENV AUTOSCALER_HEALTH_URL=http://127.0.0.1:9464/healthz
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['AUTOSCALER_HEALTH_URL'], timeout=4)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["autoscaler", "run"]
CMD ["--config", "/etc/autoscaler/config.yaml"]
