"""`autoscaler replay`: the CLI over JSONL observations (semantics, not golden files)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from autoscaler.cli import main

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
EXAMPLE = ROOT / "examples" / "replay"
TWO = DATA / "two-policies.yaml"
BURST = DATA / "burst.jsonl"


def replay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict], str]:
    code = main(["replay", *args])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    return code, lines, captured.err


def test_bundled_example_tells_the_whole_story(capsys: pytest.CaptureFixture[str]) -> None:
    obs_lines = (EXAMPLE / "observations.jsonl").read_text().splitlines()
    code, out, err = replay(
        capsys,
        "--policy",
        str(EXAMPLE / "policy.yaml"),
        "--observations",
        str(EXAMPLE / "observations.jsonl"),
    )
    assert (code, err) == (0, "")
    assert len(out) == len(obs_lines)
    assert [d["t"] for d in out] == [json.loads(line)["t"] for line in obs_lines]
    for d in out:
        assert set(d) == {"t", "action", "replicas", "reasons", "message"}
    actions = [d["action"] for d in out]
    # comes up from zero, scales up, is held by the down window, scales down, goes to zero
    assert actions.index("create") < actions.index("scale") < actions.index("delete")
    reasons = [r for d in out for r in d["reasons"]]
    for code_ in (
        "activate_from_zero",
        "scale_up",
        "stabilized_down",
        "scale_down",
        "idle_to_zero",
    ):
        assert code_ in reasons
    delete = next(d for d in out if d["action"] == "delete")
    assert delete["replicas"] == 0


def test_scale_up_then_stabilized_down(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = replay(
        capsys, "--policy", str(TWO), "--name", "fast", "--observations", str(BURST)
    )
    assert code == 0
    assert len(out) == 8  # the blank line is skipped
    assert out[0]["action"] == "none"
    assert (out[1]["action"], out[1]["replicas"]) == ("scale", 6)  # ceil(40 / 5) = 8, +4 limit
    assert "scale_up" in out[1]["reasons"]
    assert "rate_limited_up" in out[1]["reasons"]
    # load dropped, the 60 s down window holds the earlier recommendation
    assert out[2]["action"] == "none" and "stabilized_down" in out[2]["reasons"]
    # null and missing metrics are failed reads: never a scale down
    assert "metrics_missing_no_scale_down" in out[4]["reasons"]
    assert "metrics_missing_no_scale_down" in out[5]["reasons"]
    assert out[5]["replicas"] == 6
    # window passed (last high recommendation at t=15): down at t=90
    assert (out[6]["action"], out[6]["replicas"]) == ("scale", 1)
    assert out[7]["reasons"] == ["deployment_initializing"]


def test_several_policies_need_a_name(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = replay(capsys, "--policy", str(TWO), "--observations", str(BURST))
    assert code == 1 and out == []
    assert "2 policies (fast, slow): choose one with --name" in err
    code, _, err = replay(
        capsys, "--policy", str(TWO), "--name", "nope", "--observations", str(BURST)
    )
    assert code == 1 and "no policy named 'nope'" in err
    code, out, _ = replay(
        capsys, "--policy", str(TWO), "--name", "slow", "--observations", str(BURST)
    )
    assert code == 0 and out[0]["replicas"] == 2


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "{not json",
            "not valid JSON: Expecting property name enclosed in double quotes at column 2",
        ),
        # a line cut short: a column of this line, never "line 2 column 1" of the file's line 3
        ('{"t": 99, "replicas": 1,', "enclosed in double quotes at column 25"),
        ("[1, 2]", "expected a JSON object"),
        ('{"replicas": 1, "status": "ready"}', "missing key 't'"),
        ('{"t": "soon", "replicas": 1, "status": "ready"}', "'t' must be a number"),
        ('{"t": 99, "replicas": 1, "status": "running"}', "'status' must be one of"),
        ('{"t": 99, "replicas": -1, "status": "ready"}', "'replicas' must be an integer >= 0"),
        ('{"t": 99, "replicas": 2.5, "status": "ready"}', "'replicas' must be an integer"),
        ('{"t": 99, "status": "ready"}', "missing key 'replicas'"),
        ('{"t": 99, "replicas": 1, "status": "ready", "metrics": [1]}', "'metrics' must be"),
        (
            '{"t": 99, "replicas": 1, "status": "ready", "metrics": {"waiting": "5"}}',
            "metrics.waiting must be a number",
        ),
        ('{"t": 99, "replicas": 1, "status": "ready", "metric": {}}', "unknown key 'metric'"),
        ('{"t": 5, "replicas": 1, "status": "ready"}', "'t' goes backwards: 5 after 15"),
        # Each of these printed a traceback once (fuzzing, issue 14).
        ("[" * 100_000 + "]" * 100_000, "nested deeper than 64 levels"),
        ('{"t": 99, "x": ' + "[" * 5000 + "]" * 5000 + "}", "nested deeper than 64 levels"),
        ('{"t": 1e400, "replicas": 1, "status": "ready"}', "'t' must be finite, got inf"),
        ('{"t": ' + "9" * 5000 + ', "replicas": 1, "status": "ready"}', "5000 digits"),
        ('{"t": 99, "replicas": ' + "9" * 4301 + ', "status": "ready"}', "4301 digits"),
        ('{"t": 1e12, "replicas": 1, "status": "ready"}', "'t' must be epoch seconds"),
        ('{"t": -1e308, "replicas": 1, "status": "ready"}', "'t' must be epoch seconds"),
        ('{"t": 99, "replicas": 10000000000, "status": "ready"}', "<= 1000000"),
        ('{"t": 99, "t": 15, "replicas": 1, "status": "ready"}', 'duplicate key "t"'),
        ('{"t": 99, "replicas": 1, "status": {"x": 1}}', "'status' must be one of"),
        (
            '{"t": 99, "replicas": 1, "status": "ready", "startup_seconds": -3}',
            "'startup_seconds' must be >= 0",
        ),
    ],
)
def test_bad_line_names_file_and_line_and_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    obs = tmp_path / "obs.jsonl"
    good = '{"t": 0, "replicas": 1, "status": "ready", "metrics": {"waiting": 1}}\n'
    later = '{"t": 15, "replicas": 1, "status": "ready", "metrics": {"waiting": 1}}\n'
    obs.write_text(good + later + line + "\n" + later)
    code, out, err = replay(
        capsys, "--policy", str(TWO), "--name", "fast", "--observations", str(obs)
    )
    assert code == 1
    assert len(out) == 2  # the lines before the bad one were decided and printed
    assert err.startswith(f"{obs}:3: ")
    assert message in err
    assert "Traceback" not in err


def test_invalid_policy_reports_validation_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nreplicas: {min: 5, max: 2}\n")
    code, out, err = replay(capsys, "--policy", str(bad), "--observations", str(BURST))
    assert code == 1 and out == []
    assert err.startswith(f"{bad}:")


def test_missing_observations_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = replay(
        capsys, "--policy", str(TWO), "--name", "fast", "--observations", str(tmp_path / "none")
    )
    assert code == 1 and "cannot read" in err


def test_absent_lines_may_omit_replicas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obs = tmp_path / "obs.jsonl"
    obs.write_text('{"t": 0, "status": "absent", "metrics": {"waiting": 12}}\n')
    code, out, _ = replay(
        capsys, "--policy", str(TWO), "--name", "fast", "--observations", str(obs)
    )
    assert code == 0
    assert (out[0]["action"], out[0]["replicas"], out[0]["reasons"]) == ("create", 3, ["below_min"])


def test_console_script_end_to_end() -> None:
    """The real command in a child process, reading observations from standard input."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "autoscaler",
            "replay",
            "--policy",
            str(TWO),
            "--name",
            "fast",
            "--observations",
            "-",
        ],
        input=BURST.read_text(),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    decisions = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [d["t"] for d in decisions] == [0.0, 15.0, 30.0, 45.0, 60.0, 75.0, 90.0, 105.0]


