"""The `autoscaler` entry point: help, unknown commands, and a reader that goes away."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from autoscaler.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_no_command_prints_help_and_exits_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_closed_pipe_ends_quietly_without_a_traceback(tmp_path: Path) -> None:
    observations = tmp_path / "obs.jsonl"
    observations.write_text(
        "".join(
            f'{{"t": {15.0 * i}, "replicas": 2, "status": "ready", "metrics": {{"waiting": 1}}}}\n'
            for i in range(20_000)
        )
    )
    replay = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autoscaler",
            "replay",
            "--policy",
            str(ROOT / "examples" / "replay" / "policy.yaml"),
            "--observations",
            str(observations),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert replay.stdout is not None
    first = replay.stdout.readline()
    replay.stdout.close()  # like `| head -1`
    _, err = replay.communicate(timeout=120)
    assert first.startswith(b'{"t": 0.0')
    assert b"Traceback" not in err, err.decode()[-2000:]
    assert replay.returncode == 141
