"""The daemon measures a deployment's start-up time for the objective stage: create -> ready,
then scale call -> a new replica ready, against the NeevCloud simulator over real HTTP (its
create takes 0.3 s, a scale 2.5 s) with the objective's signals in real Redis lists.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import pytest
import redis

from autoscaler.policy.loader import load_daemon
from autoscaler.runtime.daemon import Daemon
from autoscaler.runtime.metrics import Metrics
from tests.runtime.daemon_support import CREATE_SPEC, await_for, sim_server, write_config
from tests.services import require_tcp

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def policy(name: str, arrivals: str, service: str) -> str:
    spec = "\n".join(
        f"    {k}: {v if not isinstance(v, dict) else '{max_model_len: 8192}'}"
        for k, v in CREATE_SPEC.items()
    )
    # Redis list lengths stand in for the signals: N items = N requests/s, N seconds.
    return f"""name: {name}
deployment:
  provider: sim
  name: {name}
  create:
{spec}
replicas: {{min: 1, max: 4}}
interval: 0.3s
metrics:
  - name: arrivals
    source: {{type: redis, url: "redis://127.0.0.1:6379/0", key: "{arrivals}", timeout: 1s}}
  - name: service
    source: {{type: redis, url: "redis://127.0.0.1:6379/0", key: "{service}", timeout: 1s}}
objective:
  queue_wait: 1s
  concurrency: 1
  startup: 10m
  forecast: false
  signals: {{arrival_rate: arrivals, service_time: service}}
"""


@pytest.mark.slow
async def test_start_up_is_measured_on_create_and_on_scale(tmp_path: Path) -> None:
    require_tcp("Redis", 6379)
    r = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    arrivals, service = (f"test:startup:{uuid.uuid4().hex}:{k}" for k in ("a", "s"))
    with sim_server(provision_seconds=0.3, scale_seconds=2.5) as sim:
        config_path = write_config(tmp_path, sim.url, {"p": policy("slo-e2e", arrivals, service)})
        config, policies = load_daemon(config_path)
        daemon = Daemon(config, policies, config_path=str(config_path), recorder=Metrics())

        def startup() -> float | None:
            state = daemon.runners["slo-e2e"].state
            return None if state is None or state.objective is None else state.objective.startup

        async with anyio.create_task_group() as tg:
            await tg.start(daemon.run)
            try:
                # replicas.min 1: created from absent; create -> ready is the first measurement.
                await await_for(lambda: startup() is not None, 30, "create measured")
                first = startup()
                assert first is not None and 0.3 <= first < 10
                # 2 requests/s of 1 s on 1-slot replicas within 1 s at p99: 4 replicas (max).
                r.rpush(arrivals, 1, 2)
                r.rpush(service, 1)
                await await_for(lambda: sim.current("slo-e2e")[0]["replicas"] == 4, 30, "scaled up")
                # The scale took 2.5 s: the kept start-up moves half way toward it.
                await await_for(
                    lambda: (startup() or 0) >= 0.5 * first + 0.5 * 2.5, 30, "scale measured"
                )
                assert daemon.runners["slo-e2e"].scaled_at is None
            finally:
                daemon.request_stop()
                r.delete(arrivals, service)
