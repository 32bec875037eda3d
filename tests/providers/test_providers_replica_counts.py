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


@pytest.mark.parametrize("kind", sorted(READY))
@pytest.mark.parametrize("count", GARBAGE)
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
