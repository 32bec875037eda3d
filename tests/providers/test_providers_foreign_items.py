"""A malformed item in a provider's deployment list, against each simulator over real HTTP
(`answers.read_list`, `answers.pick`): an item that names another deployment is skipped, so
someone else's broken deployment does not stall every policy of the account; an item that may
be the one looked up (its name, in any case or spacing, or no readable name at all) still fails
the lookup, and nothing is created beside it. Through the provider's own `find` and `create`
and the daemon's shared list (`runtime.reads.DeploymentView`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from autoscaler.providers.base import MalformedAnswerError, Provider
from autoscaler.providers.retry import RetryPolicy
from autoscaler.runtime.reads import DeploymentView
from tests.providers.helpers import PROVIDERS, SPECS, ServedSim, client, in_process, run
from tests.runtime.daemon_support import LIST_KEYS, Mutate, Mutation

ID_KEY = {"neevcloud": "id", "netmind": "service_id", "nebius": "id"}


def adding(*extra: Any) -> Mutation:
    """A `Mutate` mutation: `extra` appended to every list answer."""

    def mutation(answer: dict[str, Any]) -> None:
        key = next(k for k in LIST_KEYS if isinstance(answer.get(k), list))
        answer[key].extend(extra)

    return mutation


def on_simulator(kind: str, scenario: Callable[[Provider, Mutate, Any], Awaitable[None]]) -> None:
    """`scenario(provider, middleware, sim)` against `kind`'s simulator served on loopback."""
    app, sim, clock = in_process(kind, provision_seconds=0.0)
    middleware = Mutate(app)

    async def go() -> None:
        with ServedSim(middleware) as served:  # type: ignore[arg-type]
            provider: Any = client(kind, served.url, clock, retry=RetryPolicy(max_retries=0))
            try:
                await scenario(provider, middleware, sim)
            finally:
                await provider.aclose()

    run(go())


def creates(sim: Any, name: str) -> list[dict[str, Any]]:
    posts = [r for r in sim.requests if r["method"] == "POST"]
    return [r for r in posts if isinstance(r["body"], dict) and r["body"].get("name") == name]


def foreign(kind: str) -> list[dict[str, Any]]:
    """Someone else's deployments, broken: no id, an id that is a path."""
    return [
        {"name": "someone-else", "status": "running"},
        {ID_KEY[kind]: "../../theirs", "name": "their-model", "status": "running"},
    ]


@pytest.mark.parametrize("kind", PROVIDERS)
def test_a_broken_foreign_deployment_leaves_every_other_lookup_working(kind: str) -> None:
    async def scenario(provider: Provider, middleware: Mutate, sim: Any) -> None:
        mine = await provider.create("dep", SPECS[kind], 1)
        middleware.mutation = adding(*foreign(kind))
        listing = await provider.list()
        assert [d.name for d in listing] == ["dep"]
        assert sorted(listing.skipped) == ["someone-else", "their-model"], listing.skipped
        assert (await provider.find("dep")).id == mine.id  # type: ignore[union-attr]
        assert (await DeploymentView(provider).find("dep")).id == mine.id  # type: ignore[union-attr]
        assert await provider.find("new-one") is None
        made = await provider.create("new-one", SPECS[kind], 1)
        assert made.name == "new-one" and len(creates(sim, "new-one")) == 1

    on_simulator(kind, scenario)


def may_be_ours(kind: str) -> list[tuple[str, Any, bool]]:
    """(what, the broken item, whether lookups of other names still work)."""
    ident = ID_KEY[kind]
    return [
        ("its name, no id", {"name": "dep", "status": "running"}, True),
        ("its name, an id that is a path", {ident: "../x", "name": "dep"}, True),
        ("its name in another case", {"name": "DEP"}, True),
        ("its name with spaces", {ident: "a/b", "name": " dep "}, True),
        ("no name", {ident: "d-1", "status": "running"}, False),
        ("an empty name", {ident: "d-1", "name": ""}, False),
        ("a blank name", {ident: "d-1", "name": "  "}, False),
        ("a name of another type", {ident: "d-1", "name": 7}, False),
        ("not an object", "dep", False),
    ]


@pytest.mark.parametrize(
    ("kind", "what", "broken", "others_work"),
    [(k, *case) for k in PROVIDERS for case in may_be_ours(k)],
    ids=str,
)
def test_a_broken_item_that_may_be_ours_fails_the_lookup(
    kind: str, what: str, broken: Any, others_work: bool
) -> None:
    """ "dep" does not exist: reading the broken item as someone else's would create it beside
    what may be the deployment itself."""

    async def scenario(provider: Provider, middleware: Mutate, sim: Any) -> None:
        other = await provider.create("other", SPECS[kind], 1)
        middleware.mutation = adding(broken)
        with pytest.raises(MalformedAnswerError):
            await provider.find("dep")
        with pytest.raises(MalformedAnswerError):
            await DeploymentView(provider).find("dep")
        with pytest.raises(MalformedAnswerError):
            await provider.create("dep", SPECS[kind], 1)
        assert creates(sim, "dep") == []
        shared = DeploymentView(provider)  # lists (NetMind's `find` knows "other"'s id)
        if others_work:
            assert (await shared.find("other")).id == other.id  # type: ignore[union-attr]
        else:
            with pytest.raises(MalformedAnswerError):
                await shared.find("other")

    on_simulator(kind, scenario)


def test_neevcloud_a_full_page_with_a_broken_item_is_still_full() -> None:
    """Without `total_pages` the list ends at a short page: a page of 100 items, one of them
    skipped, is not short (read as short, "dep" on page 2 would be absent)."""

    def broken_first(answer: dict[str, Any]) -> None:
        del answer["pagination"]
        if len(answer["items"]) == 100:
            answer["items"][0] = {"name": "someone-else", "status": "ready"}

    async def scenario(provider: Provider, middleware: Mutate, sim: Any) -> None:
        for n in range(100):
            sim.create(f"x{n}", SPECS["neevcloud"], 1, scope="org-test/prj-test")
        mine = await provider.create("dep", SPECS["neevcloud"], 1)
        middleware.mutation = broken_first
        assert (await provider.find("dep")).id == mine.id  # type: ignore[union-attr]
        assert len(await provider.list()) == 100  # 99 + dep: x0 was replaced

    on_simulator("neevcloud", scenario)


def test_the_shared_list_says_which_items_it_skipped_when_they_change() -> None:
    """One warning naming the unreadable items (not one per list), one line when they are
    readable again."""

    async def scenario(provider: Provider, middleware: Mutate, sim: Any) -> None:
        await provider.create("dep", SPECS["nebius"], 1)
        view = DeploymentView(provider)
        with capture_logs() as logs:
            await view.find("dep")
            middleware.mutation = adding(*foreign("nebius"))
            for _ in range(3):
                await view.find("dep")
            middleware.mutation = None
            await view.find("dep")
            await view.find("dep")
        said = [e for e in logs if e["event"].startswith("provider_list_items")]
        assert [e["event"] for e in said] == [
            "provider_list_items_skipped",
            "provider_list_items_readable",
        ], said
        assert said[0]["count"] == 2
        assert sorted(said[0]["items"]) == ["someone-else", "their-model"]

    on_simulator("nebius", scenario)
