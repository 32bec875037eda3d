"""Running the gateway: inside `autoscaler run` (its `gateway:` section), and as its own
process (`autoscaler gateway --config FILE`, the same daemon config file).

Inside the daemon the gateway shares the daemon's providers and deployment lists
(`DaemonRoutes`), asks for activation by calling `Daemon.activate` directly, and its traffic
reaches `gateway` sources through the process's `SignalHub` with no scrape. As its own process
it builds its own provider clients from the config (`ConfigRoutes`: read-only lookups) and
asks the daemons listed in `gateway.daemons` through their admin API; it keeps holding while
no daemon answers, so a restarted daemon, or a new leader, still gets the demand.

A deployment scaling (ready -> `initializing`) keeps serving on its last route, which a client
knows only if it saw the deployment ready. A separate gateway started mid-scale (a rolling
restart under load) did not: it asks the daemons for the route they know
(`GET /policies/{name}/route`, at most every ASK_EVERY seconds per policy) and adopts an
answer for the deployment id it sees itself. The in-process gateway shares the daemon's
clients, which record the route at every evaluation that sees the deployment ready, and get
back the route saved with the state after a restart mid-scale (`known_route.py`); the gap left
is a deployment scaling since before any daemon on the store saw it ready: held (NeevCloud,
NetMind) until the scale ends. Nebius-style endpoints report their serving replicas while
`updating` and need no route seen before.
Must not live here: the proxy and the hold rules (`autoscaler/gateway/`).
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from autoscaler.gateway.activation import InProcessActivator, RemoteActivator
from autoscaler.gateway.app import create_app
from autoscaler.gateway.auth import ApiKeys
from autoscaler.gateway.routes import Failed, RouteTable, lookup
from autoscaler.gateway.service import Gateway
from autoscaler.gateway.signals import DEFAULT_HUB, SignalHub
from autoscaler.gateway.upstream import openai_error
from autoscaler.httpserver import HttpProtocol, ServerLimits, serve_asgi
from autoscaler.policy.model import DaemonConfig, GatewayConfig, Policy
from autoscaler.providers.base import DeploymentInfo, InferenceRoute, Provider
from autoscaler.runtime.reads import DeploymentView
from autoscaler.secrets import Secret, SecretError, resolve

if TYPE_CHECKING:
    from autoscaler.runtime.admin import AdminControl
    from autoscaler.runtime.runner import PolicyRunner

log = structlog.get_logger("autoscaler.gateway")

EXIT_CONFIG = 2
ASK_EVERY = 5.0  # seconds between two route requests to the daemons for one policy


def gateway_limits(config: GatewayConfig) -> ServerLimits:
    """What the gateway's server grants its clients: many long-lived streams (held requests,
    long generations), bodies capped by the gateway itself (`max_body`, its 413 shape)."""
    return ServerLimits(
        header_timeout=config.header_timeout,
        body_timeout=60.0,  # a 4 MB chat history over a slow link
        keepalive_timeout=5.0,
        max_connections=config.max_connections,
        max_body=None,
        backlog=2048,
    )


class GatewayConfigError(ValueError):
    """A gateway secret cannot be resolved; the message names the key, never the value."""


def api_keys(config: DaemonConfig) -> ApiKeys:
    gw = _section(config)
    keys: list[Secret] = []
    for i, ref in enumerate(gw.api_keys):
        try:
            secret = resolve(ref)
        except SecretError as exc:
            raise GatewayConfigError(f"{config.source_file}: gateway.api_keys[{i}]: {exc}") from exc
        assert secret is not None
        keys.append(secret)
    return ApiKeys(keys)


def _section(config: DaemonConfig) -> GatewayConfig:
    if config.gateway is None:
        raise GatewayConfigError(f"{config.source_file}: no gateway section")
    return config.gateway


class RunnerHost(Protocol):
    """What the routes read of the running daemon (`daemon.Daemon`): its runners by policy
    name (each one's policy, provider and shared deployment list)."""

    @property
    def runners(self) -> Mapping[str, PolicyRunner]: ...


class GatewayHost(RunnerHost, Protocol):
    """What the in-process gateway needs of the running daemon (`daemon.Daemon`); a protocol,
    so this module does not import the daemon it runs in."""

    config: DaemonConfig  # the gateway section, read again after each reload
    admin: AdminControl  # takes the demand separate gateways report (`on_gateway_demand`)

    async def activate(self, policy: str) -> dict[str, Any]: ...


class DaemonRoutes:
    """Routes from the running daemon's runners and their shared deployment lists. The
    daemon's provider clients record a deployment's route whenever an evaluation sees it
    ready (and get the saved one back after a restart), so a scale keeps being routed (see
    the module header)."""

    def __init__(self, daemon: RunnerHost) -> None:
        self.daemon = daemon

    async def resolve(self, policy: str, *, fresh: bool) -> InferenceRoute | Failed | None:
        runner = self.daemon.runners.get(policy)
        if runner is None:
            return None
        view: DeploymentView | None = runner.view
        name = runner.policy.deployment.name
        if view is None:
            info = await runner.provider.find(name)
        else:
            info = await view.find(name, max_age=0.0 if fresh else None)
        return lookup(info, runner.provider)


class ConfigRoutes:
    """Routes of a separate gateway: its own provider clients, read-only lookups, and the
    daemons (`daemons`, the gateway's `RemoteActivator`) asked for the route of a deployment
    found scaling that these clients never saw ready (module header)."""

    def __init__(
        self,
        config: DaemonConfig,
        policies: Sequence[Policy],
        *,
        daemons: RemoteActivator | None = None,
        clock: Callable[[], float] = time.monotonic,
        **provider_options: Any,
    ):
        from autoscaler.providers.registry import build_provider

        self.providers: dict[str, Provider] = {}
        self.views: dict[str, DeploymentView] = {}
        for name, profile in config.providers.items():
            provider = build_provider(profile, **provider_options)
            self.providers[name] = provider
            self.views[name] = DeploymentView(provider)
        self.daemons = daemons
        self.clock = clock
        self._asked: dict[str, float] = {}  # policy -> when the daemons were last asked
        self.set_policies(policies)

    def set_policies(self, policies: Sequence[Policy]) -> None:
        self.deployments = {p.name: (p.deployment.provider, p.deployment.name) for p in policies}
        self._asked = {p: t for p, t in self._asked.items() if p in self.deployments}

    async def resolve(self, policy: str, *, fresh: bool) -> InferenceRoute | Failed | None:
        where = self.deployments.get(policy)
        if where is None:
            return None
        provider_name, name = where
        provider = self.providers[provider_name]
        info = await self.views[provider_name].find(name, max_age=0.0 if fresh else 2.0)
        found = lookup(info, provider)
        if found is None and info is not None and info.status == "initializing":
            return await self._learn(policy, info, provider)
        return found

    async def _learn(
        self, policy: str, info: DeploymentInfo, provider: Provider
    ) -> InferenceRoute | None:
        """`info` is initializing and this client has no route for it: never seen ready, so
        starting, or scaling since before this gateway started. Ask the daemons (at most every
        ASK_EVERY seconds per policy: the gateway looks up every `poll_interval` while it
        holds) and adopt what one saw, when it is this very deployment (same id); an answer
        about another one (deleted and created again since) is stale and ignored."""
        if self.daemons is None:
            return None
        now = self.clock()
        if now - self._asked.get(policy, -math.inf) < ASK_EVERY:
            return None
        self._asked[policy] = now
        known = await self.daemons.known_route(policy)
        if known is None:
            return None
        if (known.deployment_id, known.deployment_name) != (info.id, info.name):
            log.info(
                "route_answer_ignored",
                policy=policy,
                deployment=info.name,
                id=info.id,
                answered_id=known.deployment_id,
            )
            return None
        route = provider.adopt_route(info, known.base_url, known.model)
        if route is not None:
            log.info("route_learned", policy=policy, deployment=info.name, id=info.id)
        return route

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()


def in_daemon(daemon: GatewayHost, hub: SignalHub = DEFAULT_HUB) -> Gateway:
    """The gateway of `autoscaler run`: the daemon's config, policies and providers."""
    config: DaemonConfig = daemon.config
    gw = _section(config)
    policies = [r.policy for r in daemon.runners.values()]
    gateway = Gateway(
        gw,
        RouteTable.build(policies, gw),
        DaemonRoutes(daemon),
        api_keys(config),
        # In-process the demand is visible through the hub already: no report (it would count
        # twice).
        activator=InProcessActivator(
            lambda policy, origin, held: daemon.activate(policy), origin="in-process"
        ),
    )
    hub.attach(gateway.stats)
    return gateway


def separate(
    config: DaemonConfig, policies: Sequence[Policy], **provider_options: Any
) -> tuple[Gateway, ConfigRoutes]:
    """The gateway of `autoscaler gateway --config FILE`."""
    gw = _section(config)
    token_ref = gw.admin_token or config.http.admin_token
    try:
        token = resolve(token_ref)
    except SecretError as exc:
        raise GatewayConfigError(f"{config.source_file}: gateway.admin_token: {exc}") from exc
    activator = RemoteActivator(gw.daemons, token, origin="") if gw.daemons else None
    routes = ConfigRoutes(config, policies, daemons=activator, **provider_options)
    gateway = Gateway(
        gw, RouteTable.build(policies, gw), routes, api_keys(config), activator=activator
    )
    if isinstance(activator, RemoteActivator):
        activator.origin = gateway.origin
    return gateway, routes


async def serve_gateway(
    gateway: Gateway,
    listen: str,
    *,
    limits: ServerLimits | None = None,
    http: HttpProtocol = "httptools",
    task_status: TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the gateway's app on `listen` until cancelled (`autoscaler.httpserver.serve_asgi`:
    header and body timeouts, connection cap, rate-limited logs; limits from the gateway's
    config unless given); then refuse what is held (`shutting_down`; what is still under way
    past the server's grace too) and close.
    `task_status.started((host, port))` once bound."""
    await serve_asgi(
        create_app(gateway),
        listen,
        limits=limits or gateway_limits(gateway.config),
        name="gateway",
        key="gateway.listen",
        http=http,
        on_stop=gateway.aclose,
        error_body=_openai_error,
        task_status=task_status,
    )


def _openai_error(status: int, message: str) -> bytes:
    """What the gateway's server writes itself (a refusal, a timeout, a request it cannot
    parse) in the error shape OpenAI clients parse, like the app's own errors."""
    code = {408: "request_timeout", 431: "head_too_large", 503: "too_many_connections"}
    return openai_error(status, message, code.get(status, "invalid_http"))


async def start_in_daemon(tg: TaskGroup, daemon: GatewayHost, hub: SignalHub = DEFAULT_HUB) -> None:
    """Hook for `autoscaler run` (after the daemon started): demand reported by separate
    gateways reaches `hub`; with a `gateway:` section, the gateway serves in `tg` and follows
    policy reloads."""
    daemon.admin.on_gateway_demand = hub.report
    if daemon.config.gateway is None:
        return
    gateway = in_daemon(daemon, hub)
    await tg.start(serve_gateway, gateway, daemon.config.gateway.listen, name="gateway")
    tg.start_soon(_follow_policies, gateway, daemon, name="gateway-routes")


async def _follow_policies(gateway: Gateway, daemon: GatewayHost) -> None:
    """Reloads change the runners; the route table follows within a second."""
    seen: list[Policy] = []
    while True:
        policies = [r.policy for r in daemon.runners.values()]
        if policies != seen and daemon.config.gateway is not None:
            gateway.set_table(RouteTable.build(policies, daemon.config.gateway))
            seen = policies
        await anyio.sleep(1.0)


# --- autoscaler gateway --config FILE ----------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", required=True, metavar="FILE", help="daemon config with a gateway: section"
    )


