"""The gateway's promise, held against misbehaving clients, deployments and its own stop: a
request it accepted ends answered, or refused with a reason (an OpenAI error with a status, or
for a stream an error event), never cut off without one. Real HTTP on loopback.

- a deployment that breaks off a whole (not streamed) answer after its head: 503
  `upstream_error`, not a 200 cut short;
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.gateway.support import (
    AUTH,
    StaticRoutes,
    make_gateway,
    policy,
    route_to,
    running,
    sample,
    serving,
)
from tests.gateway.test_gateway_proxy import CHAT, REQUESTS

pytestmark = pytest.mark.anyio


async def breaks_off(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A deployment that sends the head and part of a JSON answer, then dies."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    head = [(b"content-type", b"application/json"), (b"content-length", b"100")]
    await send({"type": "http.response.start", "status": 200, "headers": head})
    await send({"type": "http.response.body", "body": b'{"choices": [', "more_body": True})
    raise RuntimeError("deployment crashed mid-answer")


async def test_a_whole_answer_broken_off_is_refused_with_a_reason() -> None:
    async with serving(breaks_off) as up:
        gateway = make_gateway([policy("p", "chat")], StaticRoutes({"p": route_to(up)}))
        async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=30) as client:
            r = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "upstream_error"
    assert int(r.headers["retry-after"]) >= 1
    assert sample(gateway, REQUESTS, model="chat", outcome="refused_upstream_error") == 1
