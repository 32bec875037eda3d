"""A ready deployment's replica count that is not a count (null, a string, a negative, 0, a
fraction) is reported as unreadable by every client, never made up as 1: the next decision
scales from it (tests/runtime/test_runtime_delete_safety.py shows the scale-down it caused).
NetMind documents the count as 1 or "1": a numeric string is a count there.
"""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.fakecloud import VirtualClock
from tests.providers.helpers import client

GARBAGE: list[Any] = [None, -2, 0, 2.5, True, "many"]


def item(kind: str, status: str, count: Any) -> dict[str, Any]:
    if kind == "neevcloud":
        return {"id": "d1", "name": "dep", "status": status, "replicas": count}
    if kind == "netmind":
        meta = {"target_instance_number": count}
        return {"service_id": "d1", "name": "dep", "status": status, "resource_metadata": meta}
    return {"id": "d1", "name": "dep", "status": status, "scaling": {"min_replicas": count}}


READY = {"neevcloud": "ready", "netmind": "available", "nebius": "running"}
STARTING = {"neevcloud": "initializing", "netmind": "pending", "nebius": "creating"}


# A Nebius-style floor of 0 is a setting, not garbage (test_a_nebius_floor_of_zero_...).
CASES = [
    (kind, count)
    for kind in sorted(READY)
    for count in GARBAGE
    if not (kind == "nebius" and type(count) is int and count == 0)
]


@pytest.mark.parametrize(("kind", "count"), CASES)
def test_a_ready_deployment_with_a_garbage_count_is_unreadable(kind: str, count: Any) -> None:
    provider: Any = client(kind, "http://127.0.0.1:9", VirtualClock())
    info = provider.to_info(item(kind, READY[kind], count))
    assert info.status == "ready"
    assert repr(count) in info.unreadable
    starting = provider.to_info(item(kind, STARTING[kind], count))
    assert starting.unreadable == ""  # held anyway: no decision reads its count


@pytest.mark.parametrize("kind", sorted(READY))
def test_a_count_reads_as_itself(kind: str) -> None:
    provider: Any = client(kind, "http://127.0.0.1:9", VirtualClock())
    info = provider.to_info(item(kind, READY[kind], 4))
    assert (info.replicas, info.unreadable) == (4, "")
    if kind == "netmind":
        assert provider.to_info(item(kind, READY[kind], " 3")).replicas == 3


def test_a_nebius_floor_of_zero_reads_the_replicas_serving() -> None:
    # An endpoint made with the provider's own autoscaling (min_replicas 0) is no garbage.
    provider: Any = client("nebius", "http://127.0.0.1:9", VirtualClock())
    serving = {**item("nebius", "running", 0), "ready_replicas": 3}
    assert (provider.to_info(serving).replicas, provider.to_info(serving).unreadable) == (3, "")
    quiet = item("nebius", "running", 0)
    assert (provider.to_info(quiet).replicas, provider.to_info(quiet).unreadable) == (1, "")
