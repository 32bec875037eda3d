"""Synthetic traffic and a simulated inference gateway, for `autoscaler demo`.

A `RateProfile` says how many requests per second arrive at each moment (piecewise linear,
repeating: ramp-up, burst, idle, return). A `ModelLoad` turns that rate and the number of
replicas currently serving into a queue: each replica runs `slots` requests at once, each
request takes `service_seconds`; what does not fit waits. The `Gateway` steps every model's
queue and serves the result as a real Prometheus exposition with the gauges vLLM exports
(`vllm:num_requests_waiting`, `vllm:num_requests_running`, labelled by `model_name`), so the
daemon reads it with its ordinary Prometheus source over HTTP.

The queue is deterministic (a fractional arrival accumulator, fixed service times) so a demo
run tells the same story every time. Time here is *demo time*: `speed` compresses it, and
`SimFleet` asks the provider simulator how many replicas really serve. Nothing here decides
or talks to the daemon.
"""

from __future__ import annotations

import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

import anyio
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from autoscaler.core.status import ABSENT, STATUSES, DeploymentState, Status

WAITING = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"


@dataclass(frozen=True, slots=True)
class RateProfile:
    """Requests per second over time: linear between `points` (t seconds, rate), repeating
    every `period` seconds (the last point's time when not given)."""

    points: tuple[tuple[float, float], ...]
    period: float | None = None

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError("a rate profile needs at least one (t, rate) point")
        times = [t for t, _ in self.points]
        if times != sorted(times) or times[0] != 0:
            raise ValueError("profile points must start at t=0 and be in time order")
        if any(rate < 0 for _, rate in self.points):
            raise ValueError("rates must be >= 0")
        if self.cycle <= 0:
            raise ValueError("the profile's period must be > 0")

    @property
    def cycle(self) -> float:
        return self.period if self.period is not None else self.points[-1][0]

    def rate_at(self, t: float) -> float:
        t = t % self.cycle if t >= 0 else 0.0
        times = [p[0] for p in self.points]
        i = bisect_right(times, t) - 1
        if i >= len(self.points) - 1:
            return self.points[-1][1]
        (t0, r0), (t1, r1) = self.points[i], self.points[i + 1]
        if t1 == t0:
            return r1
        return r0 + (r1 - r0) * (t - t0) / (t1 - t0)


@dataclass
class ModelLoad:
    """One model behind the gateway: arrivals from `profile`, served by the deployment's
    replicas. Counts are whole requests."""

    model_name: str
    deployment: str  # the deployment at the provider whose replicas serve this model
    profile: RateProfile
    service_seconds: float = 2.0
    slots: int = 4  # requests one replica runs at once (vLLM max_num_seqs, scaled down)
    max_waiting: int = 400  # clients give up beyond this queue length
    waiting: int = 0
    finishing: deque[float] = field(default_factory=deque)  # finish times of running ones
    arrived: int = 0
    served: int = 0
    dropped: int = 0
    rate: float = 0.0
    _carry: float = 0.0
    _last_t: float | None = None

    @property
    def running(self) -> int:
        return len(self.finishing)

    def step(self, now: float, replicas: int) -> None:
        """Advance the queue to demo time `now` with `replicas` serving."""
        last = now if self._last_t is None else self._last_t
        dt = max(0.0, now - last)
        self._last_t = now
        # Arrivals: the integral of the (piecewise linear) rate, by the trapezoid rule.
        self.rate = self.profile.rate_at(now)
        self._carry += dt * (self.profile.rate_at(last) + self.rate) / 2
        new = int(self._carry)
        self._carry -= new
        self.arrived += new
        self.waiting += new
        while self.finishing and self.finishing[0] <= now:
            self.finishing.popleft()
            self.served += 1
        capacity = max(0, replicas) * self.slots
        # Lost replicas (scale down, delete) take their in-flight requests back to the queue.
        while len(self.finishing) > capacity:
            self.finishing.pop()
            self.waiting += 1
        while self.waiting and len(self.finishing) < capacity:
            self.waiting -= 1
            self.finishing.append(now + self.service_seconds)
        if self.waiting > self.max_waiting:
            self.dropped += self.waiting - self.max_waiting
            self.waiting = self.max_waiting


