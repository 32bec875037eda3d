"""`autoscaler run --config FILE`: the daemon as a service.

Load and validate the config and every policy first, and resolve every credential they name;
on any error print every error line (`FILE:LINE:COL: key.path: message`) to stderr and exit 2
with nothing started. Otherwise run
under anyio (asyncio backend, which APScheduler and uvicorn need) until SIGTERM / SIGINT
(exit 0). SIGHUP and edits to the files reload. "stopped" (asked to) and "crashed" (an
unexpected error; exit 1) are logged as different events. A store that cannot be opened and
a listen address that cannot be bound (taken, say) are neither: one line on stderr naming the
key (`state.url`, `http.listen`, `gateway.listen`), exit 2.
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
import structlog

from autoscaler.policy.model import DaemonConfig, Policy

if TYPE_CHECKING:  # imported when the command runs: `--help` stays fast
    from anyio.abc import TaskGroup
    from prometheus_client import CollectorRegistry

    from autoscaler.runtime.daemon import Daemon
    from autoscaler.runtime.notify import Notifier
    from autoscaler.runtime.reload import Reloader
    from autoscaler.secrets import Secret

log = structlog.get_logger("autoscaler.run")

EXIT_CONFIG = 2
EXIT_CRASHED = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=os.environ.get("AUTOSCALER_CONFIG") or None,
        help="daemon config (YAML); default: $AUTOSCALER_CONFIG. $AUTOSCALER_LISTEN and "
        "$AUTOSCALER_LOG_LEVEL override http.listen and log.level",
    )
    parser.add_argument(
        "--no-watch",
        action="store_true",
        help="reload only on SIGHUP, not when the config or policy files change",
    )


def run(args: argparse.Namespace) -> int:
    from autoscaler.runtime.reload import load_for_start

    if not args.config:
        print(
            "autoscaler run: no config: pass --config FILE or set AUTOSCALER_CONFIG",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    loaded = load_for_start(args.config, "run")
    if loaded is None:
        return EXIT_CONFIG
    config, policies = loaded
    from autoscaler.policy.credentials import check_credentials

    missing = check_credentials(config, policies)
    if missing:
        for error in missing:
            print(error, file=sys.stderr)
        if len(missing) > 1:  # one missing credential is one line, as the unit's log shows it
            print(
                f"autoscaler run: {len(missing)} missing credentials; nothing started",
                file=sys.stderr,
            )
        return EXIT_CONFIG
    from autoscaler.runtime.logs import configure_logging

    configure_logging(config.log)
    try:
        return anyio.run(serve, config, policies, args.config, not args.no_watch)
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        return 130


async def serve(
    config: DaemonConfig, policies: list[Policy], config_path: str, watch: bool = True
) -> int:
    """The whole service: daemon, HTTP, reload watcher, signals, sd_notify."""
    from autoscaler.runtime.daemon import Daemon
    from autoscaler.runtime.metrics import Metrics
    from autoscaler.runtime.notify import Notifier
    from autoscaler.runtime.reload import Reloader, refused_at_start
    from autoscaler.runtime.shutdown import handle_signals

    ok, admin_token = _preflight(config)
    if not ok:
        return EXIT_CONFIG
    metrics = Metrics()
    notifier = Notifier()
    daemon = Daemon(config, policies, config_path=config_path, recorder=metrics)
    reloader = Reloader(daemon, config_path)
    reloader.admin_token = admin_token
    stopped_by: list[str] = []

    def stop(reason: str) -> None:
        if not stopped_by:
            stopped_by.append(reason)
            notifier.stopping("stopping")
        daemon.request_stop()

    async def reload(reason: str) -> object:
        notifier.reloading()
        ok = await reloader.reload(reason)
        notifier.ready("reloaded" if ok else "reload rejected; running config kept")
        return ok

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(handle_signals, stop, reload, name="signals")
            await _start(tg, daemon, reloader, metrics.registry, notifier, watch)
            await _wait_stopped(daemon)
            tg.cancel_scope.cancel()
    except Exception as exc:
        refused = refused_at_start(exc)
        if refused is not None:  # the store or the listen address: one line, exit 2
            print(f"{config.source_file or config_path}: {refused}", file=sys.stderr)
            notifier.close()
            return EXIT_CONFIG
        log.critical("crashed", error=f"{type(exc).__name__}: {exc}", exc_info=True)
        notifier.close()
        return EXIT_CRASHED
    log.info("stopped", reason=stopped_by[0] if stopped_by else "requested")
    notifier.close()
    return 0


async def _start(
    tg: TaskGroup,
    daemon: Daemon,
    reloader: Reloader,
    registry: CollectorRegistry,
    notifier: Notifier,
    watch: bool,
) -> None:
    """HTTP first (health answers while the daemon starts), then the daemon, the gateway, the
    watchdog and the reload watcher; ready is reported once the daemon runs."""
    from autoscaler.httpserver import raise_open_files_limit
    from autoscaler.runtime.gateway_wiring import start_in_daemon
    from autoscaler.runtime.http import create_http_app, serve_http, server_limits
    from autoscaler.runtime.notify import watchdog_loop

    config = daemon.config
    app = create_http_app(daemon, registry, lambda: reloader.admin_token, alive=_alive(daemon))
    raise_open_files_limit()
    await tg.start(
        functools.partial(serve_http, limits=server_limits(config.http)),
        app,
        config.http.listen,
        name="http",
    )
    await tg.start(daemon.run, name="daemon")
    await start_in_daemon(tg, daemon)
    tune_gc()
    notifier.ready(f"{len(daemon.runners)} policies")
    tg.start_soon(watchdog_loop, notifier, _alive(daemon), name="watchdog")
    if watch:
        reloader.remember()
        tg.start_soon(reloader.watch, name="reload-watch")


def _preflight(config: DaemonConfig) -> tuple[bool, Secret | None]:
    """Credentials the service needs before anything starts: (ok, the admin token). A bad
    one is printed as one line naming the key."""
    from autoscaler.runtime.http import check_admin_token
    from autoscaler.secrets import SecretError, resolve

    try:
        admin_token = check_admin_token(resolve(config.http.admin_token))
    except SecretError as exc:
        print(f"{config.source_file}: http.admin_token: {exc}", file=sys.stderr)
        return False, None
    if config.gateway is not None:
        from autoscaler.runtime.gateway_wiring import GatewayConfigError, api_keys

        try:
            api_keys(config)  # resolved again when the gateway starts; fail before anything runs
        except GatewayConfigError as exc:
            print(str(exc), file=sys.stderr)
            return False, None
    return True, admin_token


GC_GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Long-lived daemon, thousands of policies: the config, policies and clients loaded at
    start never become garbage, so they are frozen out of the collector's scans, and young
    collections run less often. With the defaults, collections that rescan everything
    stalled the event loop for up to 0.2 s (1,000 policies), which showed up directly as
    evaluation lag; see benchmarks/bench_daemon.py."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def _alive(daemon: Daemon) -> Callable[[], bool]:
    return lambda: not daemon.lifecycle.stop_requested or daemon.lifecycle.in_flight > 0


async def _wait_stopped(daemon: Daemon) -> None:
    await daemon.lifecycle.stopped.wait()
