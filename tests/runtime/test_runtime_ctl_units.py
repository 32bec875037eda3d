"""The pieces of the operator commands without a daemon: the history query, the cancel-override
and history routes, a standby's 409, the status table, URLs from `http.listen`."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from autoscaler.cli import main
from autoscaler.ctl.client import listen_url, resolve_target
from autoscaler.ctl.table import format_status
from autoscaler.runtime.http import parse_history_query
from autoscaler.runtime.protocols import NotLeaderError
from tests.runtime.test_runtime_http_app import FakeControl, bearer, make_client
from tests.services import free_port

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


class _Served:
    """A handler class served on a free loopback port in a thread, as `with`."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _NotADaemon(_StatusHandler):
    """Another service on the daemon's port: 200 to everything, with HTML or a JSON list."""

    body = b"<html>welcome</html>"
    paths: list[str] = []

    def do_GET(self) -> None:
        self.paths.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.body)

    do_POST = do_GET


@pytest.mark.parametrize("body", [b"<html>welcome</html>", b"[1, 2]"])
@pytest.mark.parametrize(
    "argv",
    [["status"], ["history", "chat"], ["pause", "chat"], ["override", "chat", "--replicas", "2",
     "--for", "1m"]],
)  # fmt: skip
def test_an_answer_that_is_not_a_daemons_is_an_error_not_a_traceback(
    argv: list[str],
    body: bytes,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUTOSCALER_ADMIN_TOKEN", "t" * 20)
    monkeypatch.setattr(_NotADaemon, "body", body)
    with _Served(_NotADaemon) as url:
        assert main([*argv, "--url", url]) == 1
    out, err = capsys.readouterr()
    assert "not a JSON object" in out + err and "autoscaler daemon" in out + err, out + err


def test_the_leader_hint_only_follows_a_standby(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon that is down is not a standby: no advice to give every daemon's URL."""
    monkeypatch.setenv("AUTOSCALER_ADMIN_TOKEN", "t" * 20)
    assert main(["pause", "chat", "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the daemon" in err and "--url" not in err, err

    class Standby(_StatusHandler):
        def do_POST(self) -> None:
            self.send_response(409)
            self.end_headers()
            self.wfile.write(b'{"error": "this daemon is a standby", "role": "standby"}')

    with _Served(Standby) as url:
        assert main(["pause", "chat", "--url", url]) == 1
    err = capsys.readouterr().err
    assert "HTTP 409: this daemon is a standby" in err and "give every daemon's --url" in err


def test_history_limit_is_sent_as_given(capsys: pytest.CaptureFixture[str]) -> None:
    """`--limit 0` goes to the daemon (which refuses it), never quietly means "all"."""

    class History(_NotADaemon):
        paths: list[str] = []
        body = b'{"entries": []}'

    with _Served(History) as url:
        assert main(["history", "chat", "--limit", "0", "--url", url]) == 0
    assert History.paths == ["/policies/chat/history?limit=0"]


def test_status_watch_redraws_until_stopped() -> None:
    with _Served(_StatusHandler) as url:
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
    assert code == 130  # Ctrl-C ends the watch quietly


class _Overrides(_StatusHandler):
    """A leader that takes every override; keeps the bodies it was sent."""

    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.bodies.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(json.dumps({"override": {"replicas": 2, "until": "later"}}).encode())


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        (["--for", "-5m"], "expected a positive duration up to 365d like 30m"),
        (["--for"], "expected a positive duration up to 365d like 30m"),
        (["--for=-5m"], '"-5m" is not a positive duration up to 365d like 30m'),
        (["--for", "0s"], '"0s" is not a positive duration'),
        (["--for", "400d"], '"400d" is not a positive duration up to 365d'),
        (["--for", "soon"], '"soon" is not a positive duration'),
    ],
)
def test_a_bad_override_duration_is_a_usage_error_naming_the_flag(
    given: list[str],
    shown: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Refused before anything is sent (exit 2, as for any usage error), never an argparse
    puzzle (`-5m` read as an option) nor a 400 from the daemon."""
    monkeypatch.setenv("AUTOSCALER_ADMIN_TOKEN", "t" * 20)
    monkeypatch.setattr(_Overrides, "bodies", [])
    with _Served(_Overrides) as url, pytest.raises(SystemExit) as exit:
        main(["override", "chat", "--replicas", "2", *given, "--url", url])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert f"autoscaler override: error: argument --for: {shown}" in err, err
    assert "(a bare number is seconds)" in err and _Overrides.bodies == []


@pytest.mark.parametrize("given", ["5", "1h30m", "365d"])
def test_an_override_duration_goes_to_the_daemon_as_given(
    given: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bare number is seconds, as in a policy file."""
    monkeypatch.setenv("AUTOSCALER_ADMIN_TOKEN", "t" * 20)
    monkeypatch.setattr(_Overrides, "bodies", [])
    with _Served(_Overrides) as url:
        assert main(["override", "chat", "--replicas", "2", "--for", given, "--url", url]) == 0
    assert _Overrides.bodies == [{"replicas": 2, "duration": given}]
    assert "chat: held at 2 until later" in capsys.readouterr().out
