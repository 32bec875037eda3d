"""`autoscaler simulate` end to end on small slices of the real traces: every output file,
determinism, signal binding and the exit code 2 on bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from autoscaler.cli import main
from autoscaler.simulate.results import timeline_integral

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "traces"
MOONCAKE = DATA / "mooncake_conversation_1h.csv"
SERVEGEN = DATA / "servegen_language_m_mid_14d_rate10min.csv"
POLICY = ROOT / "policies" / "llm-chat.yaml"

SUMMARY_KEYS = {
    "billed_replica_seconds",
    "cost_usd",
    "requests_total",
    "requests_served",
    "requests_dropped",
    "wait_p50_s",
    "wait_p90_s",
    "wait_p99_s",
    "wait_max_s",
    "slo_wait_s",
    "slo_attainment",
    "scale_actions",
    "seconds_at_zero",
    "bound_replica_seconds",
    "cost_ratio_to_bound",
    "mode",
}


@pytest.fixture(scope="module")
def mooncake_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("traces") / "mooncake_head.csv"
    with MOONCAKE.open() as src:
        path.write_text("".join(next(src) for _ in range(2001)))  # ~10 minutes
    return path


def run_cli(*args: str) -> int:
    return main(["simulate", *args])


def read_timeline(path: Path) -> list[tuple[float, int, int, int, float, float]]:
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    return [
        (
            float(r["t_s"]),
            int(r["ready"]),
            int(r["provisioning"]),
            int(r["billed"]),
            float(r["waiting"]),
            float(r["running"]),
        )
        for r in rows
    ]


def test_end_to_end_writes_every_output(
    mooncake_slice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = run_cli(
        "--trace",
        str(mooncake_slice),
        "--policy",
        str(POLICY),
        "--baseline",
        "all",
        "--out",
        str(out),
        "--provision-seconds",
        "60",
        "--slo-wait",
        "5",
    )
    assert code == 0
    printed = capsys.readouterr().out
    document = json.loads((out / "summary.json").read_text())
    runs = document["runs"]
    assert list(runs) == ["llm-chat", "static-peak", "hpa", "keda-vllm", "kpa"]
    assert "llm-chat" in printed and "static-peak" in printed and "x bound" in printed
    for name, summary in runs.items():
        assert set(summary) >= SUMMARY_KEYS, name
        assert summary["mode"] == "request"
        assert summary["requests_total"] == 2000
        assert summary["requests_served"] + summary["requests_dropped"] == 2000
        assert 0.0 <= summary["slo_attainment"] <= 1.0
        assert summary["cost_usd"] == pytest.approx(
            summary["billed_replica_seconds"] / 3600 * summary["replica_hourly_usd"], rel=1e-3
        )
        for suffix in (".requests.csv", ".timeline.csv", ".png"):
            assert (out / f"{name}{suffix}").stat().st_size > 0
        timeline = read_timeline(out / f"{name}.timeline.csv")
        assert timeline_integral(timeline) == pytest.approx(
            summary["billed_replica_seconds"], rel=1e-6, abs=1e-2
        )
        with (out / f"{name}.requests.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 2000
        assert list(rows[0]) == ["arrival_s", "start_s", "end_s", "replica"]
    # one price for every run: the --replica-hourly-usd default, not llm-chat's own 10
    assert {s["replica_hourly_usd"] for s in runs.values()} == {2.5}
    assert document["settings"]["replica_hourly_usd"] == 2.5
    assert runs["static-peak"]["wait_max_s"] == 0.0
    assert runs["static-peak"]["cost_ratio_to_bound"] >= 1.0
    assert (out / "compare.png").stat().st_size > 0


def test_same_seed_same_results_on_a_rate_trace(tmp_path: Path) -> None:
    args = [
        "--trace",
        str(SERVEGEN),
        "--sizes",
        str(MOONCAKE),
        "--rate-scale",
        "0.002",
        "--duration",
        "1800",
        "--baseline",
        "hpa",
        "--no-plots",
    ]
    assert run_cli(*args, "--seed", "5", "--out", str(tmp_path / "a")) == 0
    assert run_cli(*args, "--seed", "5", "--out", str(tmp_path / "b")) == 0
    assert run_cli(*args, "--seed", "6", "--out", str(tmp_path / "c")) == 0
    a = (tmp_path / "a" / "hpa.requests.csv").read_text()
    assert a == (tmp_path / "b" / "hpa.requests.csv").read_text()
    assert a != (tmp_path / "c" / "hpa.requests.csv").read_text()
    sa = json.loads((tmp_path / "a" / "summary.json").read_text())
    sb = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert sa == sb
    assert sa["runs"]["hpa"]["mode"] == "request"


def test_aggregated_mode_on_the_rate_trace(tmp_path: Path) -> None:
    out = tmp_path / "agg"
    code = run_cli(
        "--trace",
        str(SERVEGEN),
        "--sizes",
        str(MOONCAKE),
        "--rate-scale",
        "0.003",
        "--duration",
        "86400",
        "--mode",
        "aggregated",
        "--policy",
        str(POLICY),
        "--baseline",
        "static-peak",
        "--out",
        str(out),
    )
    assert code == 0
    runs = json.loads((out / "summary.json").read_text())["runs"]
    assert runs["llm-chat"]["mode"] == "aggregated"
    assert not (out / "llm-chat.requests.csv").exists()  # no per-request rows in this mode
    assert (out / "llm-chat.timeline.csv").exists() and (out / "llm-chat.png").exists()
    assert runs["static-peak"]["cost_ratio_to_bound"] >= 1.0
    for summary in runs.values():
        assert math.isclose(
            summary["requests_served"] + summary["requests_dropped"],
            summary["requests_total"],
            rel_tol=1e-6,
        )


def test_signal_option_binds_an_unknown_metric(mooncake_slice: Path, tmp_path: Path) -> None:
    policy = tmp_path / "json.yaml"
    policy.write_text(
        "name: custom\n"
        "deployment: {provider: p, name: custom}\n"
        "replicas: {min: 1, max: 10}\n"
        "metrics:\n"
        "  - name: depth\n"
        "    source: {type: http_json, url: 'http://gw.internal/stats', path: queue.depth}\n"
        "    target: {type: average_value, value: 4}\n"
    )
    base = ["--trace", str(mooncake_slice), "--policy", str(policy), "--no-plots"]
    assert run_cli(*base, "--out", str(tmp_path / "x")) == 2  # unbound
    assert run_cli(*base, "--signal", "depth=waiting", "--out", str(tmp_path / "y")) == 0
    assert run_cli(*base, "--signal", "depth=bogus", "--out", str(tmp_path / "z")) == 2
    assert run_cli(*base, "--signal", "nope=waiting", "--out", str(tmp_path / "w")) == 2


def test_splitwise_service_model(mooncake_slice: Path, tmp_path: Path) -> None:
    out = tmp_path / "sw"
    code = run_cli(
        "--trace",
        str(mooncake_slice),
        "--baseline",
        "hpa",
        "--no-plots",
        "--out",
        str(out),
        "--service-model",
        "splitwise:llama2-70b:h100-80gb:4",
    )
    assert code == 0
    document = json.loads((out / "summary.json").read_text())
    assert "splitwise:llama2-70b:h100-80gb:4" in document["settings"]["service_model"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trace", "/nonexistent.csv", "--baseline", "hpa"], "no such file"),
        (["--baseline", "nope"], "unknown"),
        ([], "nothing to simulate"),
        (["--baseline", "hpa", "--max-concurrency", "0"], "--max-concurrency must be > 0"),
        (["--baseline", "hpa", "--rate-scale", "2"], "rate traces only"),
        (["--baseline", "hpa", "--service-model", "splitwise:nope:h100"], "available"),
        (["--policy", "/nonexistent.yaml"], "nonexistent.yaml"),
        (["--baseline", "hpa", "--sizes", str(MOONCAKE)], "rate traces only"),
        (["--baseline", "hpa", "--signal", "x"], "expected METRIC=SIGNAL"),
        (["--baseline", "hpa", "--queue-timeout", "0"], "--queue-timeout must be > 0"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    mooncake_slice: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    full = ["--out", str(tmp_path / "o"), "--no-plots", *args]
    if "--trace" not in args:
        full = ["--trace", str(mooncake_slice), *full]
    assert run_cli(*full) == 2
    assert message in capsys.readouterr().err


def test_rate_trace_without_sizes_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_cli("--trace", str(SERVEGEN), "--baseline", "hpa", "--out", str(tmp_path))
    assert code == 2
    assert "--sizes" in capsys.readouterr().err


def test_bad_row_is_reported_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "bad.csv"
    trace.write_text("timestamp_ms,input_length,output_length\n0,1,2\n5,abc,2\n")
    assert run_cli("--trace", str(trace), "--baseline", "hpa", "--out", str(tmp_path / "o")) == 2
    assert f"{trace}:3: column 'input_length': 'abc' is not a number" in capsys.readouterr().err


def test_column_options_map_another_layout(tmp_path: Path) -> None:
    trace = tmp_path / "mine.csv"
    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0, 120, 200))
    lines = ["when,prompt,completion"] + [
        f"{t:.3f},{1000 + i},{50 + i % 7}" for i, t in enumerate(times)
    ]
    trace.write_text("\n".join(lines) + "\n")
    out = tmp_path / "o"
    code = run_cli(
        "--trace",
        str(trace),
        "--time-column",
        "when",
        "--input-column",
        "prompt",
        "--output-column",
        "completion",
        "--time-unit",
        "s",
        "--baseline",
        "static-peak",
        "--no-plots",
        "--out",
        str(out),
    )
    assert code == 0
    runs = json.loads((out / "summary.json").read_text())["runs"]
    assert runs["static-peak"]["requests_total"] == 200


def test_every_run_is_billed_at_one_price_and_the_references_are_reported(
    mooncake_slice: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    slo = ROOT / "policies" / "llm-slo.yaml"  # states 10 USD, as llm-chat does
    code = run_cli(
        "--trace",
        str(mooncake_slice),
        "--policy",
        str(POLICY),
        "--policy",
        str(slo),
        "--baseline",
        "hpa",
        "--baseline",
        "static-peak",
        "--replica-hourly-usd",
        "3",
        "--no-plots",
        "--out",
        str(out),
    )
    assert code == 0
    printed = capsys.readouterr().out
    document = json.loads((out / "summary.json").read_text())
    runs = document["runs"]
    assert list(runs) == ["llm-chat", "llm-slo", "hpa", "static-peak"]
    for summary in runs.values():
        assert summary["replica_hourly_usd"] == 3.0
        assert summary["cost_usd"] == pytest.approx(
            summary["billed_replica_seconds"] / 3600 * 3.0, abs=1e-3
        )
    assert runs["llm-slo"]["requests_served"] == 2000  # the objective policy ran, signals bound
    refs = document["references"]
    bound = refs["bound"]["billed_replica_seconds"]
    clairvoyant = refs["clairvoyant"]["billed_replica_seconds"]
    assert bound == pytest.approx(document["settings"]["bound_replica_seconds"])
    assert clairvoyant == pytest.approx(document["settings"]["clairvoyant_replica_seconds"])
    assert bound < clairvoyant <= runs["static-peak"]["billed_replica_seconds"] + 1e-6
    for summary in runs.values():
        assert summary["cost_ratio_to_clairvoyant"] == pytest.approx(
            summary["billed_replica_seconds"] / clairvoyant, rel=1e-3
        )
    assert "clairvoyant" in printed and "x clairvoyant" in (out / "table.md").read_text()
