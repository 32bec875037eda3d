"""`autoscaler demo` as a user runs it: a subprocess with the real daemon, the simulator and
the gateway; the summary must show a scale up, a scale down, a delete to zero and a
recreate. Ctrl-C ends it cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "autoscaler", "demo", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_demo_shows_scale_up_down_delete_and_recreate(tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    workdir = tmp_path / "work"
    result = subprocess.run(
        demo_command(
            "--duration",
            "24",
            "--speed",
            "2.5",
            "--plain",
            "--summary-json",
            str(summary_file),
            "--workdir",
            str(workdir),
        ),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env(),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    out = result.stdout
    assert "summary:" in out
    summary = json.loads(summary_file.read_text())
    chat, batch = summary["policies"]["chat"], summary["policies"]["batch"]
    assert chat["scale_ups"] >= 1 and chat["max_replicas"] > 1
    assert chat["scale_downs"] >= 1
    assert chat["deletes"] == 0  # min 1: never deleted
    assert batch["deletes"] >= 1 and batch["recreates"] >= 1
    assert batch["min_replicas"] == 0
    # Through the gateway: idle to zero, a request held while recreated, then answered.
    assistant = summary["policies"]["assistant"]
    assert assistant["deletes"] >= 1 and assistant["recreates"] >= 1
    answered = [r for r in summary["gateway_requests"] if r.get("status") == 200]
    assert len(answered) >= 2, summary["gateway_requests"]
    assert "assistant: a chat request arrives at the gateway" in out
    assert "then answered" in out
    assert summary["duplicate_names"] == []
    kinds = [e["kind"] for e in summary["events"] if e["policy"] == "batch"]
    assert kinds.index("delete") < kinds.index("recreate")
    chat_kinds = [e["kind"] for e in summary["events"] if e["policy"] == "chat"]
    assert "scale_up" in chat_kinds and "scale_down" in chat_kinds
    # The printed summary says the same thing a person reads.
    batch_line = next(line for line in out.splitlines() if line.strip().startswith("batch "))
    assert "delete 1" in batch_line or "deletes 1" in batch_line
    assert "recreates 1" in batch_line or "recreates 2" in batch_line
    assert "deleted: scaled to zero" in out and "recreated from zero" in out
    # The daemon really ran: its state and its decision log are in the work folder.
    log = (workdir / "daemon.log").read_text().splitlines()
    decisions = [json.loads(line) for line in log if '"decision"' in line]
    assert any(d.get("action") == "delete" and d.get("policy") == "batch" for d in decisions)
    assert (workdir / "state.db").exists()
    token = (workdir / "neevcloud_token").read_text().strip()
    assert token not in "\n".join(log)


@pytest.mark.slow
def test_ctrl_c_ends_the_demo_cleanly() -> None:
    process = subprocess.Popen(
        demo_command("--plain", "--speed", "4"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env(),
    )
    killer = threading.Timer(90, process.kill)  # a bound, never a timing assertion
    killer.start()
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:
            seen.append(line)
            if "created" in line:
                break
        assert any("created" in line for line in seen), "".join(seen)
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=60)
    finally:
        killer.cancel()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-3000:]
    assert "summary:" in rest
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--speed", "0"), "--speed"), (("--duration", "-3"), "--duration")],
)
def test_bad_arguments_exit_2(args: tuple[str, ...], message: str) -> None:
    result = subprocess.run(
        demo_command(*args), capture_output=True, text=True, timeout=60, cwd=REPO, env=env()
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_on_a_terminal_the_view_redraws_in_place() -> None:
    """stdout is a real pseudo-terminal: the live view uses ANSI redraws, then the summary."""
    import pty

    main, secondary = pty.openpty()
    process = subprocess.Popen(
        demo_command("--duration", "4", "--speed", "4"),
        stdout=secondary,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=env(),
    )
    os.close(secondary)
    chunks = []
    killer = threading.Timer(90, process.kill)
    killer.start()
    try:
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        process.wait(30)
    finally:
        killer.cancel()
        os.close(main)
        if process.poll() is None:
            process.kill()
    text = b"".join(chunks).decode(errors="replace")
    assert process.returncode == 0, text[-2000:]
    assert "\x1b[" in text and "F\x1b[J" in text  # cursor up + clear: a redraw
    assert "POLICY" in text and "REPLICAS" in text
    assert "summary:" in text
