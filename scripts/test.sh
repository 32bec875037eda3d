#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing (Debian packages, a venv
# with the project and its dev extras), makes sure the local services answer, then runs
# ruff, mypy and pytest. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_missing=()
command -v prometheus >/dev/null 2>&1 || apt_missing+=(prometheus)
if [ ${#apt_missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${apt_missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
    # The package starts a system-wide instance on :9090; the tests start their own.
    (systemctl stop prometheus 2>/dev/null || pkill -x prometheus 2>/dev/null) || true
fi

bash scripts/services.sh

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[dev]'

echo "== ruff"
.venv/bin/ruff check autoscaler tests scripts
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/pytest -q -p no:cacheprovider "$@"
