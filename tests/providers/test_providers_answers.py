"""Malformed provider answers over real HTTP (a loopback server with canned answers): each is a
`MalformedAnswerError` naming what was wrong, never a crash, an empty list read as "absent", a
deployment whose id would send a delete elsewhere, or a lookup that never ends."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from autoscaler.core.status import DeploymentState
from autoscaler.fakecloud import VirtualClock
from autoscaler.providers.answers import same
from autoscaler.providers.base import (
    DeploymentInfo,
    MalformedAnswerError,
    RateLimitedError,
    TemporaryError,
)
from autoscaler.providers.http import MAX_RETRY_AFTER, parse_retry_after
from autoscaler.providers.neevcloud import MAX_PAGES
from autoscaler.providers.retry import RetryPolicy
from tests.providers.helpers import client, run
from tests.sources.httpserver import Reply, serving

LIST_PATH = {
    "neevcloud": "/api/v1beta1/orgs/org-test/projects/prj-test/aimodels",
    "netmind": "/v1/inference-service",
    "nebius": "/v0/dedicated_endpoints",
}
ID_KEY = {"neevcloud": "id", "netmind": "service_id", "nebius": "id"}
READY = {"neevcloud": "ready", "netmind": "available", "nebius": "running"}
KINDS = sorted(LIST_PATH)


def item(kind: str, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {ID_KEY[kind]: "d1", "name": "dep", "status": READY[kind]}
    if kind == "neevcloud":
        base["replicas"] = 3
    elif kind == "netmind":
        base["resource_metadata"] = {"target_instance_number": 3}
    else:
        base["scaling"] = {"min_replicas": 3, "max_replicas": 3}
    return {**base, **fields}


def listing(kind: str, items: Any) -> Any:
    if kind == "neevcloud":
        return {"items": items, "pagination": {"total_pages": 1}}
    return {"service_list" if kind == "netmind" else "endpoints": items}


def find_with(kind: str, body: Any, **reply: Any) -> Any:
    """`find("dep")` against a list answer of `body` (JSON unless bytes)."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def scenario() -> Any:
        with serving() as server:
            server.routes[LIST_PATH[kind]] = Reply(raw, content_type="application/json", **reply)
            provider: Any = client(
                kind, server.url("/"), VirtualClock(), retry=RetryPolicy(max_retries=0)
            )
            try:
                return await provider.find("dep")
            finally:
                await provider.aclose()

    return run(scenario())


def cases(kind: str) -> list[tuple[str, Any]]:
    ident = ID_KEY[kind]
    return [
        ("an error object", {"error": "internal"}),
        ("a list that is an object", listing(kind, {"a": item(kind)})),
        ("an item that is not an object", listing(kind, ["dep"])),
        ("an empty body", b""),
        ("no id", listing(kind, [item(kind, **{ident: None})])),
        ("an id that is a path", listing(kind, [item(kind, **{ident: "../../other"})])),
        ("no name", listing(kind, [item(kind, name=None)])),
        ("a name of another type", listing(kind, [item(kind, name=5)])),
        ("the name in another case", listing(kind, [item(kind, name="DEP")])),
        ("the name with spaces", listing(kind, [item(kind, name=" dep")])),
        ("two live ones", listing(kind, [item(kind), item(kind, **{ident: "d2"})])),
    ]


@pytest.mark.parametrize(
    ("kind", "what", "body"), [(k, w, b) for k in KINDS for w, b in cases(k)], ids=str
)
def test_a_malformed_list_answer_is_a_malformed_answer_error(
    kind: str, what: str, body: Any
) -> None:
    with pytest.raises(MalformedAnswerError):
        find_with(kind, body)


@pytest.mark.parametrize("kind", KINDS)
def test_a_name_in_another_case_beside_the_exact_one_is_another_deployment(kind: str) -> None:
    # "DEP" is someone else's deployment when "dep" is listed too: not a reason to fail.
    body = listing(kind, [item(kind, **{ID_KEY[kind]: "d9"}, name="DEP"), item(kind)])
    assert find_with(kind, body).id == "d1"


@pytest.mark.parametrize("kind", KINDS)
def test_a_dying_twin_still_leaves_the_live_one(kind: str) -> None:
    dying = {"neevcloud": "terminating", "netmind": "deleting", "nebius": "deleting"}[kind]
    body = listing(kind, [item(kind, **{ID_KEY[kind]: "old", "status": dying}), item(kind)])
    assert find_with(kind, body).id == "d1"


def test_neevcloud_pagination_that_never_ends_is_refused() -> None:
    """Every page full of the same deployments and no total_pages: 10,000 requests and a
    partial list before; now the loop is seen on page 2. A total past MAX_PAGES: refused."""
    full = {"items": [item("neevcloud", id=f"i{n}", name=f"x{n}") for n in range(100)]}
    with pytest.raises(MalformedAnswerError, match="pagination loops"):
        find_with("neevcloud", full)
    many = {
        "items": [item("neevcloud", name="other")],
        "pagination": {"total_pages": MAX_PAGES + 1},
    }
    with pytest.raises(MalformedAnswerError, match="total_pages"):
        find_with("neevcloud", many)


def test_a_scale_answer_about_another_deployment_is_refused() -> None:
    provider: Any = client("neevcloud", "http://127.0.0.1:9", VirtualClock())
    mine = DeploymentInfo(id="d1", name="dep", state=DeploymentState("ready", 3))
    other = provider.to_info(item("neevcloud", id="d2"))
    with pytest.raises(MalformedAnswerError, match="d2"):
        same("scale", mine, other)


@pytest.mark.parametrize(
    "value", ["inf", "1e400", "nan", "99999999", "Fri, 01 Jan 2100 00:00:00 GMT"]
)
def test_a_retry_after_is_finite_and_capped(value: str) -> None:
    seconds = parse_retry_after(value)
    assert seconds is None or 0 <= seconds <= MAX_RETRY_AFTER


def test_an_endless_retry_after_does_not_close_the_profile_for_good() -> None:
    with pytest.raises(RateLimitedError) as caught:
        find_with("nebius", {"code": "slow down"}, status=429, headers={"Retry-After": "inf"})
    assert caught.value.retry_after is None


def test_a_trickling_answer_ends_within_the_timeout() -> None:
    """Each byte well within the read timeout, the answer never complete: the whole exchange
    is bounded by the profile's timeout too (before: one lookup held until the 4 MiB cap)."""

    async def scenario() -> None:
        with serving() as server:
            server.routes[LIST_PATH["nebius"]] = Reply(b"[" * 100_000, mode="trickle", trickle=0.01)
            provider: Any = client(
                "nebius",
                server.url("/"),
                VirtualClock(),
                timeout=1.0,
                retry=RetryPolicy(max_retries=0),
            )
            try:
                with pytest.raises(TemporaryError, match="not complete within"):
                    await asyncio.wait_for(provider.find("dep"), 60)
            finally:
                await provider.aclose()

    run(scenario())
