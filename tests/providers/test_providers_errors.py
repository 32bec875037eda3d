"""Error mapping at the HTTP edge: every status and transport failure becomes its typed
error, carries the provider's own code and message, and reports to `on_request`."""

from __future__ import annotations

import httpx
import pytest

from autoscaler.providers.base import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    TemporaryError,
    UnauthorizedError,
)
from autoscaler.providers.registry import build_provider
from autoscaler.providers.retry import RetryPolicy
from tests.providers.helpers import TOKEN, Sleeps, in_process, profile, run
from tests.services import free_port

BASE = "http://neev.sim"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, InvalidRequestError),
        (401, UnauthorizedError),
        (403, UnauthorizedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, InvalidRequestError),
        (429, RateLimitedError),
        (500, TemporaryError),
        (502, TemporaryError),
        (503, TemporaryError),
    ],
)
def test_each_status_maps_to_its_typed_error(status: int, error: type[ProviderError]) -> None:
    app, sim, _clock = in_process("neevcloud")
    kind = "rate_limit" if status == 429 else "error"
    sim.script(kind, status=status, retry_after=2.5)

    async def scenario() -> ProviderError:
        p = build_provider(
            profile("neevcloud", BASE),
            transport=httpx.ASGITransport(app=app),
            retry=RetryPolicy(max_retries=0),
        )
        with pytest.raises(ProviderError) as info:
            await p.list()
        return info.value

    exc = run(scenario())
    assert type(exc) is error
    assert exc.status_code == status
    assert exc.permanent == (status not in (429, 500, 502, 503))
    assert "list (GET /api/v1beta1/orgs/org-test/projects/prj-test/aimodels)" in str(exc)
    if status == 429:
        assert isinstance(exc, RateLimitedError) and exc.retry_after == 2.5
        assert exc.code == "rate_limited"
    elif status not in (401, 403):
        assert exc.code in ("internal_error", "simulated_error")
        assert "simulated fault" in str(exc)  # the provider's own message is carried
    assert TOKEN not in str(exc)


def test_a_refused_connection_is_temporary_and_reported_without_status() -> None:
    port = free_port()  # nothing listens there
    calls: list[tuple[str, str, int | None]] = []

    async def scenario() -> None:
        from autoscaler.fakecloud import VirtualClock

        clock = VirtualClock()
        p = build_provider(
            profile("neevcloud", f"http://127.0.0.1:{port}", max_retries=2),
            on_request=lambda prov, op, status, secs: calls.append((prov, op, status)),
            sleep=Sleeps(clock),
            clock=clock.monotonic,
        )
        with pytest.raises(TemporaryError, match="connection failed") as info:
            await p.list()
        assert isinstance(info.value.__cause__, httpx.ConnectError)

    run(scenario())
    assert calls == [("neevcloud-test", "list", None)] * 3


def test_a_dropped_connection_is_temporary_with_the_httpx_cause() -> None:
    app, sim, _clock = in_process("neevcloud")
    sim.script("drop")

    async def scenario() -> None:
        p = build_provider(
            profile("neevcloud", BASE),
            transport=httpx.ASGITransport(app=app),
            retry=RetryPolicy(max_retries=0),
        )
        with pytest.raises(TemporaryError) as info:
            await p.list()
        assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)

    run(scenario())
