"""The daemon over a state store holding rows it cannot use (a bad restore, a hand edit, a torn
write, a newer autoscaler): in this process, against the NeevCloud simulator over HTTP and a
real SQLite file written past the store's checks. It starts, says once per row what is wrong
and for which policy, keeps every other policy going, and never acts on garbage."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from autoscaler.store.sqlite import SQLiteStore
from tests.runtime.daemon_support import CREATE_SPEC, TOKEN, SimServer, await_for, sim_server
from tests.runtime.test_runtime_loop_faults import (
    Depth,
    evaluations,
    http_policy,
    replicas,
    running,
)
from tests.sources.httpserver import LocalHttpServer, serving

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def make_store(tmp: Path) -> Path:
    """The daemon's state file, with its schema, before the daemon first opens it."""
    path = tmp / "state.db"
    store = SQLiteStore(str(path))
    await store.open()
    await store.close()
    return path


def raw(path: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Rows written past the store's checks (the kind's CHECK constraint included)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA ignore_check_constraints = ON")
        for sql, args in statements:
            conn.execute(sql, args)
        conn.commit()
    finally:
        conn.close()


def intent_row(policy: str, kind: str, payload: str) -> tuple[str, tuple[Any, ...]]:
    return (
        "INSERT INTO intents (policy, kind, payload, created_at) VALUES (?, ?, ?, 1.0)",
        (policy, kind, payload),
    )


