"""Reads shared by many policies: metric sources (`SourcePool`: one client per identical spec,
one read in flight per source) and a provider's deployments (`DeploymentView`: one list shared
by every policy on that provider).

Must not live here: what a policy does with the values (`runner.py`, `evaluation.py`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from autoscaler.policy.model import MetricSource
from autoscaler.providers.answers import name_key, pick
from autoscaler.providers.base import (
    DeploymentInfo,
    MalformedAnswerError,
    Provider,
    TemporaryError,
)
from autoscaler.sources.base import Source

log = structlog.get_logger("autoscaler.runner")

SourceFactory = Callable[..., Source]


# --- sources ---------------------------------------------------------------------------------


@dataclass
class _PooledSource:
    source: Source
    refs: int = 0
    inflight: asyncio.Task[float] | None = None
    value: float | None = None  # the last successful read ...
    read_at: float = -math.inf  # ... and when it completed (monotonic)


class SourcePool:
    """Source instances keyed by their spec: policies reading the same queue or exposition
    share one client, and concurrent reads of it share one request (single flight)."""

    def __init__(self, factory: SourceFactory, *, max_concurrent_reads: int = 64) -> None:
        self._factory = factory
        self._entries: dict[str, _PooledSource] = {}
        self._limit = asyncio.Semaphore(max_concurrent_reads)

    @staticmethod
    def key(spec: MetricSource) -> str:
        return repr(spec)

    def acquire(self, spec: MetricSource, name: str) -> str:
        key = self.key(spec)
        entry = self._entries.get(key)
        if entry is None:
            entry = _PooledSource(self._factory(spec, name=name))
            self._entries[key] = entry
        entry.refs += 1
        return key

    async def release(self, key: str) -> None:
        entry = self._entries.get(key)
        if entry is None:
            return
        entry.refs -= 1
        if entry.refs <= 0:
            del self._entries[key]
            await close_quietly(entry.source)

    async def read(self, key: str, max_age: float = 0.0) -> float:
        """A value read at most `max_age` seconds ago (0: a read that starts now, or the one
        in flight). Only successful reads are reused; a failure is never cached."""
        entry = self._entries[key]
        if entry.value is not None and time.monotonic() - entry.read_at <= max_age:
            return entry.value
        task = entry.inflight
        if task is None or task.done():
            task = asyncio.ensure_future(self._read_bounded(entry))
            entry.inflight = task
        return await asyncio.shield(task)

    async def _read_bounded(self, entry: _PooledSource) -> float:
        async with self._limit:
            value = await entry.source.read()
        entry.value, entry.read_at = value, time.monotonic()
        return value

    def forget(self, key: str) -> None:
        """The next read of `key` starts now (a gateway just made new demand visible)."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.value, entry.read_at = None, -math.inf

    def describe(self, key: str) -> str:
        entry = self._entries.get(key)
        return entry.source.describe if entry else "?"

    async def aclose(self) -> None:
        entries, self._entries = list(self._entries.values()), {}
        for entry in entries:
            if entry.inflight is not None and not entry.inflight.done():
                entry.inflight.cancel()
            await close_quietly(entry.source)


async def close_quietly(closable: Any, what: str | None = None) -> None:
    try:
        await closable.aclose()
    except Exception as exc:  # closing is best effort; a broken client must not stop others
        log.warning("close_failed", what=what or repr(closable), error=str(exc))


# --- deployments ------------------------------------------------------------------------------


SKIPPED_SHOWN = 10  # unreadable list items named in one log line (the count says all)


