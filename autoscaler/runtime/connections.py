"""What the daemon connects to outside itself, and how it is built and closed: the store (and
whether it is ours to close), one provider client per provider profile with its shared
deployment list (`DeploymentView`), the metric source pool, and the decision history's
batching writer over the store.

Provider clients are built on first use (`provider_for`) by the provider factory; sources by
the source factory inside the pool. Tests pass their own factories and store; a store passed
in is closed by whoever passed it.

Must not live here: what the policies do with them (`runner.py`), when they are closed
(`daemon.py` orders the stop, `shutdown.py` bounds it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import anyio
import structlog

from autoscaler.policy.model import Policy, ProviderProfile
from autoscaler.providers.base import Provider
from autoscaler.runtime.history import HistoryBuffer
from autoscaler.runtime.reads import DeploymentView, SourceFactory, SourcePool, close_quietly
from autoscaler.store.base import Store

log = structlog.get_logger("autoscaler.daemon")

ProviderFactory = Callable[..., Provider]
VIEW_SHARING_FROM = 50  # policies on one provider from which lookups share one list


def _default_factories() -> tuple[ProviderFactory, SourceFactory]:
    from autoscaler.providers.registry import build_provider
    from autoscaler.sources.registry import build_source

    return build_provider, build_source


class Connections:
    def __init__(
        self,
        *,
        store: Store | None,
        provider_factory: ProviderFactory | None,
        source_factory: SourceFactory | None,
        on_provider_request: Callable[..., None],
    ) -> None:
        default_provider, default_source = _default_factories()
        self.store = store
        self.own_store = store is None  # opened here from `state.url`, so closed here
        self.provider_factory = provider_factory or default_provider
        self.source_factory = source_factory or default_source
        self._on_provider_request = on_provider_request  # the recorder's, for metrics
        self.providers: dict[str, Provider] = {}
        self.views: dict[str, DeploymentView] = {}
        self.sources = SourcePool(self.source_factory)
        self.history: HistoryBuffer | None = None  # once the store is open

    # -- the store ---------------------------------------------------------------------------

    async def open_store(self, url: str) -> HistoryBuffer:
        """Open the store (ours from `url` unless one was given; StoreOpenError: one line) and
        its decision history writer, which the caller runs."""
        if self.store is None:
            from autoscaler.store import open_store

            self.store = open_store(url)
        from autoscaler.store.opening import open_checked

        await open_checked(self.store, url)
        self.history = HistoryBuffer(self.store)
        return self.history

    def opened_store(self) -> Store:
        """The store, once `open_store` succeeded (runners are built only after that)."""
        assert self.store is not None
        return self.store

    # -- providers -----------------------------------------------------------------------------

    def provider_for(self, profile: ProviderProfile) -> Provider:
        provider = self.providers.get(profile.name)
        if provider is None:
            provider = self.provider_factory(profile, on_request=self._on_provider_request)
            self.providers[profile.name] = provider
            self.views[profile.name] = DeploymentView(provider)
        return provider

    def drop_providers(self, names: Iterable[str]) -> list[Provider]:
        """Forget these profiles' clients and lists (a reload changed them); the caller closes
        the clients returned once nothing uses them."""
        dropped = {n: self.providers.pop(n) for n in names if n in self.providers}
        for name in dropped:
            self.views.pop(name, None)
        return list(dropped.values())

    def tune_views(self, policies: Sequence[Policy]) -> None:
        """Few policies on a provider: list on every lookup (sharing concurrent ones). Many:
        share one list for a quarter of their shortest interval (at most 5 s)."""
        by_provider: dict[str, list[float]] = {}
        for policy in policies:
            by_provider.setdefault(policy.deployment.provider, []).append(policy.interval)
        for name, view in self.views.items():
            intervals = by_provider.get(name, [])
            view.max_age = (
                0.0 if len(intervals) < VIEW_SHARING_FROM else min(5.0, min(intervals) / 4)
            )

    # -- closing -------------------------------------------------------------------------------

    async def flush_history(self) -> None:
        """The last decisions, before the store closes (shielded, at most 5 s)."""
        if self.history is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self.history.flush()

    async def close(self) -> None:
        """Close sources, providers and (when ours) the store; a failure is logged, and the
        others are closed still."""
        await self.sources.aclose()
        providers, self.providers = list(self.providers.values()), {}
        for provider in providers:
            await close_quietly(provider, "provider")
        if self.store is not None and self.own_store:
            try:
                await self.store.close()
            except Exception as exc:
                log.warning("close_failed", what="store", error=str(exc))
