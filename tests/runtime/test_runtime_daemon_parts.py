"""`Daemon` is the composition of its parts (issue 13): what it connects to, its lifecycle, its
policies, who may act, admin control; and a few plain settings. Each part owns its state, and
the daemon starts and closes them in order (SQLite, no scheduler, nothing evaluated).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from autoscaler.policy.loader import load_daemon
from autoscaler.runtime.admin import AdminControl
from autoscaler.runtime.connections import Connections
from autoscaler.runtime.daemon import Daemon
from autoscaler.runtime.leadership import LeaderRole
from autoscaler.runtime.lifecycle import Lifecycle
from autoscaler.runtime.metrics import Metrics
from autoscaler.runtime.policyset import PolicySet
from autoscaler.runtime.protocols import UnknownPolicyError
from tests.runtime.daemon_support import policy_yaml, write_config

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_daemon(tmp_path: Path) -> Daemon:
    # Nothing listens on the provider's address: starting makes no provider call.
    config_path = write_config(
        tmp_path, "http://127.0.0.1:9", {"parts": policy_yaml("parts", redis_key="test:parts")}
    )
    config, policies = load_daemon(config_path)
    return Daemon(
        config, policies, config_path=str(config_path), recorder=Metrics(), schedule=False
    )


def test_the_daemon_is_its_parts_and_a_few_settings(tmp_path: Path) -> None:
    daemon = make_daemon(tmp_path)
    parts = {
        "connections": Connections,
        "lifecycle": Lifecycle,
        "policies": PolicySet,
        "leader": LeaderRole,
        "admin": AdminControl,
    }
    settings = {"config", "config_path", "recorder", "clock", "last_reload"}
    assert set(vars(daemon)) == set(parts) | settings
    for name, kind in parts.items():
        assert isinstance(getattr(daemon, name), kind), name
    assert daemon.runners is daemon.policies.runners


async def test_start_opens_the_parts_and_close_closes_them(tmp_path: Path) -> None:
    daemon = make_daemon(tmp_path)
    assert daemon.status()["config_loaded"] is False
    await daemon.start()
    try:
        assert list(daemon.runners) == ["parts"]
        assert daemon.connections.store is not None and daemon.connections.history is not None
        assert list(daemon.connections.providers) == ["sim"]
        assert daemon.status()["config_loaded"] is True
        assert daemon.status()["role"] == "leader"
        assert await daemon.ready() == (True, [])
        with pytest.raises(UnknownPolicyError):
            await daemon.pause("nope")
    finally:
        assert await daemon.drain(5) is True
        await daemon.close_resources()
    assert daemon.connections.providers == {}
    assert daemon.status()["stopping"] is True
