"""The pieces of the operator commands without a daemon: the history query, the cancel-override
and history routes, a standby's 409, the status table, URLs from `http.listen`."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from autoscaler.ctl.client import listen_url, resolve_target
from autoscaler.ctl.table import format_status
from autoscaler.runtime.http import parse_history_query
from autoscaler.runtime.protocols import NotLeaderError
from tests.runtime.test_runtime_http_app import FakeControl, bearer, make_client

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000.0
JAN_15_0800 = datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, (None, None)),
        ({"since": "1h"}, (NOW - 3600, None)),
        ({"since": "90s", "limit": "5"}, (NOW - 90, 5)),
        ({"since": "2027-01-15T08:00:00Z"}, (JAN_15_0800, None)),
        ({"since": "2027-01-15T08:00:00"}, (JAN_15_0800, None)),  # no zone: UTC
    ],
)
def test_history_query(query: dict[str, str], expected: tuple[Any, Any]) -> None:
    assert parse_history_query(query, NOW) == expected


@pytest.mark.parametrize(
    ("query", "field"), [({"since": "yesterday"}, "since"), ({"limit": "0"}, "limit")]
)
def test_history_query_errors_name_the_field(query: dict[str, str], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        parse_history_query(query, NOW)


async def test_cancel_override_and_history_routes() -> None:
    control = FakeControl()
    control.policies["chat"]["override"] = {"replicas": 3}
    async with make_client(control) as client:
        assert (await client.post("/policies/chat/cancel-override")).status_code == 401
        done = await client.post("/policies/chat/cancel-override", headers=bearer())
        assert done.status_code == 200 and done.json()["override"] is None
        assert (await client.delete("/policies/chat/override", headers=bearer())).status_code == 200
        missing = await client.post("/policies/nope/cancel-override", headers=bearer())
        assert missing.status_code == 404
        history = await client.get("/policies/chat/history", params={"limit": "2"})
        assert history.status_code == 200 and history.json()["entries"][0]["t"] == 1.0
        bad = await client.get("/policies/chat/history", params={"since": "soon"})
        assert bad.status_code == 400 and bad.json()["error"].startswith("since:")
        assert (await client.get("/policies/nope/history")).status_code == 404
    assert ("cancel_override", "chat") in control.calls
    assert ("history", "chat", None, 2) in control.calls


async def test_a_standby_answers_409() -> None:
    class Standby(FakeControl):
        async def pause(self, policy: str) -> dict[str, Any]:
            raise NotLeaderError("this daemon is a standby", leader="host:1:ab")

    async with make_client(Standby()) as client:
        refused = await client.post("/policies/chat/pause", headers=bearer())
    assert refused.status_code == 409
    assert refused.json()["role"] == "standby" and refused.json()["leader"] == "host:1:ab"


def test_status_table_shows_roles_reasons_and_overrides() -> None:
    status = {
        "role": "leader",
        "epoch": 4,
        "policies": {
            "chat": {
                "deployment": "llama",
                "paused": True,
                "override": {"replicas": 3, "until": "2027-01-15T08:00:00Z", "remaining": "4m10s"},
                "last_observation": {"status": "ready", "replicas": 2, "ready_replicas": 1,
                                     "metrics": {"waiting": 7.0, "kv": None}},
                "last_decision": {"t": "2027-01-15T07:55:50Z", "action": "scale", "replicas": 3,
                                  "reasons": ["scale_up", "override"], "message": "override 3",
                                  "executed": False, "not_executed": "dry_run"},
            }
        },
    }  # fmt: skip
    daemons = [
        {"url": "http://a:9464", "role": "leader", "epoch": 4},
        {"url": "http://b:9464", "role": None, "error": "cannot reach the daemon"},
    ]
    text = "\n".join(format_status(daemons, status))
    assert "http://a:9464: leader epoch 4" in text
    assert "http://b:9464: unreachable (cannot reach the daemon)" in text
    assert "2/1/3" in text and "scale -> 3 [scale_up,override]" in text
    assert "PAUSED" in text and "OVERRIDE 3 until 2027-01-15T08:00:00Z (4m10s left)" in text
    assert "not executed (dry_run)" in text and "kv=failed" in text and "waiting=7" in text
    assert "no daemon answered" in "\n".join(format_status(daemons[1:], None))


@pytest.mark.parametrize(
    ("listen", "url"),
    [
        ("127.0.0.1:9464", "http://127.0.0.1:9464"),
        ("0.0.0.0:9000", "http://127.0.0.1:9000"),
        ("[::]:9464", "http://[::1]:9464"),
    ],
)
def test_listen_url(listen: str, url: str) -> None:
    assert listen_url(listen) == url


def test_urls_from_flags_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTOSCALER_CONFIG", raising=False)
    monkeypatch.setenv("AUTOSCALER_URL", "http://a:1/, http://b:2")
    args = argparse.Namespace(url=None, config=None)
    assert resolve_target(args).urls == ["http://a:1", "http://b:2"]
    args = argparse.Namespace(url=["http://c:3"], config=None)
    assert resolve_target(args).urls == ["http://c:3"]
    monkeypatch.delenv("AUTOSCALER_URL")
    assert resolve_target(argparse.Namespace(url=None, config=None)).urls == [
        "http://127.0.0.1:9464"
    ]


class _StatusHandler(BaseHTTPRequestHandler):
    body = b'{"role": "leader", "epoch": null, "policies": {}}'

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/status" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def test_status_watch_redraws_until_stopped() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StatusHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoscaler", "status", "--watch", "--interval", "0.2",
         "--url", url],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        frames = 0
        while frames < 3:
            line = proc.stdout.readline()
            assert line, "status --watch ended by itself"
            frames += line.startswith(f"daemon {url}: leader")
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(30)
        server.shutdown()
        server.server_close()
    assert code == 130  # Ctrl-C ends the watch quietly
