"""The daemon's HTTP endpoints over a small DaemonControl (the boundary), through
httpx.ASGITransport and over real HTTP served by uvicorn."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from autoscaler.runtime.http import (
    ListenAddressError,
    create_http_app,
    parse_duration,
    parse_listen,
    serve_http,
)
from autoscaler.runtime.metrics import Metrics
from autoscaler.runtime.protocols import DaemonControl, UnknownPolicyError
from autoscaler.secrets import Secret

pytestmark = pytest.mark.anyio

TOKEN = "s3cret-admin-token"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeControl:
    """A DaemonControl holding two policies; records what the admin endpoints asked for."""

    def __init__(self) -> None:
        self.policies: dict[str, dict[str, Any]] = {
            "chat": {"paused": False, "override": None, "state": {"replicas": 2}},
            "batch": {"paused": False, "override": None, "state": {"replicas": 0}},
        }
        self.problems: list[str] = []
        self.calls: list[tuple[Any, ...]] = []
        self.routes: dict[str, dict[str, Any]] = {}  # policy -> the route answer

    def status(self) -> dict[str, Any]:
        return {
            "role": "leader",
            "epoch": 3,
            "config_loaded": True,
            "policies": {
                name: {**p, "last_observation": {"waiting": float("nan")}}
                for name, p in self.policies.items()
            },
        }

    async def ready(self) -> tuple[bool, list[str]]:
        return (not self.problems, list(self.problems))

    def leadership_status(self) -> dict[str, Any]:
        return {"role": "leader", "epoch": 3}

    def _get(self, policy: str) -> dict[str, Any]:
        if policy not in self.policies:
            raise UnknownPolicyError(policy)
        return self.policies[policy]

    async def pause(self, policy: str) -> dict[str, Any]:
        self._get(policy)["paused"] = True
        self.calls.append(("pause", policy))
        return {"policy": policy, "paused": True}

    async def resume(self, policy: str) -> dict[str, Any]:
        self._get(policy)["paused"] = False
        self.calls.append(("resume", policy))
        return {"policy": policy, "paused": False}

    async def override(self, policy: str, replicas: int, duration: float) -> dict[str, Any]:
        p = self._get(policy)
        if replicas > 8:
            raise ValueError(f"replicas: {replicas} is above the policy's max 8")
        p["override"] = {"replicas": replicas, "duration": duration}
        self.calls.append(("override", policy, replicas, duration))
        return {"policy": policy, "override": p["override"]}

    async def cancel_override(self, policy: str) -> dict[str, Any]:
        self._get(policy)["override"] = None
        self.calls.append(("cancel_override", policy))
        return {"policy": policy, "override": None}

    async def history(
        self, policy: str, since: float | None, limit: int | None
    ) -> list[dict[str, Any]]:
        self._get(policy)
        self.calls.append(("history", policy, since, limit))
        return [{"t": 1.0, "observation": {"t": 1.0}, "decision": {"action": "none"}}]

    def route(self, policy: str) -> dict[str, Any] | None:
        self._get(policy)
        self.calls.append(("route", policy))
        return self.routes.get(policy)


def make_client(
    control: FakeControl, token: str | None = TOKEN, metrics: Metrics | None = None, **kw: Any
) -> httpx.AsyncClient:
    checked: DaemonControl = control
    metrics = metrics or Metrics()
    app = create_http_app(
        checked, metrics.registry, Secret(token) if token is not None else None, **kw
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://daemon")


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_metrics_exposes_the_registry() -> None:
    metrics = Metrics()
    metrics.replicas("chat", desired=4, current=2)
    async with make_client(FakeControl(), metrics=metrics) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    [sample] = families["autoscaler_desired_replicas"].samples
    assert sample.labels == {"policy": "chat"} and sample.value == 4


async def test_metrics_openmetrics_only_when_nothing_else_is_accepted() -> None:
    metrics = Metrics()
    metrics.decision("chat", "scale", ("scale_up",))
    async with make_client(FakeControl(), metrics=metrics) as client:
        response = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert response.headers["content-type"].startswith("application/openmetrics-text")
        assert response.text.endswith("# EOF\n")
        # What a Prometheus server sends: OpenMetrics preferred, text accepted -> the fast
        # classic text, with the same samples.
        prometheus_accept = (
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
            "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )
        text = await client.get("/metrics", headers={"Accept": prometheus_accept})
    assert text.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    decided = {
        (s.name, s.value)
        for f in text_string_to_metric_families(text.text)
        if f.name == "autoscaler_decisions"
        for s in f.samples
    }
    assert decided == {("autoscaler_decisions_total", 1.0)}


async def test_healthz_follows_the_alive_callback() -> None:
    alive = {"value": True}
    async with make_client(FakeControl(), alive=lambda: alive["value"]) as client:
        assert (await client.get("/healthz")).status_code == 200
        alive["value"] = False
        assert (await client.get("/healthz")).status_code == 503


async def test_readyz_lists_problems() -> None:
    control = FakeControl()
    async with make_client(control) as client:
        ok = await client.get("/readyz")
        assert ok.status_code == 200
        assert ok.json() == {"ready": True, "problems": [], "role": "leader", "epoch": 3}
        control.problems = ["store not writable: disk full"]
        bad = await client.get("/readyz")
    assert bad.status_code == 503
    assert bad.json() == {
        "ready": False,
        "problems": ["store not writable: disk full"],
        "role": "leader",
        "epoch": 3,
    }


async def test_readyz_check_that_raises_is_not_ready() -> None:
    control = FakeControl()

    async def broken() -> tuple[bool, list[str]]:
        raise RuntimeError("store gone")

    control.ready = broken  # type: ignore[method-assign]
    async with make_client(control) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert "store gone" in response.json()["problems"][0]


async def test_status_is_json_even_with_nan() -> None:
    async with make_client(FakeControl()) as client:
        response = await client.get("/status")
    assert response.status_code == 200
    body = response.json()
    assert body["epoch"] == 3
    assert body["policies"]["chat"]["last_observation"] == {"waiting": None}


async def test_admin_disabled_without_configured_token() -> None:
    control = FakeControl()
    async with make_client(control, token=None) as client:
        response = await client.post("/policies/chat/pause", headers=bearer())
    assert response.status_code == 403
    assert "admin_token" in response.json()["error"]
    assert control.calls == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer "},
    ],
)
async def test_admin_refuses_without_the_right_token(headers: dict[str, str]) -> None:
    control = FakeControl()
    async with make_client(control) as client:
        response = await client.post("/policies/chat/pause", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert TOKEN not in response.text
    assert control.calls == []


async def test_pause_and_resume() -> None:
    control = FakeControl()
    async with make_client(control) as client:
        paused = await client.post("/policies/chat/pause", headers=bearer())
        assert paused.status_code == 200 and paused.json() == {"policy": "chat", "paused": True}
        assert control.policies["chat"]["paused"] is True
        resumed = await client.post("/policies/chat/resume", headers=bearer())
        assert resumed.status_code == 200
    assert control.calls == [("pause", "chat"), ("resume", "chat")]


async def test_unknown_policy_and_action_are_404() -> None:
    control = FakeControl()
    async with make_client(control) as client:
        assert (await client.post("/policies/nope/pause", headers=bearer())).status_code == 404
        response = await client.post("/policies/chat/explode", headers=bearer())
        assert response.status_code == 404
        override = await client.post(
            "/policies/nope/override", headers=bearer(), json={"replicas": 1, "duration": 60}
        )
        assert override.status_code == 404
        assert "nope" in override.json()["error"]


@pytest.mark.parametrize(
    ("body", "duration"),
    [({"replicas": 3, "duration": "5m"}, 300.0), ({"replicas": 0, "duration": 90}, 90.0)],
)
async def test_override(body: dict[str, Any], duration: float) -> None:
    control = FakeControl()
    async with make_client(control) as client:
        response = await client.post("/policies/chat/override", headers=bearer(), json=body)
    assert response.status_code == 200
    assert control.calls == [("override", "chat", body["replicas"], duration)]


@pytest.mark.parametrize(
    ("content", "field"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (b'{"duration": "5m"}', "replicas"),
        (b'{"replicas": "3", "duration": "5m"}', "replicas"),
        (b'{"replicas": true, "duration": "5m"}', "replicas"),
        (b'{"replicas": -1, "duration": "5m"}', "replicas"),
        (b'{"replicas": 2}', "duration"),
        (b'{"replicas": 2, "duration": "soon"}', "duration"),
        (b'{"replicas": 2, "duration": -5}', "duration"),
        (b'{"replicas": 2, "duration": "5m", "force": true}', "force"),
    ],
)
async def test_override_bad_body_names_the_field(content: bytes, field: str) -> None:
    control = FakeControl()
    async with make_client(control) as client:
        response = await client.post(
            "/policies/chat/override",
            headers={**bearer(), "Content-Type": "application/json"},
            content=content,
        )
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}:")
    assert control.calls == []


async def test_override_rejected_by_the_daemon_is_400() -> None:
    async with make_client(FakeControl()) as client:
        response = await client.post(
            "/policies/chat/override", headers=bearer(), json={"replicas": 50, "duration": 60}
        )
    assert response.status_code == 400
    assert "max" in response.json()["error"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
async def test_route_needs_the_admin_token(headers: dict[str, str]) -> None:
    control = FakeControl()
    async with make_client(control) as client:
        response = await client.get("/policies/chat/route", headers=headers)
    assert response.status_code == 401 and control.calls == []
    async with make_client(control, token=None) as client:
        assert (await client.get("/policies/chat/route", headers=bearer())).status_code == 403


async def test_route_answers_what_the_daemon_knows_or_404() -> None:
    control = FakeControl()
    known = {
        "policy": "chat",
        "deployment": {"id": "dep-1", "name": "chat-dep"},
        "base_url": "http://sim/inference/chat-dep/v1",
        "model": "m",
    }
    async with make_client(control) as client:
        unknown = await client.get("/policies/nope/route", headers=bearer())
        assert unknown.status_code == 404 and "nope" in unknown.json()["error"]
        none = await client.get("/policies/chat/route", headers=bearer())
        assert none.status_code == 404 and "no route" in none.json()["error"]
        control.routes["chat"] = known
        found = await client.get("/policies/chat/route", headers=bearer())
        assert found.status_code == 200 and found.json() == known
        assert (await client.post("/policies/chat/route", headers=bearer())).status_code == 404


async def test_admin_requires_post() -> None:
    async with make_client(FakeControl()) as client:
        assert (await client.get("/policies/chat/pause", headers=bearer())).status_code == 405


def test_parse_duration_and_listen() -> None:
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("250ms") == 0.25
    assert parse_duration("45") == 45.0
    for bad in ("", "5 minutes", "0s", "m5", None, True):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:80") == ("::1", 80)
    for bad in ("9464", "host:", ":9464", "host:99999", "[::1]"):
        with pytest.raises(ListenAddressError):
            parse_listen(bad)


async def test_serves_real_http_and_stops_on_cancel() -> None:
    control = FakeControl()
    metrics = Metrics()
    metrics.decision("chat", "scale", ("scale_up",))
    app = create_http_app(control, metrics.registry, Secret(TOKEN))
    async with anyio.create_task_group() as tg:
        host, port = await tg.start(serve_http, app, "127.0.0.1:0")
        assert host == "127.0.0.1" and port > 0
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as client:
            assert (await client.get("/healthz")).status_code == 200
            text = (await client.get("/metrics")).text
            families = {f.name: f for f in text_string_to_metric_families(text)}
            [decided] = families["autoscaler_decisions"].samples
            assert decided.labels == {"action": "scale", "policy": "chat", "reason": "scale_up"}
            assert "process_resident_memory_bytes" in families
            response = await client.post("/policies/batch/pause", headers=bearer())
            assert response.status_code == 200
        tg.cancel_scope.cancel()
    assert control.policies["batch"]["paused"] is True
    # The listener is closed: the port can be bound again at once.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/healthz")


async def test_serve_refuses_an_address_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        app = create_http_app(FakeControl(), Metrics().registry, None)
        with pytest.raises(ListenAddressError, match="cannot listen"):
            await serve_http(app, f"127.0.0.1:{port}")