SCHEDULED = ROOT / "policies" / "business-hours.yaml"


@pytest.mark.parametrize("t", [0.0, 1e9, 32_503_680_000.0])
def test_any_t_in_range_decides_with_schedules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], t: float
) -> None:
    obs = tmp_path / "obs.jsonl"
    obs.write_text(json.dumps({"t": t, "replicas": 2, "status": "ready", "metrics": {}}) + "\n")
    code, out, err = replay(capsys, "--policy", str(SCHEDULED), "--observations", str(obs))
    assert (code, err) == (0, "")
    assert out[0]["t"] == t


@pytest.mark.parametrize("t", ["1e12", "-1", "32503680001"])
def test_t_out_of_range_with_schedules_is_a_bad_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], t: str
) -> None:
    obs = tmp_path / "obs.jsonl"
    obs.write_text('{"t": ' + t + ', "replicas": 2, "status": "ready", "metrics": {}}\n')
    code, out, err = replay(capsys, "--policy", str(SCHEDULED), "--observations", str(obs))
    assert (code, out) == (1, [])
    assert err.startswith(f"{obs}:1: 't' must be epoch seconds from 0 to 32503680000")


def test_observations_that_are_not_a_regular_file_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "obs.jsonl"
    os.mkfifo(fifo)  # no writer: opening it for reading the usual way would block forever
    codes: list[int] = []
    args = ["replay", "--policy", str(TWO), "--name", "fast", "--observations", str(fifo)]
    thread = threading.Thread(target=lambda: codes.append(main(args)), daemon=True)
    thread.start()
    thread.join(30)
    if thread.is_alive():  # release the blocked open, then fail (a hang never hangs the suite)
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)
        pytest.fail("replay hung on a FIFO")
    captured = capsys.readouterr()
    assert (codes, captured.out) == ([1], "")
    assert captured.err == f"{fifo}: is not a regular file (a FIFO)\n"


