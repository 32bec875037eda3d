#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing (Debian packages, a venv
# with the project and its dev extras), makes sure the local services answer, then runs
# ruff, mypy and pytest. `.ci/run` calls exactly this.
#
# It never stops or kills a process it did not start. Installing Debian's prometheus may start
# the package's own service on :9090; it is left alone: the tests start their own prometheus
# on free ports.
set -euo pipefail
cd "$(dirname "$0")/.."

# command -> Debian package that provides it; the tests need every one of these.
declare -A provides=(
    [prometheus]=prometheus                # tests/sources: a real Prometheus for PromQL
    [promtool]=prometheus                  # tests/runtime: the deploy/ alert rules
    [pg_ctlcluster]=postgresql             # the PostgreSQL store, HA
    [redis-server]=redis-server            # the Redis source, queues in end-to-end tests
    [rabbitmq-server]=rabbitmq-server      # the RabbitMQ source
    [nats-server]=nats-server              # the NATS JetStream source
    [systemd-analyze]=systemd              # tests/runtime: the deploy/ unit verifies
    [gcc]=gcc                              # tests/runtime: the Dockerfile compiles the core
)
apt_missing=()
for cmd in "${!provides[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || apt_missing+=("${provides[$cmd]}")
done
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_missing+=(python3-venv)
# The compiled core's C build needs the C library's and Python's headers.
[ -f /usr/include/stdio.h ] || apt_missing+=(libc6-dev)
python3 -c 'import os, sysconfig; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' \
    >/dev/null 2>&1 || apt_missing+=(python3-dev)
fresh_postgresql=false
[ -d /etc/postgresql ] || fresh_postgresql=true
if [ ${#apt_missing[@]} -gt 0 ]; then
    mapfile -t apt_missing < <(printf '%s\n' "${apt_missing[@]}" | sort -u)
    echo "installing Debian packages: ${apt_missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
if $fresh_postgresql && [ -d /etc/postgresql ]; then
    # A cluster this script just installed: the tests connect as postgres over loopback
    # without a password (only 127.0.0.1, only this new cluster).
    for hba in /etc/postgresql/*/main/pg_hba.conf; do
        sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    done
fi

bash scripts/services.sh

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[dev]'

echo "== ruff"
.venv/bin/ruff check autoscaler tests scripts benchmarks setup.py
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest -q -p no:cacheprovider "$@"
