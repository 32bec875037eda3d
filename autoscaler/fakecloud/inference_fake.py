"""The fake vLLM's per-simulator state: one `InferenceFake` per simulator app holds the
inference key, an `Engine` per deployment (its scheduler and metrics) and paces the tokens
of each request on the wall clock, raising `Interrupted` when the deployment stops serving
and `ClientGone` when the client leaves. The routes that call it are `inference_http.py`."""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Protocol

import anyio

from autoscaler.fakecloud.inference import InferenceSettings, RequestPlan, default_inference_key
from autoscaler.fakecloud.inference_metrics import Engine, render_metrics
from autoscaler.fakecloud.state import SimDeployment, SimState

WAIT_POLL = 0.05  # seconds between re-checks of a waiting request (capacity, deletion, client)


class ProviderHooks(Protocol):
    """What a provider module tells the fake about its deployments."""

    def inference_label(self, dep: SimDeployment) -> str | None:
        """The path segment of the deployment's own base; None: the shared `/v1`."""
        ...

    def served_model(self, dep: SimDeployment) -> str | None:
        """The model name requests must carry; None: any."""
        ...


class Interrupted(Exception):
    """The deployment stopped serving under a request (deleted, failed)."""


class ClientGone(Exception):
    """The client of a non-streaming request disconnected: stop working for it."""


class InferenceFake:
    """Per simulator: the settings and one `Engine` per deployment (`app.state.inference`)."""

    def __init__(self, sim: SimState, hooks: ProviderHooks, settings: InferenceSettings):
        self.sim = sim
        self.hooks = hooks
        self.settings = settings
        self.engines: dict[str, Engine] = {}
        self.wakers: dict[tuple[str, int], anyio.Event] = {}

    # --- lookups ----------------------------------------------------------------------------

    def key(self) -> str:
        return self.settings.inference_key or default_inference_key(
            self.sim.provider, self.sim.token
        )

    def key_ok(self, authorization: str | None) -> bool:
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(value.strip().encode(), self.key().encode())

    def model_name(self, dep: SimDeployment) -> str:
        return self.hooks.served_model(dep) or dep.name

    def serving(self, label: str | None = None) -> list[SimDeployment]:
        """Deployments answering inference now, at `label` (None: the shared base)."""
        return [
            d
            for d in self.sim.current()
            if self.sim.serving_replicas(d) > 0
            and (label is None or self.hooks.inference_label(d) == label)
        ]

    def engine(self, dep: SimDeployment) -> Engine:
        """The deployment's engine, its capacity brought up to date (waking whom it admits)."""
        engine = self.engines.setdefault(dep.id, Engine())
        capacity = self.sim.serving_replicas(dep) * self.settings.max_num_seqs
        if capacity != engine.scheduler.capacity:
            self.wake(dep.id, engine.scheduler.resize(capacity))
        return engine

    def wake(self, dep_id: str, admitted: list[int]) -> None:
        for rid in admitted:
            event = self.wakers.get((dep_id, rid))
            if event is not None:
                event.set()

    def metrics(self, deps: list[SimDeployment], *, with_deployment: bool) -> str:
        rows = []
        for dep in deps:
            labels = {"model_name": self.model_name(dep)}
            if with_deployment:
                labels["deployment"] = dep.id
            rows.append((labels, self.engine(dep)))
        return render_metrics(rows)

    # --- serving one request ----------------------------------------------------------------

    async def tokens(
        self,
        dep: SimDeployment,
        plan: RequestPlan,
        gone: Callable[[], Awaitable[bool]] | None,
    ) -> AsyncGenerator[int, None]:
        """Admit, prefill, then yield each token's index when it is due. Releases the slot
        however it ends; raises Interrupted when the deployment stops serving."""
        engine = self.engine(dep)
        rid = engine.new_request()
        arrived = time.monotonic()
        event = anyio.Event()
        self.wakers[(dep.id, rid)] = event
        generated = 0
        done = False
        first = arrived
        try:
            if not engine.scheduler.submit(rid):
                while rid not in engine.scheduler.running:
                    with anyio.move_on_after(WAIT_POLL):
                        await event.wait()
                    await self._check(dep, gone)
                    engine = self.engine(dep)
            scheduled = time.monotonic()
            start = scheduled + self.settings.ttft
            count = max(1, plan.completion_tokens) if plan.kind != "embedding" else 1
            for index in range(count):
                due = start + index / self.settings.token_rate
                delay = due - time.monotonic()
                if delay > 0:
                    await anyio.sleep(delay)
                await self._check(dep, gone)
                if index == 0:
                    first = time.monotonic()
                    engine.first_token(arrived, first)
                if plan.kind != "embedding":
                    generated += 1
                yield index
            done = True
            engine.finished(plan, generated, arrived, time.monotonic(), scheduled, first)
        finally:
            self.wakers.pop((dep.id, rid), None)
            if not done:
                engine.aborted(plan, generated)
            self.wake(dep.id, engine.scheduler.release(rid))

    async def _check(self, dep: SimDeployment, gone: Callable[[], Awaitable[bool]] | None) -> None:
        if self.sim.serving_replicas(dep) == 0:
            raise Interrupted(dep.id)
        if gone is not None and await gone():
            raise ClientGone(dep.id)
