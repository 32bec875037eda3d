"""`autoscaler demo`: the real daemon on the embedded default, with nothing to set up.

In one process: the NeevCloud simulator (short provisioning delays) and a simulated gateway
with synthetic traffic, each served over real HTTP on a free loopback port; SQLite in a
temporary folder; two generated policies (`chat`, min 1, on the gateway's vLLM gauges, and
`batch`, min 0, which scales to zero when idle and is recreated when work returns) and a
daemon config naming them. Then the real `Daemon` runs, with its own HTTP endpoints, and a
live view shows what it does. `--duration` ends the demo by itself with a summary (exit 0);
Ctrl-C ends it the same way. `--speed` compresses every delay and the traffic story.

The story (60 s of demo time, repeating): chat runs at 1 req/s, ramps to a burst of 8 req/s
from t=12 s to t=26 s and comes back; batch has work until t=6 s, is idle until t=48 s (so it
is deleted after `scale_to_zero.after` = 20 s) and then gets work again (so it is recreated).
`assistant` goes through the real gateway (`autoscaler.gateway`, inside the daemon): a client
sends one chat request at t=3 s and one at t=40 s; the deployment is absent each time (idle
for `scale_to_zero.after` = 10 s in between), so the request is held, the gateway asks the
daemon at once, the deployment is created again with the same name and spec, and the held
request is answered by the simulator's fake vLLM.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import anyio

from autoscaler.demo.files import (
    ASSISTANT_MODEL,
    BATCH_MODEL,
    CHAT_MODEL,
    write_demo_files,
)
from autoscaler.demo.files import (
    policy_texts as policy_texts,  # re-exported: tests import it from here
)
from autoscaler.demo.watch import STORY_SECONDS, stop_on_signals, watch

SERVICE_SECONDS = {"chat": 2.0, "batch": 3.0}
PROVISION_SECONDS = 4.0  # a real H100 deployment takes minutes; the demo is impatient
SCALE_SECONDS = 2.0
TERMINATE_SECONDS = 2.0

ASSISTANT_REQUESTS = (3.0, 40.0)  # story seconds when the gateway's client sends a request
CHAT_PROFILE = ((0, 1.0), (12, 1.0), (16, 8.0), (26, 8.0), (29, 1.0), (60, 1.0))
BATCH_PROFILE = ((0, 3.0), (6, 3.0), (6, 0.0), (48, 0.0), (48, 2.0), (60, 2.0))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="end after this many seconds and print a summary (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="run the story and every delay FACTOR times faster (default 1; the story takes "
        f"{STORY_SECONDS:.0f}/FACTOR seconds)",
    )
    parser.add_argument(
        "--workdir",
        metavar="DIR",
        help="keep the generated config, policies, state.db and daemon.log here "
        "(default: a temporary folder removed at the end)",
    )
    parser.add_argument(
        "--summary-json", metavar="FILE", help="also write the summary as JSON to FILE"
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="print lines instead of redrawing the screen, even on a terminal",
    )


@dataclass(frozen=True)
class DemoOptions:
    duration: float | None
    speed: float
    workdir: Path | None
    summary_json: Path | None
    plain: bool


def run(args: argparse.Namespace) -> int:
    problems = []
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        problems.append(f"--duration: {args.duration} must be a number of seconds > 0")
    if not (math.isfinite(args.speed) and 0.1 <= args.speed <= 20):
        problems.append(f"--speed: {args.speed} must be between 0.1 and 20")
    if problems:
        for problem in problems:
            print(f"autoscaler demo: {problem}", file=sys.stderr)
        return 2
    options = DemoOptions(
        duration=args.duration,
        speed=args.speed,
        workdir=Path(args.workdir).resolve() if args.workdir else None,
        summary_json=Path(args.summary_json) if args.summary_json else None,
        plain=args.plain,
    )
    try:
        return anyio.run(demo, options, sys.stdout)
    except KeyboardInterrupt:  # Ctrl-C before the signal handler was in place
        print("\nautoscaler demo: interrupted", file=sys.stderr)
        return 0


# --- generated files ----------------------------------------------------------------------


def _free_ports(n: int) -> list[int]:
    """n distinct free ports: every socket stays bound until all are picked, since the kernel
    may hand a port it just released to the next bind."""
    import socket

    held = [socket.socket() for _ in range(n)]
    try:
        for s in held:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in held]
    finally:
        for s in held:
            s.close()


# --- the run ------------------------------------------------------------------------------


def _demo_metrics() -> Any:
    from autoscaler.runtime.metrics import Metrics

    class DemoMetrics(Metrics):
        """The daemon's metrics, also remembering the reasons of the last decision of each
        acting kind per policy, so the view can say why an action happened."""

        def __init__(self) -> None:
            super().__init__()
            self.acting: dict[tuple[str, str], tuple[str, ...]] = {}

        def decision(self, policy: str, action: str, reasons: tuple[str, ...]) -> None:
            super().decision(policy, action, reasons)
            if action != "none":
                self.acting[(policy, action)] = tuple(reasons)

        def reasons_for(self, policy: str, action: str) -> tuple[str, ...]:
            return self.acting.get((policy, action), ())

    return DemoMetrics()


async def demo(options: DemoOptions, out: TextIO) -> int:
    """Run the demo until `--duration` passes or a signal arrives; 0 when it ended cleanly.

    Long because it is the wiring in start order inside one task group (simulator, gateway,
    generated files, daemon and its HTTP side, the gateway front, the client, the watch), each
    step using the ports and objects the earlier ones made, with one teardown for all.
    """
    from autoscaler.demo.traffic import DemoClock, Gateway, ModelLoad, RateProfile, SimFleet
    from autoscaler.demo.view import ActionLog, LiveView
    from autoscaler.fakecloud import create_app
    from autoscaler.policy.errors import ValidationFailed
    from autoscaler.policy.loader import load_daemon
    from autoscaler.policy.model import LogConfig
    from autoscaler.runtime.daemon import Daemon
    from autoscaler.runtime.http import create_http_app, serve_http
    from autoscaler.runtime.logs import configure_logging
    from autoscaler.secrets import Secret

    speed = options.speed
    temporary = options.workdir is None
    folder = Path(tempfile.mkdtemp(prefix="autoscaler-demo-")) if temporary else options.workdir
    assert folder is not None
    folder.mkdir(parents=True, exist_ok=True)
    view = LiveView(out, tty=False if options.plain else None, plain_every=5.0)
    log_file = open(folder / "daemon.log", "a")  # noqa: SIM115 (closed in finally)
    # The daemon's own log goes to a file: the terminal belongs to the view.
    configure_logging(LogConfig(format="json", level="info"), stream=log_file)

    token = secrets.token_urlsafe(24)
    sim_app = create_app(
        "neevcloud",
        token=token,
        provision_seconds=PROVISION_SECONDS / speed,
        scale_seconds=SCALE_SECONDS / speed,
        terminate_seconds=TERMINATE_SECONDS / speed,
    )
    sim = sim_app.state.sim
    clock = DemoClock(speed)
    models = [
        ModelLoad(CHAT_MODEL, "chat-demo", RateProfile(CHAT_PROFILE), SERVICE_SECONDS["chat"]),
        ModelLoad(BATCH_MODEL, "batch-demo", RateProfile(BATCH_PROFILE), SERVICE_SECONDS["batch"]),
    ]
    gateway = Gateway(models, SimFleet(sim.current), clock)
    actions = ActionLog({"chat-demo": "chat", "batch-demo": "batch", "assistant-demo": "assistant"})
    client_key = "sk-demo-" + secrets.token_urlsafe(16)
    held_requests: list[dict[str, Any]] = []
    stop = anyio.Event()
    started_wall = time.monotonic()
    try:
        async with anyio.create_task_group() as tg:
            sim_host, sim_port = await tg.start(serve_http, sim_app, "127.0.0.1:0")
            gw_host, gw_port = await tg.start(serve_http, gateway.app(), "127.0.0.1:0")
            http_port, gateway_port = _free_ports(2)
            config_path = write_demo_files(
                folder,
                sim_url=f"http://{sim_host}:{sim_port}",
                gateway_url=f"http://{gw_host}:{gw_port}/metrics",
                http_port=http_port,
                speed=speed,
                token=token,
                gateway_port=gateway_port,
                client_key=client_key,
            )
            try:
                config, policies = load_daemon(config_path)
            except ValidationFailed as exc:  # the generated files are ours: a bug if so
                view.message(f"autoscaler demo: generated config is invalid:\n{exc}")
                tg.cancel_scope.cancel()
                return 1
            metrics = _demo_metrics()
            daemon = Daemon(config, policies, config_path=str(config_path), recorder=metrics)
            admin = Secret(secrets.token_urlsafe(24))
            daemon_app = create_http_app(
                daemon, metrics.registry, admin, alive=lambda: not daemon.lifecycle.stop_requested
            )
            d_host, d_port = await tg.start(serve_http, daemon_app, config.http.listen)
            view.message(
                f"autoscaler demo: NeevCloud simulator http://{sim_host}:{sim_port}, gateway "
                f"http://{gw_host}:{gw_port}/metrics, daemon http://{d_host}:{d_port}/status "
                f"(files in {folder})"
            )
            clock.start()
            tg.start_soon(gateway.run, 0.05)
            await tg.start(daemon.run)
            from autoscaler.runtime.gateway_wiring import start_in_daemon

            await start_in_daemon(tg, daemon)
            assert config.gateway is not None
            front = f"http://{config.gateway.listen}"
            view.message(f"autoscaler demo: OpenAI-compatible gateway {front}/v1 (model assistant)")
            tg.start_soon(_assistant_client, front, client_key, clock, view, held_requests)
            tg.start_soon(stop_on_signals, stop)
            await watch(
                options.duration,
                options.speed,
                daemon,
                gateway,
                sim,
                actions,
                view,
                clock,
                stop,
                started_wall,
                metrics,
            )
            with anyio.CancelScope(shield=True), anyio.move_on_after(config.shutdown_timeout + 15):
                daemon.request_stop()
                await daemon.lifecycle.stopped.wait()
            tg.cancel_scope.cancel()
    except Exception as exc:
        view.message(f"autoscaler demo: stopped by an error: {_describe(exc)}")
        view.message(f"  (the daemon's log was in {folder / 'daemon.log'})")
        return 1
    finally:
        log_file.close()
        import logging

        logging.getLogger().handlers = [
            h for h in logging.getLogger().handlers if not getattr(h, "_autoscaler", False)
        ]
        if temporary:  # also on an early Ctrl-C
            shutil.rmtree(folder, ignore_errors=True)
    summary = actions.to_json()
    wall = time.monotonic() - started_wall
    for line in _summary_lines(summary, wall, clock.now()):
        view.message(line)
    if options.summary_json is not None:
        _write_summary(
            options.summary_json, wall, clock.now(), speed, summary, actions, sim, held_requests
        )
    return 0


async def _assistant_client(
    url: str, key: str, clock: Any, view: Any, records: list[dict[str, Any]]
) -> None:
    """The gateway's client: one chat request at each of ASSISTANT_REQUESTS per story cycle.
    Each is sent in its own task, so a held request does not delay the next."""
    import httpx

    async with httpx.AsyncClient(timeout=300) as client, anyio.create_task_group() as tg:
        cycle = 0
        while True:
            for at in ASSISTANT_REQUESTS:
                when = cycle * STORY_SECONDS + at
                while clock.now() < when:
                    await anyio.sleep(0.05)
                tg.start_soon(_assistant_request, client, url, key, clock, view, records)
            cycle += 1


async def _assistant_request(
    client: Any, url: str, key: str, clock: Any, view: Any, records: list[dict[str, Any]]
) -> None:
    sent = clock.now()
    view.message(f"t={sent:5.1f}s  assistant: a chat request arrives at the gateway")
    record: dict[str, Any] = {"sent": round(sent, 3)}
    records.append(record)
    body = {"model": ASSISTANT_MODEL, "messages": [{"role": "user", "content": "hello"}]}
    try:
        r = await client.post(
            f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        )
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        view.message(f"t={clock.now():5.1f}s  assistant: request failed: {record['error']}")
        return
    record.update(status=r.status_code, answered=round(clock.now(), 3))
    if r.status_code == 200:
        text = r.json()["choices"][0]["message"]["content"]
        view.message(
            f"t={clock.now():5.1f}s  assistant: held {clock.now() - sent:.1f}s, then answered "
            f"({len(text.split())} words)"
        )
    else:
        view.message(f"t={clock.now():5.1f}s  assistant: refused {r.status_code}: {r.text[:200]}")


def _write_summary(
    path: Path,
    wall: float,
    demo_seconds: float,
    speed: float,
    summary: dict[str, Any],
    actions: Any,
    sim: Any,
    held_requests: list[dict[str, Any]],
) -> None:
    """`--summary-json`: the run's figures, every action taken, and the gateway's requests."""
    path.write_text(
        json.dumps(
            {
                "wall_seconds": round(wall, 3),
                "demo_seconds": round(demo_seconds, 3),
                "speed": speed,
                "policies": summary,
                "events": [
                    {
                        "t": round(e.t, 3),
                        "policy": e.policy,
                        "kind": e.kind,
                        "replicas": e.replicas,
                        "reasons": list(e.reasons),
                    }
                    for e in actions.events
                ],
                "duplicate_names": sim.names_held_twice(),
                "gateway_requests": held_requests,
            },
            indent=2,
        )
        + "\n"
    )


def _describe(exc: BaseException) -> str:
    """The leaf errors of an exception group, one line."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def _summary_lines(summary: dict[str, Any], wall: float, demo_seconds: float) -> list[str]:
    from autoscaler.demo.view import format_summary

    return format_summary(summary, wall_seconds=wall, demo_seconds=demo_seconds)
