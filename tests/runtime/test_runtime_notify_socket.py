"""sd_notify over a real unix datagram socket (path and abstract namespace)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from autoscaler.runtime.notify import Notifier, watchdog_loop


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, str(path)
    sock.close()


def received(sock: socket.socket) -> list[str]:
    """Every datagram waiting on the socket, without blocking."""
    messages = []
    sock.setblocking(False)
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(5)
    return messages


def test_ready_watchdog_status_stopping(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready()
    assert sock.recv(4096).decode() == f"READY=1\nMAINPID={os.getpid()}"
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.status("2 policies\nloaded")
    assert sock.recv(4096) == b"STATUS=2 policies loaded"
    assert notifier.reloading()
    assert sock.recv(4096) == b"RELOADING=1"
    assert notifier.stopping("draining")
    assert sock.recv(4096) == b"STOPPING=1\nSTATUS=draining"
    notifier.close()


def test_abstract_namespace_socket() -> None:
    name = f"autoscaler-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        notifier = Notifier({"NOTIFY_SOCKET": "@" + name})
        assert notifier.ready()
        assert sock.recv(4096).startswith(b"READY=1")
        notifier.close()


def test_no_socket_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert notifier.watchdog_interval() is None
    assert Notifier({"NOTIFY_SOCKET": "relative/path"}).enabled is False


def test_vanished_socket_is_logged_not_raised(tmp_path: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.ready() is False


def test_watchdog_interval_is_half_the_period() -> None:
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval() == 15.0
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_interval() is None
    assert Notifier({"WATCHDOG_USEC": "junk"}).watchdog_interval() is None
    mine = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_interval() == 0.5
    other = {"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert Notifier(other).watchdog_interval() is None


def test_watchdog_loop_pings_only_while_healthy(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000"})  # 1 ms period
    # healthy, healthy, unhealthy, unhealthy, healthy, then stop: 3 pings expected.
    answers = [True, True, False, False, True]

    async def main() -> None:
        with anyio.CancelScope() as scope:

            def healthy() -> bool:
                if not answers:
                    scope.cancel()
                    return False
                return answers.pop(0)

            await watchdog_loop(notifier, healthy)

    anyio.run(main)
    assert received(sock) == ["WATCHDOG=1"] * 3
    notifier.close()


def test_watchdog_loop_returns_without_a_watchdog(receiver: tuple[socket.socket, str]) -> None:
    sock, path = receiver
    anyio.run(watchdog_loop, Notifier({"NOTIFY_SOCKET": path}), lambda: True)
    assert received(sock) == []
