"""What a hostile 50 MB metric body costs the daemon's process: event-loop stalls and memory.

    .venv/bin/python benchmarks/bench_sources_hostile.py [--reads 5] [--mb 50]

A child process (`python -m http.server`, so its memory and CPU are not ours) serves two 50 MB
expositions (comment padding, then `queue_depth 0`; ~1.7 M series of the family read, all 0)
and a 50 MB JSON document (a padding string, then `"queue": 0`). The `prometheus` and
`http_json` sources read each `--reads` times while a ticker task sleeping 5 ms records the
longest gap of the event loop. Printed per case: the outcome (value or error), the longest
read, the longest event-loop stall, and the process's RSS before the reads, at its peak
(VmHWM) and after them (gc run). Run it with `PYTHONPATH` pointing at an older checkout to
compare.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # appended: PYTHONPATH (an older checkout) wins

from autoscaler.policy.model import HttpJsonSource, MetricSource, PrometheusSource  # noqa: E402
from autoscaler.sources.base import SourceError  # noqa: E402
from autoscaler.sources.registry import build_source  # noqa: E402
from tests.services import free_port  # noqa: E402


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Start VmHWM afresh (Linux: writing 5 to clear_refs resets the peak RSS)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def write_bodies(folder: Path, size: int) -> None:
    """Written in pieces, so this process never holds a whole body."""
    line = b"# HELP padding " + b"x" * 1000 + b"\n"
    with (folder / "metrics.txt").open("wb") as f:
        for _ in range(size // len(line) + 1):
            f.write(line)
        f.write(b'# TYPE queue_depth gauge\nqueue_depth{queue="chat"} 0\n')
    with (folder / "series.txt").open("wb") as f:  # ~1.7 M series of the family read
        f.write(b"# TYPE queue_depth gauge\n")
        written, index = 0, 0
        while written < size:
            chunk = b"".join(b'queue_depth{i="%d"} 0\n' % (index + k) for k in range(10_000))
            f.write(chunk)
            written += len(chunk)
            index += 10_000
    with (folder / "stats.json").open("wb") as f:
        f.write(b'{"pad": "')
        for _ in range(size // (1024 * 1024)):
            f.write(b"x" * 1024 * 1024)
        f.write(b'", "queue": 0}')


async def measure(spec: MetricSource, reads: int) -> dict[str, object]:
    source = build_source(spec, name="hostile")
    stall = 0.0
    done = False

    async def ticker() -> None:
        nonlocal stall
        last = time.perf_counter()
        while not done:
            await anyio.sleep(0.005)
            now = time.perf_counter()
            stall = max(stall, now - last - 0.005)
            last = now

    outcomes: list[str] = []
    longest = 0.0
    async with anyio.create_task_group() as group:
        group.start_soon(ticker)
        for _ in range(reads):
            started = time.perf_counter()
            try:
                outcomes.append(f"value {await source.read():g}")
            except SourceError as exc:
                outcomes.append(f"error: {exc.message[:90]}")
            longest = max(longest, time.perf_counter() - started)
        done = True
    await source.aclose()
    return {"outcome": outcomes[-1], "longest_read_s": longest, "max_loop_stall_s": stall}


async def main(reads: int, size_mb: int) -> None:
    with tempfile.TemporaryDirectory(prefix="autoscaler-hostile-") as tmp:
        folder = Path(tmp)
        write_bodies(folder, size_mb * 1024 * 1024)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    httpx.head(base, timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            cases: dict[str, MetricSource] = {
                "prometheus (comment padding)": PrometheusSource(
                    urls=(f"{base}/metrics.txt",), metric="queue_depth", timeout=30.0
                ),
                "prometheus (matching series)": PrometheusSource(
                    urls=(f"{base}/series.txt",), metric="queue_depth", timeout=30.0
                ),
                "http_json": HttpJsonSource(url=f"{base}/stats.json", path="queue", timeout=30.0),
            }
            print(f"{size_mb} MB bodies, {reads} reads per source")
            for name, spec in cases.items():
                gc.collect()
                reset_peak()
                before = rss_mb()
                result = await measure(spec, reads)
                gc.collect()
                after = rss_mb()
                print(
                    json.dumps(
                        {
                            "source": name,
                            **result,
                            "rss_before_mb": round(before, 1),
                            "rss_peak_mb": round(rss_mb("VmHWM"), 1),
                            "rss_after_mb": round(after, 1),
                        }
                    )
                )
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=5)
    parser.add_argument("--mb", type=int, default=50)
    args = parser.parse_args()
    anyio.run(main, args.reads, args.mb)
