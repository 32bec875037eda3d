"""Every garbage kind, at daemon level: a real daemon (in this process) scaling a deployment of
the NeevCloud simulator (real HTTP) on three metrics (`prometheus`, `http_json`, `promql`)
served by a real garbage server. The deployment is at 3 replicas; each garbage kind is then
served for longer than `scale_to_zero.after` (and at least 6 evaluations): no scale-down, no
delete, not one provider write, for any kind. Before the fix, a negative value or a duplicate
JSON key read as idle and the deployment was scaled down and deleted within seconds.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

from autoscaler.policy.loader import load_daemon
from autoscaler.runtime.daemon import Daemon
from autoscaler.runtime.metrics import Metrics
from tests.hardening.garbage import SOURCE_TYPES, garbage_kinds, good, serve, source_yaml
from tests.runtime.daemon_support import CREATE_SPEC, await_for, sim_server, write_config
from tests.sources.httpserver import LocalHttpServer

pytestmark = pytest.mark.anyio

IDLE_AFTER = 1.0
EVALUATIONS_PER_KIND = 6
REPLICAS = 3  # GOOD_VALUE 15 / 5 per replica


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def garbage_policy(name: str, base: str) -> str:
    spec = "\n".join(
        f"    {k}: {v if not isinstance(v, dict) else '{max_model_len: 8192}'}"
        for k, v in CREATE_SPEC.items()
    )
    metrics = "\n".join(
        f"  - name: {t}\n    source: {source_yaml(t, base)}\n"
        "    target: {type: average_value, value: 5}"
        for t in SOURCE_TYPES
    )
    activation = "\n".join(f"    - {{metric: {t}, threshold: 0}}" for t in SOURCE_TYPES)
    return f"""name: {name}
deployment:
  provider: sim
  name: {name}
  create:
{spec}
replicas: {{min: 0, max: 4}}
interval: 0.3s
metrics:
{metrics}
behavior:
  scale_up:
    stabilization_window: 0s
    cooldown: 0s
    policies:
      - {{type: replicas, value: 4, period: 1s}}
  scale_down:
    stabilization_window: 0s
    cooldown: 0s
    policies:
      - {{type: percent, value: 100, period: 1s}}
scale_to_zero:
  after: {IDLE_AFTER:g}s
  activation:
{activation}
on_metric_failure:
  after: 2
  action: hold
"""


@pytest.mark.slow
async def test_no_garbage_kind_scales_down_or_deletes(tmp_path: Path) -> None:
    name = f"garbage-{uuid.uuid4().hex[:8]}"
    metrics_server = LocalHttpServer().start()
    serve(metrics_server, good())
    kinds = garbage_kinds()
    try:
        with sim_server(provision_seconds=0.2) as sim:
            policy = garbage_policy(name, metrics_server.url(""))
            config_path = write_config(tmp_path, sim.url, {name: policy})
            config, policies = load_daemon(config_path)
            daemon = Daemon(config, policies, config_path=str(config_path), recorder=Metrics())

            def deployment() -> dict[str, Any] | None:
                found = sim.current(name)
                return found[0] if found else None

            def writes() -> list[dict[str, Any]]:
                requests: list[dict[str, Any]] = sim.app.state.sim.requests
                return list(requests)

            async with anyio.create_task_group() as tg:
                await tg.start(daemon.run)
                try:
                    runner = daemon.runners[name]
                    await await_for(
                        lambda: (
                            (d := deployment()) is not None
                            and d["replicas"] == REPLICAS
                            and (runner.status_info.last_observation or {}).get("status") == "ready"
                        ),
                        60,
                        f"created and at {REPLICAS} ready replicas on good metrics",
                    )
                    for kind, answers in kinds.items():
                        before = writes()
                        serve(metrics_server, answers)
                        start = runner.status_info.evaluations
                        started = anyio.current_time()
                        await await_for(
                            lambda start=start, started=started: (
                                runner.status_info.evaluations - start >= EVALUATIONS_PER_KIND
                                and anyio.current_time() - started > 2 * IDLE_AFTER
                            ),
                            120,
                            f"{EVALUATIONS_PER_KIND} evaluations on {kind}",
                        )
                        now = deployment()
                        assert now is not None, f"{kind}: the deployment was deleted"
                        assert now["replicas"] == REPLICAS, f"{kind}: scaled to {now['replicas']}"
                        assert writes() == before, (
                            f"{kind}: provider writes {writes()[len(before) :]}"
                        )
                        decision = daemon.status()["policies"][name]["last_decision"]
                        assert decision["action"] == "none", (kind, decision)
                        # Good data again between kinds: the next kind starts from a fresh
                        # idle clock and a recovered source.
                        serve(metrics_server, good())
                        done = runner.status_info.evaluations
                        await await_for(
                            lambda done=done: runner.status_info.evaluations - done >= 2,
                            60,
                            f"recovered after {kind}",
                        )
                finally:
                    daemon.request_stop()
    finally:
        metrics_server.stop()