def run(args: argparse.Namespace) -> int:
    from autoscaler.runtime.logs import configure_logging
    from autoscaler.runtime.reload import load_for_start, refused_at_start

    loaded = load_for_start(args.config, "gateway")
    if loaded is None:
        return EXIT_CONFIG
    config, policies = loaded
    if config.gateway is None:
        print(f"{args.config}: gateway: missing (listen, api_keys)", file=sys.stderr)
        return EXIT_CONFIG
    from autoscaler.policy.credentials import check_credentials

    missing = check_credentials(config)  # the config's only: the gateway reads no source
    if missing:
        print("\n".join(str(error) for error in missing), file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(config.log)
    try:
        gateway, routes = separate(config, policies)
    except GatewayConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_CONFIG
    try:
        anyio.run(_serve_separate, gateway, routes, config.gateway.listen)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        refused = refused_at_start(exc)
        if refused is None:
            raise
        print(f"{config.source_file or args.config}: {refused}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


async def _serve_separate(gateway: Gateway, routes: ConfigRoutes, listen: str) -> None:
    async with anyio.create_task_group() as tg:
        await tg.start(serve_gateway, gateway, listen)
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("signal", signal=signal.Signals(signum).name, action="stop")
                break
        tg.cancel_scope.cancel()
    await routes.aclose()
    log.info("stopped")
