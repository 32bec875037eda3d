"""Two daemons, one PostgreSQL store (a database created for the test): exactly one leads and
acts, the other stands by without writing; when the leader stops (releasing its lease) the
standby takes over, reconciles and acts. The simulator sees no duplicate deployment.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import anyio
import pytest
import redis

from autoscaler.policy.loader import load_daemon
from autoscaler.runtime.daemon import Daemon
from autoscaler.runtime.metrics import Metrics
from tests.runtime.daemon_support import await_for, policy_yaml, sim_server, write_config
from tests.services import require_tcp
from tests.store.conftest import create_database, drop_database, pg_dsn

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_standby_takes_over(tmp_path: Path) -> None:
    require_tcp("PostgreSQL", 5432)
    require_tcp("Redis", 6379)
    database = await asyncio.to_thread(create_database)
    r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    key = f"test:leader:{uuid.uuid4().hex}"
    try:
        with sim_server(provision_seconds=0.2) as sim:
            config_path = write_config(
                tmp_path,
                sim.url,
                {
                    "ha-policy": policy_yaml(
                        "ha-policy", redis_key=key, min_replicas=1, interval="0.3s"
                    )
                },
                state=pg_dsn(database),
            )
            text = config_path.read_text().replace(
                f"url: {pg_dsn(database)}", f"url: {pg_dsn(database)}\n  lease_ttl: 1.5s"
            )
            config_path.write_text(text)
            config, policies = load_daemon(config_path)
            first = Daemon(config, policies, config_path=str(config_path), recorder=Metrics())
            second = Daemon(config, policies, config_path=str(config_path), recorder=Metrics())
            async with anyio.create_task_group() as tg:
                await tg.start(first.run)
                await tg.start(second.run)
                roles = {first.status()["role"], second.status()["role"]}
                assert roles == {"leader", "standby"}
                for daemon in (first, second):  # /readyz tells the role and epoch too
                    assert daemon.leadership_status() == {
                        "role": daemon.status()["role"],
                        "epoch": daemon.status()["epoch"],
                    }
                leader, standby = (
                    (first, second) if first.status()["role"] == "leader" else (second, first)
                )
                await await_for(lambda: sim.current("ha-policy"), 20, "created by the leader")
                assert standby.status()["policies"]["ha-policy"]["last_decision"] is None or (
                    standby.status()["policies"]["ha-policy"]["last_decision"]["executed"] is False
                )
                leader.request_stop()
                await await_for(lambda: leader.lifecycle.stopped.is_set(), 20, "leader stopped")
                await await_for(
                    lambda: standby.status()["role"] == "leader", 20, "standby took over"
                )
                assert standby.status()["epoch"] is not None
                r.rpush(key, *range(20))
                await await_for(
                    lambda: (d := sim.current("ha-policy")) and d[0]["replicas"] == 4,
                    30,
                    "new leader scaled up",
                )
                standby.request_stop()
            snap = sim.snapshot()
            assert snap["names_held_twice"] == [] and snap["name_collisions"] == 0
            assert len([d for d in snap["deployments"] if d["name"] == "ha-policy"]) == 1
    finally:
        r.delete(key)
        await asyncio.to_thread(drop_database, database)
