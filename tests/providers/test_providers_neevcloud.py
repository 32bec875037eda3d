"""NeevCloud client against its simulator in-process (httpx.ASGITransport, virtual clock):
lifecycle, spec reconstruction, pagination, login/re-login, lost create responses, secrets."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from autoscaler.fakecloud import Faults
from autoscaler.policy.model import LoginSpec, SecretRef
from autoscaler.providers.base import (
    DeploymentFailedError,
    InvalidRequestError,
    TemporaryError,
    UnauthorizedError,
)
from autoscaler.providers.registry import ProviderConfigError, build_provider
from tests.providers.helpers import SPECS, TOKEN, Sleeps, client, in_process, profile, run

BASE = "http://neev.sim"
SPEC = SPECS["neevcloud"]
PATH = "/api/v1beta1/orgs/org-test/projects/prj-test/aimodels"


def posts(sim: Any) -> list[dict[str, Any]]:
    return [r for r in sim.requests if r["method"] == "POST" and r["path"] == PATH]


def test_create_deploys_one_replica_then_wait_ready_scales_to_the_requested_count() -> None:
    app, sim, clock = in_process("neevcloud", provision_seconds=60)

    async def scenario() -> None:
        p = client("neevcloud", BASE, clock, transport=httpx.ASGITransport(app=app))
        info = await p.create("chat-llama", SPEC, 3)
        assert (info.status, info.replicas, info.endpoint_url) == ("initializing", 1, None)
        ready = await p.wait_ready("chat-llama", 600)
        assert ready.status == "ready" and ready.replicas == 3
        assert ready.endpoint_url
        assert ready.endpoint_url.endswith("/inference/chat-llama.prj-test.org-test/v1")
        assert dict(ready.spec) == SPEC  # everything recreate needs, exactly what was sent
        await p.aclose()

    run(scenario())
    assert [r["body"] for r in sim.requests if r["method"] == "PUT"] == [{"replicas": 3}]


def test_spec_is_rebuilt_from_the_response_by_a_client_that_did_not_create_it() -> None:
    app, _sim, clock = in_process("neevcloud", provision_seconds=0)

    async def scenario() -> None:
        first = client("neevcloud", BASE, clock, transport=httpx.ASGITransport(app=app))
        await first.create("chat-llama", SPEC, 1)
        fresh = client("neevcloud", BASE, clock, transport=httpx.ASGITransport(app=app))
        found = await fresh.find("chat-llama")
        assert found is not None
        # catalog_id from the slash model_id; region/gpu from the echo; plan/config not echoed
        assert dict(found.spec) == {
            "catalog_id": SPEC["catalog_id"],
            "region": SPEC["region"],
            "gpu_config_id": SPEC["gpu_config_id"],
            "gpu_count": SPEC["gpu_count"],
        }

    run(scenario())


def test_create_adopts_an_existing_deployment_of_that_name() -> None:
    app, sim, clock = in_process("neevcloud", provision_seconds=0)

    async def scenario() -> None:
        p = client("neevcloud", BASE, clock, transport=httpx.ASGITransport(app=app))
        a = await p.create("chat-llama", SPEC, 1)
        b = await p.create("chat-llama", SPEC, 1)
        assert a.id == b.id

    run(scenario())
    assert len(posts(sim)) == 1
    assert sim.name_collisions == 0


def test_list_follows_pagination_across_several_pages() -> None:
    app, sim, _clock = in_process("neevcloud", provision_seconds=0)
    for i in range(230):
        dep = sim.create(f"dep-{i:03d}", {**SPEC}, 1, scope="org-test/prj-test")
        dep.extra.update(model_id="meta-llama/Llama-3.1-8B-Instruct", model_name="Llama")
    sim.create("elsewhere", {**SPEC}, 1, scope="org-test/other")  # another project
    calls: list[tuple[str, int | None]] = []

    async def scenario() -> None:
        p = build_provider(
            profile("neevcloud", BASE),
            transport=httpx.ASGITransport(app=app),
            on_request=lambda prov, op, status, secs: calls.append((op, status)),
        )
        names = [d.name for d in await p.list()]
        assert names == [f"dep-{i:03d}" for i in range(230)]
        assert (await p.find("dep-229")) is not None
        assert (await p.find("elsewhere")) is None

    run(scenario())
    assert calls[:3] == [("list", 200)] * 3  # 100 + 100 + 30


def test_scale_to_zero_is_refused_before_any_request() -> None:
    app, sim, clock = in_process("neevcloud", provision_seconds=0)

    async def scenario() -> None:
        p = client("neevcloud", BASE, clock, transport=httpx.ASGITransport(app=app))
        info = await p.create("chat-llama", SPEC, 1)
        with pytest.raises(InvalidRequestError, match="zero means delete"):
            await p.scale(info, 0)

    run(scenario())
    assert not [r for r in sim.requests if r["method"] == "PUT"]


def test_delete_goes_through_terminating_to_gone_and_is_idempotent() -> None:
    app, sim, clock = in_process("neevcloud", provision_seconds=10, terminate_seconds=20)

    async def scenario() -> None:
        p = client("neevcloud", BASE, clock, transport=httpx.ASGITransport(app=app))
        info = await p.create("chat-llama", SPEC, 1)
        await p.delete(info)
        during = await p.find("chat-llama")
        assert during is not None and during.status == "terminating"
        clock.advance(20)
        assert await p.find("chat-llama") is None
        await p.delete(info)  # already gone: not an error

    run(scenario())
    assert [r["status"] for r in sim.requests if r["method"] == "DELETE"] == [204, 404]


def test_uptime_and_replica_seconds_follow_the_lifecycle() -> None:
    app, sim, clock = in_process("neevcloud", provision_seconds=60, scale_seconds=30)
    t0 = clock.time()

    async def scenario() -> None:
        p = client("neevcloud", BASE, clock, transport=httpx.ASGITransport(app=app))
        info = await p.create("chat-llama", SPEC, 1)
        clock.advance(100)  # ready at +60
        got = await p._request_json("get", "GET", f"{PATH}/{info.id}")  # type: ignore[attr-defined]
        assert got["uptime_seconds"] == 40
        await p.scale(info, 3)  # at +100: transitional, uptime restarts from the next ready
        got = await p._request_json("get", "GET", f"{PATH}/{info.id}")  # type: ignore[attr-defined]
        assert (got["status"], got["uptime_seconds"], got["endpoint_url"]) == (
            "initializing",
            0,
            None,
        )
        clock.advance(50)  # ready again at +130
        got = await p._request_json("get", "GET", f"{PATH}/{info.id}")  # type: ignore[attr-defined]
        assert (got["status"], got["uptime_seconds"]) == ("ready", 20)
        await p.delete(info)  # at +150, gone at +180

    run(scenario())
    clock.advance(1000)
    (dep,) = sim.deployments.values()
    assert dep.gone_at == t0 + 180
    assert sim.replica_seconds()[dep.id] == pytest.approx(100 * 1 + 80 * 3)


def test_a_failed_deployment_ends_wait_ready_with_a_typed_error() -> None:
    app, sim, clock = in_process("neevcloud", provision_seconds=60)

    async def scenario() -> None:
        p = client("neevcloud", BASE, clock, transport=httpx.ASGITransport(app=app))
        info = await p.create("chat-llama", SPEC, 1)
        sim.fail(info.id)
        with pytest.raises(DeploymentFailedError, match="failed"):
            await p.wait_ready("chat-llama", 600)
        found = await p.find("chat-llama")
        assert found is not None and found.status == "failed"

    run(scenario())


def test_provisioning_failure_fault_and_wait_ready_timeout() -> None:
    app, sim, clock = in_process(
        "neevcloud", provision_seconds=60, faults=Faults(provision_fail_rate=1.0)
    )

    async def scenario() -> None:
        p = client("neevcloud", BASE, clock, transport=httpx.ASGITransport(app=app))
        await p.create("chat-llama", SPEC, 1)
        with pytest.raises(DeploymentFailedError):
            await p.wait_ready("chat-llama", 600)
        sim.faults.provision_fail_rate = 0.0
        sim.provision_seconds = 10_000
        await p.create("slow-one", SPEC, 1)
        with pytest.raises(TemporaryError, match="not ready after 300 s"):
            await p.wait_ready("slow-one", 300)

    run(scenario())


@pytest.mark.parametrize(
    ("kind", "expected_posts"),
    [("drop_after", 1), ("error_after", 1), ("drop", 2)],
)
def test_a_lost_create_response_never_makes_a_second_deployment(
    kind: str, expected_posts: int
) -> None:
    app, sim, clock = in_process("neevcloud", provision_seconds=0)
    sim.script(kind, method="POST", path="/aimodels", status=502)

    async def scenario() -> None:
        p = client("neevcloud", BASE, clock, transport=httpx.ASGITransport(app=app))
        info = await p.create("chat-llama", SPEC, 1)
        assert info.name == "chat-llama"

    run(scenario())
    assert len(sim.current()) == 1
    assert sim.name_collisions == 0
    assert len(posts(sim)) == expected_posts  # lost-after-commit: looked up, not re-sent


def test_login_and_exactly_one_relogin_on_401() -> None:
    app, sim, clock = in_process("neevcloud", provision_seconds=0)
    os.environ["NEEV_TEST_PASSWORD"] = TOKEN
    login = LoginSpec(
        url="/api/v1/auth/login",  # a path: on the API's host (base_url has a path prefix)
        username="ops@example.com",
        password=SecretRef(env="NEEV_TEST_PASSWORD"),
    )

    async def scenario() -> None:
        p = client(
            "neevcloud",
            BASE + "/aimodels",
            clock,
            transport=httpx.ASGITransport(app=app),
            token=None,
            login=login,
        )
        await p.create("chat-llama", SPEC, 1)
        assert sim.logins == 1
        sim.revoke_tokens()  # the access token expires
        assert (await p.find("chat-llama")) is not None
        assert sim.logins == 2
        assert TOKEN not in repr(p)

    run(scenario())


def test_login_with_wrong_password_is_unauthorized_without_leaking_it() -> None:
    app, _sim, clock = in_process("neevcloud", provision_seconds=0)
    os.environ["NEEV_TEST_BAD_PASSWORD"] = "wrong-password-xyz"
    login = LoginSpec(
        url=f"{BASE}/api/v1/auth/login",
        username="ops@example.com",
        password=SecretRef(env="NEEV_TEST_BAD_PASSWORD"),
    )

    async def scenario() -> None:
        p = client(
            "neevcloud",
            BASE,
            clock,
            transport=httpx.ASGITransport(app=app),
            token=None,
            login=login,
        )
        with pytest.raises(UnauthorizedError) as info:
            await p.list()
        assert "wrong-password-xyz" not in str(info.value)
        assert "wrong-password-xyz" not in repr(p)

    run(scenario())


def test_a_bad_token_is_unauthorized_once_and_never_shown() -> None:
    app, _sim, _clock = in_process("neevcloud", provision_seconds=0)
    statuses: list[int | None] = []

    async def scenario() -> None:
        p = build_provider(
            profile("neevcloud", BASE, token="not-the-token-4242"),
            transport=httpx.ASGITransport(app=app),
            on_request=lambda prov, op, status, secs: statuses.append(status),
        )
        with pytest.raises(UnauthorizedError) as info:
            await p.list()
        assert info.value.status_code == 401 and info.value.code == "unauthorized"
        for text in (str(info.value), repr(info.value), repr(p), str(p)):
            assert "not-the-token-4242" not in text

    run(scenario())
    assert statuses == [401]  # permanent: not retried


def test_client_refuses_invalid_names_and_specs_before_sending() -> None:
    app, sim, clock = in_process("neevcloud", provision_seconds=0)

    async def scenario() -> None:
        p = client("neevcloud", BASE, clock, transport=httpx.ASGITransport(app=app))
        for name in ("ab", "Chat", "-chat", "chat-", "x" * 31, "chat_llama"):
            with pytest.raises(InvalidRequestError, match="deployment name"):
                await p.create(name, SPEC, 1)
        bad_specs: list[tuple[dict[str, Any], str]] = [
            ({k: v for k, v in SPEC.items() if k != "plan_id"}, "missing plan_id"),
            ({**SPEC, "gpu_count": 0}, "gpu_count"),
            ({**SPEC, "catalog_id": "meta-llama/Llama"}, "no slash"),
            ({**SPEC, "replicas": 2}, "unknown create spec keys replicas"),
        ]
        for spec, message in bad_specs:
            with pytest.raises(InvalidRequestError, match=message):
                await p.create("chat-llama", spec, 1)

    run(scenario())
    assert sim.requests == []


def test_profile_errors_name_the_profile() -> None:
    with pytest.raises(ProviderConfigError, match="org_id and project_id"):
        build_provider(profile("neevcloud", BASE, org_id=None))
    with pytest.raises(ProviderConfigError, match="needs a token or a login"):
        build_provider(profile("neevcloud", BASE, token=None))
    with pytest.raises(ProviderConfigError, match="must be an http"):
        build_provider(profile("netmind", "ftp://x"))


def test_wait_ready_uses_a_bounded_poll_backoff() -> None:
    app, _sim, clock = in_process("neevcloud", provision_seconds=120)

    async def scenario() -> list[float]:
        sleeps = Sleeps(clock)
        p = client("neevcloud", BASE, clock, transport=httpx.ASGITransport(app=app), sleeps=sleeps)
        await p.create("chat-llama", SPEC, 1)
        await p.wait_ready("chat-llama", 600)
        return sleeps.waits

    waits = run(scenario())
    assert waits[:3] == [1.0, 1.5, 2.25]
    assert max(waits) <= 15.0


def test_deployments_made_in_process_with_a_partial_spec_render_through_the_api() -> None:
    app, sim, clock = in_process("neevcloud", provision_seconds=0)
    sim.create("held", {}, 2, scope="org-test/prj-test")  # how the daemon's tests seed state

    async def scenario() -> None:
        p = client("neevcloud", BASE, clock, transport=httpx.ASGITransport(app=app))
        found = await p.find("held")
        assert found is not None and (found.status, found.replicas) == ("ready", 2)

    run(scenario())
