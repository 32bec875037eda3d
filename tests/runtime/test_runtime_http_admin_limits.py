"""Admin API limits (issue 14 §2): request bodies are read with a cap while they stream (413
past it, nothing past the cap is buffered), and refused admin requests are logged with a rate
limit (one line per interval and reason, with the count of the ones not logged)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from autoscaler.runtime.http import ADMIN_MAX_BODY
from tests.runtime.test_runtime_http_app import FakeControl, bearer, make_client

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_override_body_past_the_cap_is_refused_with_413() -> None:
    control = FakeControl()
    async with make_client(control) as client:
        big = b'{"replicas": 2, "duration": "5m", "pad": "' + b"x" * (2 * ADMIN_MAX_BODY) + b'"}'
        response = await client.post("/policies/chat/override", content=big, headers=bearer())
        assert response.status_code == 413, response.text
        assert str(ADMIN_MAX_BODY) in response.json()["error"]
    assert control.calls == []


async def test_a_streamed_body_is_cut_at_the_cap_not_read_to_its_end() -> None:
    control = FakeControl()
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(10_000):  # 640 MB if it were read to the end
            sent += 65_536
            yield b"x" * 65_536

    async with make_client(control) as client:
        response = await client.post("/policies/chat/override", content=endless(), headers=bearer())
    assert response.status_code == 413
    assert control.calls == []
    assert sent < 100 * 65_536  # stopped near the cap (ASGITransport buffers a little)


async def test_a_small_body_still_works() -> None:
    control = FakeControl()
    async with make_client(control) as client:
        response = await client.post(
            "/policies/chat/override", json={"replicas": 3, "duration": "5m"}, headers=bearer()
        )
    assert response.status_code == 200, response.text
    assert control.calls == [("override", "chat", 3, 300.0)]


async def test_refused_admin_requests_are_logged_with_a_rate_limit() -> None:
    control = FakeControl()
    async with make_client(control) as client:
        with capture_logs() as logs:
            for _ in range(200):
                assert (
                    await client.post("/policies/chat/pause", headers=bearer("hunter2-presented"))
                ).status_code == 401
            for _ in range(50):
                bad = await client.post(
                    "/policies/chat/override", content=b"{not json", headers=bearer()
                )
                assert bad.status_code == 400
    refused = [e for e in logs if e["event"] == "admin_refused"]
    assert 2 <= len(refused) <= 4, refused  # one per reason in this interval, not 250
    assert {e["status"] for e in refused} == {401, 400}
    assert all("hunter2" not in str(e) for e in refused)  # a presented token is never logged
