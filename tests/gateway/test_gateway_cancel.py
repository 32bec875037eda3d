"""A client that leaves while its whole (not streamed) answer is under way, over real HTTP on
loopback: the gateway closes the upstream connection at once, whether the deployment has sent
nothing yet or the head and part of the body (vLLM then aborts the request and frees its
slot), and the request ends `cancelled` with nothing left in flight. A client that stays gets
its answer as before, over a connection the pool keeps, also one past the 1 MiB held back."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from structlog.testing import capture_logs

from tests.gateway.support import (
    AUTH,
    CHAT,
    StaticRoutes,
    Upstream,
    address,
    make_gateway,
    policy,
    raw_chat,
    route_to,
    running,
    sample,
    serving,
    until,
)

pytestmark = pytest.mark.anyio

REQUESTS = "autoscaler_gateway_requests_total"
IN_FLIGHT = "autoscaler_gateway_in_flight_requests"
FIRST_BYTES = "autoscaler_gateway_time_to_first_byte_seconds_count"


@pytest.mark.parametrize(
    ("head_first", "behind"),
    [(False, b""), (True, b""), (False, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")],
    ids=["before_head", "in_body", "pipelined"],
)
async def test_a_client_leaving_a_whole_answer_closes_the_upstream(
    head_first: bool, behind: bytes
) -> None:
    """It went unnoticed until the deployment answered (minutes, for an LLM), and counted
    `answered`; the deployment computed an answer nobody read. Also with a request pipelined
    behind it (the server tells only the newest request of a connection that it closed)."""
    upstream = Upstream(hold=asyncio.Event(), head_first=head_first)
    async with serving(upstream) as up:
        gateway = make_gateway([policy("p", "chat")], StaticRoutes({"p": route_to(up)}))
        async with running(gateway) as gw:
            _reader, writer = await asyncio.open_connection(*address(gw))
            writer.write(raw_chat(stream=False) + behind)
            await writer.drain()
            await until(lambda: sample(gateway, IN_FLIGHT, model="chat") == 1)
            if head_first:  # the head and the first bytes reached the gateway
                await until(lambda: sample(gateway, FIRST_BYTES, model="chat") == 1)
            with capture_logs() as logs:
                writer.close()
                await until(upstream.left.is_set)
                await until(lambda: sample(gateway, REQUESTS, model="chat", outcome="cancelled"))
            assert sample(gateway, IN_FLIGHT, model="chat") == 0
            assert sample(gateway, REQUESTS, model="chat", outcome="answered") == 0
            assert [e for e in logs if e["log_level"] != "debug"] == []  # as a held one leaving
            assert upstream.hold is not None
            upstream.hold.set()
    assert sample(gateway, REQUESTS, model="chat", outcome="cancelled") == 1
    assert len(upstream.seen) == 1


@pytest.mark.parametrize("head_first", [False, True], ids=["before_head", "in_body"])
async def test_a_client_that_stays_gets_its_whole_answer(head_first: bool) -> None:
    upstream = Upstream(hold=asyncio.Event(), head_first=head_first)
    async with serving(upstream) as up:
        gateway = make_gateway([policy("p", "chat")], StaticRoutes({"p": route_to(up)}))
        async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=30) as client:
            waiting = asyncio.ensure_future(
                client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
            )
            await until(lambda: len(upstream.seen) == 1)
            assert upstream.hold is not None
            upstream.hold.set()
            r = await waiting
            assert r.status_code == 200, r.text
            assert r.json()["usage"]["completion_tokens"] == 4
            again = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
            assert again.status_code == 200, again.text
    assert sample(gateway, REQUESTS, model="chat", outcome="answered") == 2
    assert sample(gateway, IN_FLIGHT, model="chat") == 0
    first, second = (seen["client"] for seen in upstream.seen)
    assert first == second  # the watched connection went back to the pool, open


async def test_an_answer_past_what_is_held_back_still_passes_whole() -> None:
    upstream = Upstream(tokens=400_000)  # "hi " * 400,000: past the 1 MiB held back
    async with serving(upstream) as up:
        gateway = make_gateway([policy("p", "chat")], StaticRoutes({"p": route_to(up)}))
        async with running(gateway) as gw, httpx.AsyncClient(base_url=gw, timeout=30) as client:
            r = await client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "hi " * 400_000
    assert sample(gateway, REQUESTS, model="chat", outcome="answered") == 1
