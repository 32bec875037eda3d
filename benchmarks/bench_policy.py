"""Policy loading speed: policies per second through `load_policy_text` (parse + validate +
build) over the example policies in `policies/`, the import time of the policy layer, and the
JSON Schema generation time.

    .venv/bin/python benchmarks/bench_policy.py            # 5 s of loading
    .venv/bin/python benchmarks/bench_policy.py --seconds 10

Figures are printed, not asserted. Run from the repository root.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def import_ms(runs: int = 5) -> float:
    """Median wall time of a fresh interpreter importing the loader (minus a bare start)."""

    def once(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        return time.perf_counter() - start

    bare = statistics.median(once("pass") for _ in range(runs))
    loaded = statistics.median(once("import autoscaler.policy.loader") for _ in range(runs))
    return (loaded - bare) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="loading loop length")
    args = parser.parse_args()

    from autoscaler.policy.loader import load_policy_text
    from autoscaler.policy.schema import daemon_config_json_schema, policy_json_schema

    texts = [(p.name, p.read_text()) for p in sorted((ROOT / "policies").glob("*.yaml"))]
    for name, text in texts:  # warm up, and fail early on a broken example
        load_policy_text(text, name)
    rounds = []
    deadline = time.perf_counter() + args.seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for name, text in texts:
            load_policy_text(text, name)
        rounds.append((time.perf_counter() - start) / len(texts))
    per = statistics.median(rounds)
    print(f"policies/*.yaml: {len(texts)} files, {len(rounds)} rounds")
    print(f"load_policy_text: {1 / per:,.0f} policies/s (median {per * 1e6:,.0f} us/policy)")
    start = time.perf_counter()
    for _ in range(20):
        policy_json_schema()
        daemon_config_json_schema()
    print(f"schema generation: {(time.perf_counter() - start) / 20 * 1000:.1f} ms (both)")
    print(f"import autoscaler.policy.loader: {import_ms():.0f} ms")


if __name__ == "__main__":
    main()