def outcomes(path: Path) -> dict[str, list[dict[str, Any] | None]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT policy, outcome FROM intents ORDER BY id").fetchall()
    finally:
        conn.close()
    out: dict[str, list[dict[str, Any] | None]] = {}
    for policy, outcome in rows:
        out.setdefault(policy, []).append(None if outcome is None else json.loads(outcome))
    return out


async def deployed(
    sim: SimServer, src: LocalHttpServer, name: str, depth: float
) -> tuple[Depth, dict[str, Any]]:
    """The deployment `name` created at 1 replica (the simulator's answer), its metric
    endpoint answering `depth`."""
    load = Depth(depth)
    src.routes["/depth"] = load.reply
    made = sim.create(name)
    await await_for(lambda: replicas(sim, name) == 1, 10, "created")
    return load, made


NAMES = ("aaa", "bbb", "ccc")


async def test_broken_intent_rows_are_resolved_without_a_call_and_block_nobody(
    tmp_path: Path,
) -> None:
    """Payloads that are not JSON, of the wrong types, an unknown kind: on the old code the
    first one read stopped the daemon's start. Now each is resolved `unreadable` without a
    provider call, the sound one is reconciled as usual, and every policy scales."""
    path = await make_store(tmp_path)
    raw(
        path,
        intent_row("aaa", "delete", "{not json"),
        intent_row("aaa", "teleport", json.dumps({"name": "aaa"})),
        intent_row("bbb", "scale", json.dumps({"name": "bbb", "replicas": "many"})),
        intent_row("bbb", "create", json.dumps({"name": "bbb", "spec": "garbage"})),
        intent_row("ccc", "scale", json.dumps({"name": "ccc", "replicas": 3})),
    )
    depth = Depth(40)
    with sim_server(provision_seconds=0.2) as sim, serving() as src:
        src.routes["/depth"] = depth.reply
        for name in NAMES:
            sim.create(name)
        await await_for(lambda: all(replicas(sim, n) == 1 for n in NAMES), 10, "created")
        policies = {n: http_policy(n, src.url("/depth")) for n in NAMES}
        async with running(tmp_path, sim, policies) as daemon:
            await await_for(
                lambda: all(replicas(sim, n) == 4 for n in NAMES), 30, "every policy scaled"
            )
            rows = {(r["policy"], r["kind"]): r for r in daemon.policies.reconciled}
        methods = [r["method"] for r in sim.app.state.sim.requests]
        assert "DELETE" not in methods and methods.count("POST") == 3, "only the test created"
    assert rows[("ccc", "scale")]["outcome"]["reconciled"] == "scale"
    done = outcomes(path)
    for policy, kinds in (("aaa", 2), ("bbb", 2)):
        assert len(done[policy]) >= kinds
        for outcome in done[policy][:kinds]:
            assert outcome is not None and outcome["reconciled"] == "unreadable", outcome
    assert "not a JSON object" in done["aaa"][0]["error"]  # type: ignore[index]
    assert "unknown intent kind 'teleport'" in done["aaa"][1]["error"]  # type: ignore[index]
    assert "replicas is not a count: 'many'" in done["bbb"][0]["error"]  # type: ignore[index]
    assert "spec is not an object" in done["bbb"][1]["error"]  # type: ignore[index]


ZERO = "scale_to_zero: {after: 1h, activation: [{metric: queue, threshold: 0}]}\n"
BROKEN_SPECS = {
    "not_json": "{torn",
    "create_text": json.dumps({"name": "zzz", "create": "garbage"}),
    "create_pairs": json.dumps({"name": "zzz", "create": [["catalog_id", "other-model"]]}),
    "no_create": json.dumps({"name": "zzz", "replicas": 1}),
}


def spec_row(policy: str, text: str) -> tuple[str, tuple[Any, ...]]:
    return (
        "INSERT INTO policy_spec (policy, spec, updated_at) VALUES (?, ?, 1.0)",
        (policy, text),
    )


def without_create(policy: str) -> str:
    """`policy` (an `http_policy`) with no `deployment.create`: a captured spec is all it has."""
    line = f"  create: {json.dumps(CREATE_SPEC)}\n"
    assert line in policy
    return policy.replace(line, "")


def creates(sim: SimServer) -> list[dict[str, Any]]:
    return [r for r in sim.app.state.sim.requests if r["method"] == "POST"]


@pytest.mark.parametrize("broken", sorted(BROKEN_SPECS))
async def test_a_broken_spec_row_is_never_a_spec_the_policys_create_brings_it_back(
    tmp_path: Path, broken: str
) -> None:
    """At zero with work arriving, the stored spec unusable: the deployment comes back from
    the policy's `deployment.create` alone (never from what the row held: the old code
    created `other-model` from a list of pairs, or failed with a bare Python error), with a
    `spec_unreadable` warning saying so."""
    path = await make_store(tmp_path)
    raw(path, spec_row("zzz", BROKEN_SPECS[broken]))
    with sim_server(provision_seconds=0.2) as sim, serving() as src, capture_logs() as logs:
        src.routes["/depth"] = Depth(40).reply
        policy = http_policy("zzz", src.url("/depth"), min_replicas=0, extra=ZERO)
        async with running(tmp_path, sim, {"zzz": policy}):
            await await_for(lambda: len(creates(sim)) >= 1, 30, "a create")
            await await_for(lambda: replicas(sim, "zzz") >= 1, 30, "ready")
        [made] = creates(sim)
        assert made["body"]["catalog_id"] == CREATE_SPEC["catalog_id"], made
        assert "DELETE" not in [r["method"] for r in sim.app.state.sim.requests]
    [said] = [e for e in logs if e["event"] == "spec_unreadable"]
    assert said["policy"] == "zzz" and said["error"], said


@pytest.mark.parametrize("policy_create", [True, False], ids=["policy_create", "no_create"])
async def test_a_recreate_never_deletes_what_it_could_not_create_again(
    tmp_path: Path, policy_create: bool
) -> None:
    """A pending recreate whose payload lost its spec, the deployment `failed`, the spec row
    broken: with the policy's `deployment.create` the failed deployment is replaced from it;
    with none, it is not deleted (the old code deleted it, then had nothing to create)."""
    path = await make_store(tmp_path)
    raw(
        path,
        spec_row("rrr", "{torn"),
        intent_row("rrr", "recreate", json.dumps({"name": "rrr", "replicas": 1})),
    )
    with sim_server(provision_seconds=0.2) as sim, serving() as src:
        _, made = await deployed(sim, src, "rrr", 5)
        sim.fail(made["id"])
        policy = http_policy("rrr", src.url("/depth"))
        policy = policy if policy_create else without_create(policy)
        async with running(tmp_path, sim, {"rrr": policy}) as d:
            if policy_create:
                await await_for(lambda: len(creates(sim)) >= 2, 30, "the recreate")
            else:
                await await_for(lambda: evaluations(d, "rrr") >= 3, 30, "evaluations")
            status = d.status()["policies"]["rrr"]
        deletes = [r for r in sim.app.state.sim.requests if r["method"] == "DELETE"]
        if policy_create:
            assert len(deletes) == 1 and made["id"] in deletes[0]["path"], deletes
            assert creates(sim)[-1]["body"]["catalog_id"] == CREATE_SPEC["catalog_id"]
        else:
            assert deletes == []
            assert len(sim.current("rrr")) == 1
            assert "the spec stored for policy 'rrr' cannot be used" in json.dumps(status)


BROKEN_STATES = {
    "not_json": "{torn",
    "core_not_an_object": json.dumps({"core": [1, 2]}),
    "no_core": json.dumps({"route": None}),
    "newer_version": json.dumps({"core": {"version": 2, "up_history": []}}),
    "negative_count": json.dumps({"core": {"version": 1, "recreates": -1}}),
    "nan_time": '{"core": {"version": 1, "idle_since": NaN}}',
    "future_cooldown": json.dumps({"core": {"version": 1, "last_action": [1e12, "scale_up"]}}),
}


def held_policy(url: str) -> str:
    """`http_policy` whose scale-down waits an hour-long stabilization window."""
    policy = http_policy("sss", url)
    return policy.replace(
        "scale_down: {stabilization_window: 0s", "scale_down: {stabilization_window: 1h"
    )


@pytest.mark.parametrize("broken", sorted(BROKEN_STATES))
async def test_a_broken_state_row_starts_fresh_without_freeing_a_scale_down(
    tmp_path: Path, broken: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The daemon starts, says once which policy's state it could not use and why, and goes
    on from a fresh state, but one that does not scale down at once: the lost state's hour
    window may have been holding the 4 replicas (the old code scaled to 1 at the first pass,
    logged nothing for a row of the wrong shape, and kept a cooldown dated in the future)."""
    path = await make_store(tmp_path)
    raw(path, ("INSERT INTO policy_state VALUES ('sss', ?, 1.0)", (BROKEN_STATES[broken],)))
    with sim_server(provision_seconds=0.2) as sim, serving() as src:
        _, made = await deployed(sim, src, "sss", 5)  # one replica's worth
        httpx.put(
            f"{sim.url}/api/v1beta1/orgs/org-t/projects/prj-t/aimodels/{made['id']}/scale",
            json={"replicas": 4},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ).raise_for_status()
        await await_for(lambda: replicas(sim, "sss") == 4, 10, "at 4 replicas")
        async with running(tmp_path, sim, {"sss": held_policy(src.url("/depth"))}) as daemon:
            await await_for(lambda: evaluations(daemon, "sss") >= 4, 30, "evaluations")
            decision = daemon.status()["policies"]["sss"]["last_decision"]
        assert replicas(sim, "sss") == 4
    assert "stabilized_down" in decision["reasons"], decision
    said = [line for line in capsys.readouterr().out.splitlines() if "state_unreadable" in line]
    assert len(said) == 1 and "policy=sss" in said[0], said


async def test_a_huge_state_row_is_read_and_trimmed(tmp_path: Path) -> None:
    """200,000 old recommendations (far more than any window holds): read, trimmed by the
    first decision, and the policy scales as usual."""
    entries = [[1_000_000.0 + i, 1] for i in range(200_000)]
    row = json.dumps({"core": {"version": 1, "up_history": entries, "down_history": entries}})
    path = await make_store(tmp_path)
    raw(path, ("INSERT INTO policy_state VALUES ('big', ?, 1.0)", (row,)))
    with sim_server(provision_seconds=0.2) as sim, serving() as src:
        await deployed(sim, src, "big", 40)
        async with running(tmp_path, sim, {"big": http_policy("big", src.url("/depth"))}):
            await await_for(lambda: replicas(sim, "big") == 4, 60, "scaled on the load")
    store = SQLiteStore(str(path))
    await store.open()
    try:
        saved = await store.load_state("big")
    finally:
        await store.close()
    assert saved is not None and len(saved["core"]["down_history"]) < 10
