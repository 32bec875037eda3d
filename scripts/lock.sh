#!/usr/bin/env bash
# Regenerate constraints.txt: the exact versions `pip install .` resolves today for the
# daemon (no extras), in a fresh virtual environment. The Dockerfile installs with them.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet .
{
  echo "# Pinned versions of the daemon's dependencies (no extras), for the container image:"
  echo "# pip install -c constraints.txt . -- regenerate with scripts/lock.sh after changing them"
  echo "# in pyproject.toml (a fresh venv, pip install ., pip freeze)."
  "$tmp/venv/bin/pip" freeze --exclude autoscaler
} > constraints.txt
echo "constraints.txt: $(grep -c '==' constraints.txt) pinned packages"
