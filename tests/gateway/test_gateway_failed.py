"""A deployment the provider reports `failed`, behind a separate gateway over real HTTP in
front of the simulators (the `stack` of test_gateway_clouds.py: no daemon, so nothing
recreates the deployment unless the test does, as an operator or the daemon would):

- `on_deployment_failure: report` (the daemon never recreates it): requests are refused at once
  with 503 `deployment_failed` and a Retry-After instead of held until `max_hold`, counted by
  outcome and logged once per model however many come; a request held while the deployment
  starts is refused when it turns failed; once it is ready again (deleted and created again by
  hand) requests are answered: the refusal does not stick. A lookup that fails (the provider
  API down) is not a failed deployment: the request stays held.
- `recreate`: held (the daemon recreates it after its backoff) and answered once it is back.

The policies' `max_hold` is 120 s. Each request carries `X-Scale-Up-Timeout: HOLD_BOUND`, which
only shortens a hold: a gateway that holds instead of refusing answers `hold_timeout` after
HOLD_BOUND seconds, which the assertions name, rather than making the test wait 120 s.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from tests.gateway.support import AUTH, sample, until
from tests.gateway.test_gateway_clouds import CHAT, NAME, Stack, _gone, stack

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

HOLD_BOUND = 30.0  # seconds a request may be held (see the module header)
HEADERS = {**AUTH, "X-Scale-Up-Timeout": f"{HOLD_BOUND:g}"}
REFUSED = "refused_deployment_failed"


async def _post(client: httpx.AsyncClient, model: str = "chat") -> httpx.Response:
    return await client.post(
        "/v1/chat/completions",
        json={**CHAT, "model": model},
        headers=HEADERS,
        timeout=HOLD_BOUND + 30,
    )


def _refused(r: httpx.Response) -> None:
    """A 503 deployment_failed with a Retry-After (not a hold that ran out: hold_timeout)."""
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "deployment_failed", r.text
    assert "failed" in r.json()["error"]["message"]
    assert int(r.headers["retry-after"]) >= 1


async def _sim(s: Stack, path: str, body: dict[str, Any] | None = None) -> None:
    async with httpx.AsyncClient(base_url=s.sim_url, timeout=10) as client:
        (await client.post(path, json=body)).raise_for_status()


async def _fail(s: Stack) -> None:
    """Turn the deployment `failed` at the provider (a GPU node lost)."""
    info = await s.daemon.find(NAME)
    assert info is not None
    await _sim(s, f"/_sim/deployments/{info.id}/fail")
    failed = await s.daemon.find(NAME)
    assert failed is not None and failed.status == "failed"


def _failure_logs(logs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["model"], e["requests"]) for e in logs if e["event"] == "deployment_failed"]


async def _api_calls(s: Stack, more: int) -> None:
    """Until the gateway has made `more` provider API calls from now (lookups)."""
    seen = len(s.recorder.api)
    await until(lambda: len(s.recorder.api) >= seen + more, 60)


@pytest.mark.parametrize("kind", ["neevcloud", "netmind", "nebius"])
async def test_report_refuses_at_once_until_the_deployment_is_ready_again(
    tmp_path: Path, kind: str
) -> None:
    async with stack(tmp_path, kind) as s:
        await s.ready()
        async with httpx.AsyncClient(base_url=s.url) as client:
            assert (await _post(client)).status_code == 200
            await _fail(s)
            with capture_logs() as logs:
                # chat: its last route now answers 404, the lookup finds it failed; then
                # refused without a lookup, or held for one. chat-b: its first lookup.
                for model in ("chat", "chat", "chat-b"):
                    _refused(await _post(client, model))
            assert s.gateway.held() == {"chat": 0, "chat-b": 0}
            # Fixed by hand: deleted and created again. Routed as usual.
            await _gone(s.daemon)
            await s.ready()
            for model in ("chat", "chat-b"):
                r = await _post(client, model)
                assert r.status_code == 200, r.text
    assert sorted(_failure_logs(logs)) == [("chat", "refused"), ("chat-b", "refused")]
    requests = "autoscaler_gateway_requests_total"
    assert sample(s.gateway, requests, model="chat", outcome=REFUSED) == 2
    assert sample(s.gateway, requests, model="chat-b", outcome=REFUSED) == 1
    assert sample(s.gateway, requests, model="chat", outcome="answered") == 2


async def test_report_refuses_a_held_request_when_the_deployment_fails(tmp_path: Path) -> None:
    async with stack(tmp_path, "netmind", provision_seconds=3600) as s:
        await s.daemon.create(NAME, s.cloud.spec, 1)  # starting for the whole test
        async with httpx.AsyncClient(base_url=s.url) as client:
            held = asyncio.ensure_future(_post(client))
            await until(lambda: s.gateway.held() == {"chat": 1})
            await _api_calls(s, 2)  # looked up while starting: still held
            assert not held.done()
            await _fail(s)
            _refused(await held)
    assert s.gateway.held() == {"chat": 0}


async def test_report_holds_while_the_lookup_fails(tmp_path: Path) -> None:
    """The provider API down says nothing about the deployment: held, not refused."""
    async with stack(tmp_path, "nebius") as s:
        await s.ready()
        await _fail(s)
        await _sim(s, "/_sim/faults", {"error_rate": 1.0, "error_status": 503})
        async with httpx.AsyncClient(base_url=s.url) as client:
            held = asyncio.ensure_future(_post(client))
            await until(lambda: s.gateway.held() == {"chat": 1})
            await _api_calls(s, 2)  # failed lookups
            assert not held.done()
            await _sim(s, "/_sim/faults", {"error_rate": 0.0})
            _refused(await held)


async def test_recreate_keeps_holding_until_the_deployment_is_back(tmp_path: Path) -> None:
    async with stack(tmp_path, "netmind", on_failure="recreate") as s:
        await s.ready()
        await _fail(s)
        async with httpx.AsyncClient(base_url=s.url) as client:
            with capture_logs() as logs:
                held = asyncio.ensure_future(_post(client))
                await until(lambda: s.gateway.held() == {"chat": 1})
                await _api_calls(s, 2)  # found failed at least once since: still held
                assert not held.done()
                await _gone(s.daemon)  # what the daemon does after its backoff
                await s.ready()
                r = await held
            assert r.status_code == 200, r.text
    assert _failure_logs(logs) == [("chat", "held")]
    requests = "autoscaler_gateway_requests_total"
    assert sample(s.gateway, requests, model="chat", outcome=REFUSED) == 0