class DeploymentView:
    """One provider's deployments, listed once and shared by every policy on that provider.

    Providers like NeevCloud have no lookup by name: `find` is a full (paginated) list. With
    thousands of policies on one account, one list per evaluation would be thousands of pages
    per second; instead one list is shared by every evaluation for `max_age` seconds, and
    concurrent lookups share one list in flight. `max_age` 0 (few policies) still shares the
    in-flight list. The daemon's own actions patch the view at once, and every provider write
    path looks the name up directly again first (`actions.create`), so a stale view can delay
    a decision by at most `max_age` but never duplicate a deployment.
    """

    def __init__(
        self, provider: Provider, max_age: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.provider = provider
        self.max_age = max_age
        self._clock = clock
        self._by_name: dict[str, list[DeploymentInfo]] = {}  # name.strip().casefold() -> all
        self._skipped: dict[str, str] = {}  # unreadable items: name -> why (`Listing`)
        self._listed_at = -math.inf
        self._inflight: asyncio.Task[None] | None = None

    async def find(self, name: str, *, max_age: float | None = None) -> DeploymentInfo | None:
        """`max_age` tighter than the view's own (the fast watch wants fresher news)."""
        limit = self.max_age if max_age is None else min(max_age, self.max_age)
        if self._clock() - self._listed_at > limit:
            await self._refresh()
        return self._pick(name)

    async def _refresh(self) -> None:
        task = self._inflight
        if task is None or task.done():
            task = asyncio.ensure_future(self._list())
            self._inflight = task
        await asyncio.shield(task)

    async def _list(self) -> None:
        started = self._clock()
        deployments = await self.provider.list()
        by_name: dict[str, list[DeploymentInfo]] = {}
        for dep in deployments:
            by_name.setdefault(name_key(dep.name), []).append(dep)
        self._said_skipped(deployments.skipped)
        self._by_name, self._skipped = by_name, deployments.skipped
        self._listed_at = started

    def _said_skipped(self, skipped: dict[str, str]) -> None:
        """Items the list could not read, logged when they change (not at every list): a
        lookup of such a name fails, and whoever owns it should know why."""
        if skipped == self._skipped:
            return
        provider = getattr(self.provider, "profile_name", "provider")
        if skipped:
            shown = dict(sorted(skipped.items())[:SKIPPED_SHOWN])
            log.warning(
                "provider_list_items_skipped", provider=provider, count=len(skipped), items=shown
            )
        else:
            log.info("provider_list_items_readable", provider=provider)

    def known(self, name: str) -> DeploymentInfo | None:
        """`name` as the last list (or our own last action) showed it; no request is made.
        None when the last list could not tell which deployment it is (`_pick`)."""
        try:
            return self._pick(name)
        except MalformedAnswerError:
            return None

    def _pick(self, name: str) -> DeploymentInfo | None:
        """A dying one beside a live one: the live one. Two live ones, a name that differs
        only in case or spaces, or an item of that name the list could not read:
        `MalformedAnswerError` (`answers.pick`), a failed lookup."""
        where = f"{getattr(self.provider, 'profile_name', 'provider')}: list"
        return pick(where, name, self._by_name.get(name_key(name), ()), skipped=self._skipped)

    def patch(self, name: str, info: DeploymentInfo | None) -> None:
        """What our own action just did, before the next list shows it."""
        if info is None:
            self._by_name.pop(name_key(name), None)
        else:
            self._by_name[name_key(name)] = [info]


def usable(name: str, found: DeploymentInfo | None) -> DeploymentInfo | None:
    """`found`, unless the provider's answer for it is garbage a decision would use
    (`DeploymentInfo.unreadable`): then a failed lookup, as garbage from a metric source is a
    failed read. Nothing is decided on it, so nothing is scaled or deleted."""
    if found is not None and found.unreadable:
        raise TemporaryError(f"deployment {name!r}: {found.unreadable}")
    return found


def source_type(key: str) -> str:
    """A pool key (`RedisSource(...)`) -> `redis`: a fixed label value for metrics."""
    name = key.split("(", 1)[0].removesuffix("Source").lower()
    return {"promql": "promql", "httpjson": "http_json", "rabbitmq": "rabbitmq"}.get(name, name)
