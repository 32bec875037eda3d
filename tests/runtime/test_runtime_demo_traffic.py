"""Synthetic traffic and the simulated gateway of the demo: the rate profile, the queue, the
fleet read from the provider simulator, and the /metrics exposition read over real HTTP by
the daemon's own Prometheus source."""

from __future__ import annotations

import anyio
import pytest

from autoscaler.core.status import DeploymentState
from autoscaler.demo.traffic import (
    RUNNING,
    WAITING,
    DemoClock,
    Gateway,
    ModelLoad,
    RateProfile,
    SimFleet,
)
from autoscaler.fakecloud import VirtualClock, create_app
from autoscaler.policy.model import PrometheusSource
from autoscaler.runtime.http import serve_http
from autoscaler.sources.registry import build_source

SPEC = {
    "catalog_id": "meta-llama-Llama-3.1-8B-Instruct",
    "region": "in-west-1",
    "gpu_config_id": "h100-80gb",
    "gpu_count": 1,
    "plan_id": "ondemand-h100",
}


def test_rate_profile_interpolates_and_repeats() -> None:
    profile = RateProfile(((0, 1.0), (10, 1.0), (20, 5.0), (30, 0.0)), period=40)
    assert profile.rate_at(5) == 1.0
    assert profile.rate_at(15) == 3.0
    assert profile.rate_at(25) == 2.5
    assert profile.rate_at(35) == 0.0  # after the last point, its rate holds
    assert profile.rate_at(55) == 3.0  # the next cycle
    step = RateProfile(((0, 4.0), (8, 4.0), (8, 0.0), (20, 0.0)))
    assert step.rate_at(7.9) == 4.0 and step.rate_at(8) == 0.0
    for bad in ((), ((1, 1.0),), ((0, 1.0), (5, -1.0)), ((0, 1.0), (5, 1.0), (2, 1.0))):
        with pytest.raises(ValueError):
            RateProfile(bad)  # type: ignore[arg-type]


def run_queue(model: ModelLoad, replicas: int, until: float, dt: float = 0.1) -> None:
    t = model._last_t or 0.0
    while t < until - 1e-9:
        t = round(t + dt, 6)
        model.step(t, replicas)


def test_queue_fills_without_replicas_and_drains_with_them() -> None:
    model = ModelLoad("m", "d", RateProfile(((0, 2.0), (100, 2.0))), service_seconds=2.0, slots=4)
    model.step(0.0, 0)
    run_queue(model, 0, 10.0)
    assert model.arrived == 20 and model.waiting == 20 and model.running == 0
    # Three replicas x 4 slots = 12 at once; 2 s each -> 6 req/s capacity > 2 req/s offered.
    run_queue(model, 3, 30.0)
    assert model.waiting == 0
    assert model.running <= 12
    assert model.served + model.running + model.waiting == model.arrived
    # Steady state at 2 req/s x 2 s: about 4 running.
    assert 3 <= model.running <= 5


def test_queue_overload_grows_and_caps() -> None:
    model = ModelLoad("m", "d", RateProfile(((0, 10.0), (10, 10.0))), max_waiting=30, slots=2)
    model.step(0.0, 1)
    run_queue(model, 1, 10.0)
    assert model.running == 2
    assert model.waiting == 30
    assert model.dropped > 0
    assert model.served + model.running + model.waiting + model.dropped == model.arrived


def test_lost_replicas_requeue_their_requests() -> None:
    model = ModelLoad("m", "d", RateProfile(((0, 4.0), (10, 4.0))), slots=4, service_seconds=5)
    model.step(0.0, 3)
    run_queue(model, 3, 3.0)
    assert model.running == 12
    model.step(3.1, 1)
    assert model.running == 4
    assert model.served + model.running + model.waiting == model.arrived


def test_idle_profile_drains_to_zero() -> None:
    model = ModelLoad("m", "d", RateProfile(((0, 3.0), (4, 3.0), (4, 0.0), (20, 0.0))))
    model.step(0.0, 2)
    run_queue(model, 2, 19.0)
    assert (model.waiting, model.running) == (0, 0)


def test_fleet_follows_the_simulator_lifecycle() -> None:
    clock = VirtualClock()
    app = create_app("neevcloud", token="t", provision_seconds=10, clock=clock)
    sim = app.state.sim
    fleet = SimFleet(sim.current)
    assert fleet.observe("chat") == DeploymentState("absent", 0)
    dep = sim.create("chat", dict(SPEC), 1)
    assert fleet.observe("chat") == DeploymentState("initializing", 1, 0)
    clock.advance(10)
    assert fleet.observe("chat") == DeploymentState("ready", 1, 1)
    sim.scale(dep.id, 3)
    # Scaling up: the replica that served keeps serving while the new ones start.
    assert fleet.observe("chat") == DeploymentState("initializing", 3, 1)
    clock.advance(5)
    assert fleet.observe("chat") == DeploymentState("ready", 3, 3)
    sim.scale(dep.id, 2)
    assert fleet.observe("chat") == DeploymentState("initializing", 2, 2)
    sim.delete(dep.id)
    assert fleet.observe("chat") == DeploymentState("terminating", 2, 0)
    clock.advance(10)
    assert fleet.observe("chat") == DeploymentState("absent", 0)


def test_demo_clock() -> None:
    wall = [100.0]
    clock = DemoClock(speed=3, wall=lambda: wall[0])
    assert clock.now() == 0.0
    clock.start()
    wall[0] = 102.0
    assert clock.now() == 6.0
    with pytest.raises(ValueError):
        DemoClock(speed=0)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_gateway_serves_vllm_gauges_to_the_prometheus_source(anyio_backend: str) -> None:
    sim_clock = VirtualClock()
    app = create_app("neevcloud", token="t", provision_seconds=1, clock=sim_clock)
    sim = app.state.sim
    wall = [0.0]
    clock = DemoClock(speed=1, wall=lambda: wall[0])
    clock.start()
    chat = ModelLoad("demo/chat", "chat", RateProfile(((0, 5.0), (60, 5.0))), slots=2)
    batch = ModelLoad("demo/batch", "batch", RateProfile(((0, 0.0), (60, 0.0))))
    gateway = Gateway([chat, batch], SimFleet(sim.current), clock)
    sim.create("chat", dict(SPEC), 1)
    sim_clock.advance(1)  # chat ready with one replica (2 slots)
    gateway.tick()
    wall[0] = 4.0  # 20 requests arrived: 2 running, 18 waiting
    async with anyio.create_task_group() as tg:
        host, port = await tg.start(serve_http, gateway.app(), "127.0.0.1:0")
        url = f"http://{host}:{port}/metrics"

        async def read(metric: str, model: str) -> float:
            spec = PrometheusSource(urls=(url,), metric=metric, labels={"model_name": model})
            source = build_source(spec, name=metric)
            try:
                return await source.read()
            finally:
                await source.aclose()

        assert await read(WAITING, "demo/chat") == 18
        assert await read(RUNNING, "demo/chat") == 2
        assert await read(WAITING, "demo/batch") == 0
        tg.cancel_scope.cancel()
    assert gateway.fleet_state["chat"] == DeploymentState("ready", 1, 1)
    assert gateway.fleet_state["batch"] == DeploymentState("absent", 0)
