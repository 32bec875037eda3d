"""A real `autoscaler run` process under a systemd-like supervisor: a unix datagram socket as
$NOTIFY_SOCKET and a watchdog period; it must send READY=1, then WATCHDOG=1 pings, and
STOPPING=1 on SIGTERM before exiting 0."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import pytest

from tests.runtime.daemon_support import policy_yaml, sim_server, start_daemon_process, write_config
from tests.services import require_tcp


def next_message(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


@pytest.mark.slow
def test_ready_watchdog_stopping(tmp_path: Path) -> None:
    require_tcp("Redis", 6379)
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock, sim_server() as sim:
        sock.bind(str(path))
        sock.settimeout(30)  # a bound on a hung daemon, not a timing assertion
        config = write_config(
            tmp_path,
            sim.url,
            {"p": policy_yaml("notify-p", redis_key=f"test:notify:{uuid.uuid4().hex}")},
        )
        process = start_daemon_process(
            config,
            env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "400000"},
            log=tmp_path / "daemon.log",
        )
        try:
            messages = [next_message(sock)]
            assert messages[0].startswith("READY=1"), messages
            assert f"MAINPID={process.pid}" in messages[0]
            # Pings follow while the daemon is healthy.
            pings = 0
            while pings < 2:
                message = next_message(sock)
                messages.append(message)
                pings += message == "WATCHDOG=1"
            process.terminate()
            while not any(m.startswith("STOPPING=1") for m in messages):
                messages.append(next_message(sock))
            assert process.wait(30) == 0
        finally:
            if process.poll() is None:
                process.kill()
    ready = next(i for i, m in enumerate(messages) if m.startswith("READY=1"))
    stopping = next(i for i, m in enumerate(messages) if m.startswith("STOPPING=1"))
    assert ready < stopping