class SimFleet:
    """How many replicas of a deployment serve right now, read from the provider simulator's
    state: all of them when `ready`; while a scale is in progress the ones that served before
    keep serving (at most the new count); none while provisioning, terminating or absent."""

    def __init__(self, deployments: Callable[[], Iterable[object]]) -> None:
        self._deployments = deployments  # e.g. `sim_state.current`
        self._serving: dict[str, int] = {}

    def observe(self, name: str) -> DeploymentState:
        """The live deployment called `name` as a provider client would report it, with the
        replicas that serve now as `ready_replicas`."""
        found = [d for d in self._deployments() if getattr(d, "name", None) == name]
        status = str(getattr(found[-1], "status", "absent")) if found else "absent"
        if status == "absent" or status not in STATUSES:  # `gone`: kept for its billing
            self._serving[name] = 0
            return ABSENT
        replicas = int(getattr(found[-1], "replicas", 0))
        if status == "ready":
            serving = replicas
        elif status == "initializing":
            serving = min(self._serving.get(name, 0), replicas)
        else:
            serving = 0
        self._serving[name] = serving
        return DeploymentState(cast(Status, status), replicas, serving)


class DemoClock:
    """Demo time: wall time since `start()`, multiplied by `speed`."""

    def __init__(self, speed: float = 1.0, wall: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._wall = wall
        self._start: float | None = None

    def start(self) -> None:
        self._start = self._wall()

    def now(self) -> float:
        if self._start is None:
            return 0.0
        return (self._wall() - self._start) * self.speed


class _GatewayCollector:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def collect(self) -> Iterator[Metric]:
        models = self.gateway.models
        waiting = GaugeMetricFamily(
            WAITING, "Requests waiting to be scheduled.", labels=["model_name"]
        )
        running = GaugeMetricFamily(RUNNING, "Requests running on replicas.", labels=["model_name"])
        rate = GaugeMetricFamily(
            "demo_offered_requests_per_second",
            "Synthetic arrival rate (demo time).",
            labels=["model_name"],
        )
        for model in models:
            waiting.add_metric([model.model_name], model.waiting)
            running.add_metric([model.model_name], model.running)
            rate.add_metric([model.model_name], model.rate)
        yield waiting
        yield running
        yield rate


class Gateway:
    """The simulated OpenAI-compatible gateway: steps every model's queue and serves the
    gauges at `/metrics`."""

    def __init__(self, models: Sequence[ModelLoad], fleet: SimFleet, clock: DemoClock) -> None:
        self.models = list(models)
        self.fleet = fleet
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_GatewayCollector(self))
        self.fleet_state: dict[str, DeploymentState] = {}

    def tick(self) -> None:
        now = self.clock.now()
        for model in self.models:
            observed = self.fleet.observe(model.deployment)
            self.fleet_state[model.deployment] = observed
            model.step(now, observed.ready)

    def model_for(self, deployment: str) -> ModelLoad | None:
        return next((m for m in self.models if m.deployment == deployment), None)

    async def run(self, tick_seconds: float = 0.1) -> None:
        """Step the queues forever (wall time `tick_seconds` apart)."""
        while True:
            self.tick()
            await anyio.sleep(tick_seconds)

    def app(self) -> Starlette:
        async def metrics(request: Request) -> Response:
            self.tick()  # a scrape sees the queue as of now
            # Always the classic text format, like vLLM's /metrics: prometheus-client's
            # OpenMetrics writer rewrites the ':' in vLLM's names to '_'.
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        return Starlette(routes=[Route("/metrics", metrics, methods=["GET"])])
