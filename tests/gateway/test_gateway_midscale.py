"""A gateway that starts while a deployment is scaling (ready -> initializing: its replicas keep
serving, but NeevCloud then reports no `endpoint_url`) never saw it ready, so its own provider
client has no last route. It learns the route from the daemons (`GET /policies/{name}/route`,
answered from what the daemon's client recorded when an evaluation saw the deployment ready)
instead of holding every request until the scale ends; a Nebius-style endpoint reports its
serving replicas while `updating` and needs no one's help.

Over real HTTP, against the simulators:
- in-process separate gateways (`separate()`) and a small fake daemon that answers the route
  right, stale (another deployment id), not at all (404), or hangs: only the right answer is
  adopted, the others leave the request held (and a hanging daemon does not stall the lookups);
- `autoscaler run` and `autoscaler gateway` processes: a gateway started mid-scale answers at
  once; a daemon restarted mid-scale keeps the route it saw (saved with its state); the admin
  endpoint (token, 404s, no credential in the answer) on a daemon that started mid-scale and
  never saw the deployment ready (the gateway holds) and once the scale ends; a standby knows
  the route as the leader does.
Every request is bounded far below `max_hold` (120 s), so a regression fails in seconds.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from autoscaler.fakecloud import VirtualClock
from tests.gateway.clouds import CLOUDS, policy_yaml
from tests.gateway.support import AUTH, serving
from tests.gateway.test_gateway_clouds import CHAT, NAME, stack
from tests.gateway.test_gateway_daemon import (
    ADMIN,
    _config,
    _gateway_process,
    _gateway_section,
    _ready,
    _stop,
)
from tests.runtime.daemon_support import TOKEN, sim_server, start_daemon_process, wait_for
from tests.runtime.test_runtime_ha_harness import Database, require_services
from tests.services import free_port

pytestmark = pytest.mark.slow

NEEV = CLOUDS["neevcloud"]
BOUND = 30.0  # seconds a request may take here; held, it would take max_hold (120 s)
HELD_FOR = "3"  # X-Scale-Up-Timeout of a request that must be held: refused after 3 s


# --- in-process: a fake daemon ------------------------------------------------------------


@dataclass
class FakeDaemon:
    """The daemons' admin API as a separate gateway uses it: activation is accepted; the
    route is answered with `route` (None: 404), or never (`hang`). Records each route ask."""

    route: dict[str, Any] | None = None
    hang: bool = False
    asks: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        status, body = 200, {}
        if scope["method"] == "GET" and scope["path"].endswith("/route"):
            self.asks.append({"path": scope["path"], "headers": dict(scope["headers"])})
            if self.hang:
                await anyio.sleep_forever()
            if self.route is None:
                status, body = 404, {"error": "no route known"}
            else:
                body = self.route
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})


def daemon_answer(item: dict[str, Any], deployment_id: str | None = None) -> dict[str, Any]:
    """What a daemon that saw the NeevCloud deployment `item` ready answers."""
    return {
        "policy": "chat",
        "deployment": {"id": deployment_id or item["id"], "name": item["name"]},
        "base_url": item["endpoint_url"],
        "model": item["model_id"],
    }


async def post(client: httpx.AsyncClient, **headers: str) -> httpx.Response:
    try:
        with anyio.fail_after(BOUND):
            return await client.post("/v1/chat/completions", json=CHAT, headers={**AUTH, **headers})
    except TimeoutError:
        pytest.fail(f"no answer within {BOUND} s: the request was held past its own bound")


@pytest.mark.anyio
async def test_a_gateway_started_mid_scale_adopts_the_route_a_daemon_saw(tmp_path: Path) -> None:
    daemon = FakeDaemon()
    async with (
        serving(daemon) as daemon_url,
        stack(tmp_path, "neevcloud", scale_seconds=3600, daemons=[daemon_url]) as s,
    ):
        await s.ready()
        ready = await s.daemon.find(NAME)
        assert ready is not None and ready.status == "ready"
        await s.daemon.scale(ready, 2)  # the gateway has not looked at it yet
        item = await s.cloud.deployed(s.sim_url, NAME)
        assert item["status"] != "ready" and not item["endpoint_url"]
        seen_ready = {**item, "endpoint_url": ready.endpoint_url}  # what the daemon saw
        daemon.route = daemon_answer(seen_ready)
        async with httpx.AsyncClient(base_url=s.url, timeout=BOUND) as client:
            for _ in range(3):
                r = await post(client)
                assert r.status_code == 200, r.text
                assert r.json()["model"] == item["model_id"]
        still = await s.daemon.find(NAME)
        assert still is not None and still.status == "initializing"  # answered mid-scale
    assert len(daemon.asks) == 1, "adopted once, then the gateway's own client keeps it"
    assert daemon.asks[0]["path"] == "/policies/chat/route"
    assert daemon.asks[0]["headers"][b"authorization"] == f"Bearer {ADMIN}".encode()
    assert len(s.recorder.inference) == 3
    for seen in s.recorder.inference:  # the gateway's own inference key went upstream
        assert dict(seen["headers"])[b"authorization"] == f"Bearer {NEEV.inference_key}".encode()


@pytest.mark.anyio
@pytest.mark.parametrize("answer", ["stale", "malformed", "none", "hang"])
async def test_without_a_right_answer_the_gateway_holds_as_before(
    tmp_path: Path, answer: str
) -> None:
    """`stale`: a daemon's answer about another deployment (one deleted since); `malformed`:
    a 200 that is not a route (a base URL that is not http); `none`: no daemon saw it ready;
    `hang`: the daemon never answers (the lookups go on meanwhile)."""
    daemon = FakeDaemon(hang=answer == "hang")
    async with (
        serving(daemon) as daemon_url,
        stack(tmp_path, "neevcloud", scale_seconds=3600, daemons=[daemon_url]) as s,
    ):
        await s.ready()
        ready = await s.daemon.find(NAME)
        assert ready is not None
        await s.daemon.scale(ready, 2)
        item = await s.cloud.deployed(s.sim_url, NAME)
        if answer == "stale":  # right in every way but the id: adopting it would answer 200
            item = {**item, "endpoint_url": ready.endpoint_url}
            daemon.route = daemon_answer(item, deployment_id="neev-deleted-since")
        if answer == "malformed":  # the right id, but no URL one could send to
            item = {**item, "endpoint_url": "file:///etc/passwd"}
            daemon.route = daemon_answer(item, deployment_id=ready.id)
        lookups = len(s.recorder.api)
        async with httpx.AsyncClient(base_url=s.url, timeout=BOUND) as client:
            r = await post(client, **{"X-Scale-Up-Timeout": HELD_FOR})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "hold_timeout"
        assert not s.recorder.inference
        lists = [p for m, p in s.recorder.api[lookups:] if m == "GET"]
    assert 1 <= len(daemon.asks) <= 2, "asked, and at most once per few seconds"
    assert daemon.asks[0]["headers"][b"authorization"] == f"Bearer {ADMIN}".encode()
    if answer == "hang":
        assert len(lists) >= 3, "the lookups went on while the daemon did not answer"


@pytest.mark.anyio
async def test_a_nebius_endpoint_updating_with_serving_replicas_needs_no_prior_route(
    tmp_path: Path,
) -> None:
    """No daemon to ask at all: the provider's `ready_replicas` says the endpoint serves."""
    async with stack(tmp_path, "nebius", scale_seconds=3600) as s:
        item = await s.ready()
        ready = await s.daemon.find(NAME)
        assert ready is not None
        await s.daemon.scale(ready, 2)
        during = await s.cloud.deployed(s.sim_url, NAME)
        assert during["status"] == "updating" and during["ready_replicas"] == 1
        async with httpx.AsyncClient(base_url=s.url, timeout=BOUND) as client:
            r = await post(client)
        assert r.status_code == 200, r.text
        assert r.json()["model"] == item["routing_key"]
        assert (await s.cloud.deployed(s.sim_url, NAME))["status"] == "updating"


