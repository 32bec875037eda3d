"""Helpers for tests that need a real server.

Outside CI a missing server skips the test with a message saying how to start it; under CI
(`CI=true`) it fails: CI installs and starts everything, so a missing server is a bug.
"""

from __future__ import annotations

import os
import socket

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require(condition: bool, what: str) -> None:
    """Skip (locally) or fail (under CI) when a needed server or binary is missing."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing under CI; scripts/test.sh should have provided it")
    pytest.skip(f"{what} is not available (run scripts/services.sh)")


def require_tcp(name: str, port: int, host: str = "127.0.0.1") -> None:
    require(port_open(host, port), f"{name} on {host}:{port}")


_handed_out: set[int] = set()


def free_port() -> int:
    """A port free now and never handed out before in this process. The kernel may give the
    port it just released to the next bind, so two calls in a row (a daemon's http.listen and
    its gateway.listen) could otherwise name the same port."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free port left that this test process has not handed out already")