def test_a_line_without_end_is_refused_at_the_line_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from autoscaler.replay import MAX_LINE

    obs = tmp_path / "obs.jsonl"
    obs.write_bytes(b"{" + b" " * (MAX_LINE * 3))
    code, _, err = replay(
        capsys, "--policy", str(TWO), "--name", "fast", "--observations", str(obs)
    )
    assert code == 1
    assert err == f"{obs}:1: line longer than {MAX_LINE} bytes\n"


def test_a_line_that_is_not_utf8_names_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    obs = tmp_path / "obs.jsonl"
    good = b'{"t": 0, "replicas": 1, "status": "ready", "metrics": {"waiting": 1}}\n'
    obs.write_bytes(good + b'{"t": 1, "\xff": 1}\n')
    code, out, err = replay(
        capsys, "--policy", str(TWO), "--name", "fast", "--observations", str(obs)
    )
    assert (code, len(out)) == (1, 1)
    assert err.startswith(f"{obs}:2: not UTF-8 text")


def test_failed_reads_for_a_long_time_never_scale_down_or_delete(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The core's side of issue 14: a failed read (null, missing) is never idle. An hour of
    failed reads at 5 replicas, with scale to zero after 2 minutes: nothing moves down."""
    obs = tmp_path / "obs.jsonl"
    lines = [
        {"t": 0.0, "replicas": 5, "status": "ready", "metrics": {"waiting": 25, "kv_cache": 0.5}}
    ]
    for i in range(1, 240):
        metrics = [{}, {"waiting": None}, {"waiting": None, "kv_cache": None}][i % 3]
        lines.append({"t": i * 15.0, "replicas": 5, "status": "ready", "metrics": metrics})
    obs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, out, err = replay(
        capsys, "--policy", str(EXAMPLE / "policy.yaml"), "--observations", str(obs)
    )
    assert (code, err) == (0, "")
    assert all(d["action"] == "none" or d["replicas"] >= 5 for d in out), out
    assert not any(d["action"] == "delete" for d in out)


SLO = """name: slo
deployment: {provider: sim, name: d}
replicas: {min: 1, max: 20}
metrics:
  - name: arrivals
    source: {type: promql, url: "http://127.0.0.1:9090", query: "a"}
  - name: service
    source: {type: promql, url: "http://127.0.0.1:9090", query: "s"}
  - name: waiting
    source: {type: promql, url: "http://127.0.0.1:9090", query: "w"}
objective:
  queue_wait: 5s
  concurrency: 16
  startup: 10m
  forecast: false
  signals: {arrival_rate: arrivals, service_time: service, queue: waiting}
"""


def test_objective_policy_and_a_measured_start_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "slo.yaml"
    policy.write_text(SLO)
    obs = tmp_path / "obs.jsonl"
    # 10/s of 4 s on 3 replicas, then a queue of 60 that the 3 replicas drain in 30 s: before
    # the 10 min default start-up no replica is bought for it, but after a measured 5 s
    # start-up (an older line without the field stays valid) one is.
    rows = [
        {"t": 0, "replicas": 3, "status": "ready", "metrics": {"arrivals": 10, "service": 4}},
        {
            "t": 15,
            "replicas": 3,
            "status": "ready",
            "metrics": {"arrivals": 10, "service": 4, "waiting": 60},
        },
        {
            "t": 30,
            "replicas": 3,
            "status": "ready",
            "startup_seconds": 5,
            "metrics": {"arrivals": 10, "service": 4, "waiting": 60},
        },
    ]
    obs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = replay(capsys, "--policy", str(policy), "--observations", str(obs))
    assert (code, err) == (0, "")
    assert out[0]["action"] == "none" and "objective_sized" in out[0]["reasons"]
    assert out[1]["action"] == "none" and "objective_drains_first" in out[1]["reasons"]
    assert out[2]["action"] == "scale" and "objective_backlog" in out[2]["reasons"]