# --- real processes -----------------------------------------------------------------------


def _route(daemon_url: str, policy: str = "chat", token: str | None = ADMIN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.get(f"{daemon_url}/policies/{policy}/route", headers=headers, timeout=5)


def _known(daemon_url: str) -> bool:
    try:
        return _route(daemon_url).status_code == 200
    except httpx.HTTPError:
        return False


def _post(gw: str, **headers: str) -> httpx.Response:
    try:
        return httpx.post(
            gw + "/v1/chat/completions", json=CHAT, headers={**AUTH, **headers}, timeout=BOUND
        )
    except httpx.TimeoutException:
        pytest.fail(f"no answer within {BOUND} s: the request was held past its own bound")


def _observed(daemon_url: str) -> str | None:
    """The deployment's status in the daemon's last observation of `chat` (its /status)."""
    try:
        policies = httpx.get(daemon_url + "/status", timeout=5).json()["policies"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    return (policies.get("chat", {}).get("last_observation") or {}).get("status")


def _state(sim: Any) -> tuple[str, int] | None:
    found = sim.current(NAME)
    return (found[0]["status"], found[0]["replicas"]) if found else None


def _separate_gateway(tmp_path: Path, sim_url: str, daemons: list[str]) -> tuple[Any, str]:
    port = free_port()
    folder = tmp_path / "g"
    config = _config(
        folder, sim_url, http_port=free_port(), gateway=_gateway_section(port, folder, daemons)
    )
    process = _gateway_process(config, tmp_path / "gateway.log")
    gw = f"http://127.0.0.1:{port}"
    wait_for(lambda: _ready(gw + "/healthz"), 60, "gateway up")
    return process, gw


def _daemon_scaling(
    tmp_path: Path, sim: Any, log: str
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """A daemon (no `gateway:` section) that created the deployment, saw it ready, and was
    then reloaded to `min: 2`: (its process, its URL, its config) once the deployment scales
    (the scale outlasts the test)."""
    http_port = free_port()
    daemon_url = f"http://127.0.0.1:{http_port}"
    folder = tmp_path / "d"
    config = _config(folder, sim.url, http_port=http_port)
    policy = folder / "policies" / "chat.yaml"
    policy.write_text(policy_yaml(NEEV.spec, min_replicas=1, interval="1s"))
    process = start_daemon_process(config, log=tmp_path / log)
    try:
        wait_for(lambda: _ready(daemon_url + "/readyz"), 60, "daemon ready")
        wait_for(lambda: _state(sim) == ("ready", 1), 60, "created and ready")
        wait_for(lambda: _known(daemon_url), 60, "the daemon seeing it ready")
        policy.write_text(policy_yaml(NEEV.spec, min_replicas=2, interval="1s"))
        process.send_signal(signal.SIGHUP)
        wait_for(lambda: _state(sim) == ("initializing", 2), 60, "the daemon scaling to 2")
        wait_for(lambda: _observed(daemon_url) == "initializing", 60, "a pass saved after it")
    except BaseException:
        _stop(process)
        raise
    return process, daemon_url, config


def test_a_gateway_process_started_while_the_daemon_scales_answers_at_once(tmp_path: Path) -> None:
    """Only the daemon's evaluations saw the deployment ready; a gateway started during the
    scale asks it."""
    with sim_server(0.5, scale_seconds=600) as sim:
        daemon, daemon_url, _config_file = _daemon_scaling(tmp_path, sim, "daemon.log")
        processes: list[subprocess.Popen[bytes]] = [daemon]
        try:
            gateway, gw = _separate_gateway(tmp_path, sim.url, [daemon_url])
            processes.append(gateway)
            r = _post(gw)
            assert r.status_code == 200, r.text
            item = asyncio.run(NEEV.deployed(sim.url, NAME))
            assert r.json()["model"] == item["model_id"]  # the fake vLLM's answer
            assert r.json()["choices"][0]["message"]["content"]
            assert _state(sim) == ("initializing", 2), "answered before the scale ended"
        finally:
            for process in processes:
                _stop(process)
    assert "route_learned" in (tmp_path / "gateway.log").read_text()


def test_a_daemon_restarted_mid_scale_keeps_the_route_it_saw(tmp_path: Path) -> None:
    """The route a daemon saw is saved with its state: restarted while the deployment scales
    (it then sees it only `initializing`), it still knows where the deployment serves, so its
    gateway and the gateways that ask it keep routing instead of holding until the scale ends."""
    with sim_server(0.5, scale_seconds=600) as sim:
        process, daemon_url, config = _daemon_scaling(tmp_path, sim, "daemon1.log")
        try:
            seen = _route(daemon_url).json()
        finally:
            _stop(process)
        process = start_daemon_process(config, log=tmp_path / "daemon2.log")
        try:
            wait_for(lambda: _ready(daemon_url + "/readyz"), 60, "daemon ready again")
            wait_for(lambda: _observed(daemon_url) == "initializing", 60, "seeing it scaling")
            known = _route(daemon_url)
            assert known.status_code == 200, f"the restarted daemon lost the route: {known.text}"
            assert known.json() == seen
            assert _state(sim) == ("initializing", 2), "known before the scale ended"
            stored = (tmp_path / "state.db").read_bytes().decode("latin-1")
            for secret in (NEEV.inference_key, TOKEN, ADMIN):
                assert secret not in stored
        finally:
            _stop(process)


def test_the_route_endpoint_on_a_daemon_started_mid_scale(tmp_path: Path) -> None:
    """The deployment was made and scaled before any daemon on this store saw it: the daemon
    has seen nothing ready and has no saved route, so it knows none and a gateway holds. Once
    the scale ends it knows one; the answer never holds the inference credential."""
    clock = VirtualClock()
    with sim_server(10.0, clock=clock, scale_seconds=600) as sim:
        made = sim.create(NAME, NEEV.spec)
        clock.advance(10)
        scaled = httpx.put(
            f"{sim.url}{NEEV.list_path}/{made['id']}/scale",
            json={"replicas": 2},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert scaled.status_code == 200, scaled.text
        assert _state(sim) == ("initializing", 2)
        http_port = free_port()
        daemon_url = f"http://127.0.0.1:{http_port}"
        folder = tmp_path / "d"
        config = _config(folder, sim.url, http_port=http_port)
        (folder / "policies" / "chat.yaml").write_text(  # 2: the count it is scaling to
            policy_yaml(NEEV.spec, min_replicas=2, interval="1s")
        )
        processes: list[subprocess.Popen[bytes]] = []
        try:
            processes.append(start_daemon_process(config, log=tmp_path / "daemon.log"))
            wait_for(lambda: _ready(daemon_url + "/readyz"), 60, "daemon ready")
            wait_for(lambda: _observed(daemon_url) == "initializing", 60, "the daemon observing it")
            for token in (None, "wrong-token-of-some-length"):
                refused = _route(daemon_url, token=token)
                assert refused.status_code == 401, refused.text
                assert refused.headers["www-authenticate"].startswith("Bearer")
            unknown = _route(daemon_url, policy="nope")
            assert unknown.status_code == 404 and "nope" in unknown.json()["error"]
            none = _route(daemon_url)
            assert none.status_code == 404 and "no route" in none.json()["error"]

            gateway, gw = _separate_gateway(tmp_path, sim.url, [daemon_url])
            processes.append(gateway)
            held = _post(gw, **{"X-Scale-Up-Timeout": HELD_FOR})
            assert held.status_code == 503, held.text
            assert held.json()["error"]["code"] == "hold_timeout"

            clock.advance(600)  # the scale ends
            wait_for(lambda: _known(daemon_url), 60, "the daemon seeing it ready")
            known = _route(daemon_url)
            item = asyncio.run(NEEV.deployed(sim.url, NAME))
            assert known.json() == {
                "policy": "chat",
                "deployment": {"id": made["id"], "name": NAME},
                "base_url": item["endpoint_url"].rstrip("/"),
                "model": item["model_id"],
            }
            for secret in (NEEV.inference_key, TOKEN, ADMIN):
                assert secret not in known.text
                assert all(secret not in value for value in known.headers.values())
            answered = _post(gw)
            assert answered.status_code == 200, answered.text
        finally:
            for process in processes:
                _stop(process)


def test_a_standby_knows_the_route_as_the_leader_does(tmp_path: Path) -> None:
    """Standbys evaluate (observe, decide, never act): their clients see the deployment ready
    too, so a gateway can ask any daemon."""
    require_services()
    db = Database().create()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with sim_server(0.5) as sim:
            urls = []
            for i in range(2):
                port = free_port()
                folder = tmp_path / f"d{i}"
                config = _config(folder, sim.url, http_port=port, state=db.dsn())
                (folder / "policies" / "chat.yaml").write_text(
                    policy_yaml(NEEV.spec, min_replicas=1, interval="1s")
                )
                processes.append(start_daemon_process(config, log=tmp_path / f"daemon{i}.log"))
                urls.append(f"http://127.0.0.1:{port}")

            def roles() -> list[str]:
                found = []
                for url in urls:
                    try:
                        found.append(str(httpx.get(url + "/readyz", timeout=2).json()["role"]))
                    except (httpx.HTTPError, ValueError, KeyError):
                        found.append("?")
                return sorted(found)

            wait_for(lambda: roles() == ["leader", "standby"], 90, "one leader, one standby")
            wait_for(lambda: _state(sim) == ("ready", 1), 60, "created and ready")
            for url in urls:
                wait_for(lambda url=url: _known(url), 60, f"{url} seeing it ready")
            answers = [_route(url).json() for url in urls]
            assert answers[0] == answers[1]
            assert answers[0]["deployment"]["id"] == sim.current(NAME)[0]["id"]
    finally:
        for process in processes:
            _stop(process)
        db.drop()
