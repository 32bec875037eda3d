"""`autoscaler sim-provider`: serve one provider simulator over HTTP with uvicorn.

Prints the base URL and the token (a random one when `--token` is not given) on start, so a
daemon config or curl can use them at once. Fault flags set the simulator's random faults;
`/_sim/faults` changes them while it runs. Inference flags set the fake vLLM every ready
deployment serves (`/_sim/inference` changes them while it runs); the inference key is printed.
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys

from autoscaler.sim.app import PROVIDERS, create_app
from autoscaler.sim.faults import Faults, SimulatedDrop
from autoscaler.sim.inference import InferenceSettings, default_inference_key


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a probability between 0 and 1")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from exc
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0 seconds")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", required=True, choices=PROVIDERS)
    parser.add_argument("--port", type=int, required=True, help="TCP port (0: any free port)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--token", help="bearer token to accept (default: a random one)")
    parser.add_argument(
        "--provision-seconds", type=_seconds, default=5.0, help="create -> ready delay"
    )
    faults = parser.add_argument_group("faults (each a probability per API request)")
    faults.add_argument("--error-rate", type=_probability, default=0.0)
    faults.add_argument("--error-status", type=int, default=500, help="status of injected errors")
    faults.add_argument("--latency", type=_seconds, default=0.0, help="seconds added per request")
    faults.add_argument("--rate-limit-rate", type=_probability, default=0.0, help="429 rate")
    faults.add_argument("--retry-after", type=_seconds, default=1.0, help="Retry-After of a 429")
    faults.add_argument("--drop-rate", type=_probability, default=0.0, help="dropped connections")
    faults.add_argument(
        "--fail-rate", type=_probability, default=0.0, help="deployments that end failed"
    )
    add_inference_arguments(parser)


def _positive(text: str) -> float:
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def add_inference_arguments(parser: argparse.ArgumentParser) -> None:
    """The fake vLLM every ready deployment serves (see autoscaler.sim.inference_http)."""
    d = InferenceSettings()
    group = parser.add_argument_group(
        "inference (the OpenAI-compatible fake vLLM each ready deployment serves)"
    )
    group.add_argument(
        "--token-rate",
        type=_positive,
        default=d.token_rate,
        help=f"generated tokens per second per request (default {d.token_rate:g})",
    )
    group.add_argument(
        "--ttft",
        type=_seconds,
        default=d.ttft,
        help=f"prefill seconds from admission to the first token (default {d.ttft:g})",
    )
    group.add_argument(
        "--max-num-seqs",
        type=_count,
        default=d.max_num_seqs,
        help="requests one replica runs at once; more wait in a FIFO queue "
        f"(vLLM's default {d.max_num_seqs})",
    )
    group.add_argument(
        "--inference-key",
        help="bearer key inference requests need (default: the API token; "
        "NeevCloud: sk-nc-<token>)",
    )
    group.add_argument(
        "--max-tokens",
        type=_count,
        default=d.default_max_tokens,
        help=f"completion length when a request sets none (default {d.default_max_tokens})",
    )


def inference_settings(args: argparse.Namespace) -> InferenceSettings:
    return InferenceSettings(
        token_rate=args.token_rate,
        ttft=args.ttft,
        max_num_seqs=args.max_num_seqs,
        inference_key=args.inference_key,
        default_max_tokens=args.max_tokens,
    )


class _HideSimulatedDrops(logging.Filter):
    """A dropped connection is the point of the fault: do not print its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, SimulatedDrop)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    if not 0 <= args.port <= 65535:
        print(f"sim-provider: --port {args.port} must be between 0 and 65535", file=sys.stderr)
        return 2
    if not 100 <= args.error_status <= 599:
        print(
            f"sim-provider: --error-status {args.error_status} is not an HTTP status",
            file=sys.stderr,
        )
        return 2
    token = args.token or secrets.token_urlsafe(24)
    faults = Faults(
        error_rate=args.error_rate,
        error_status=args.error_status,
        latency=args.latency,
        rate_limit_rate=args.rate_limit_rate,
        retry_after=args.retry_after,
        drop_rate=args.drop_rate,
        provision_fail_rate=args.fail_rate,
    )
    inference = inference_settings(args)
    app = create_app(
        args.provider,
        token=token,
        provision_seconds=args.provision_seconds,
        faults=faults,
        inference=inference,
    )
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    server = uvicorn.Server(config)
    logging.getLogger("uvicorn.error").addFilter(_HideSimulatedDrops())

    # Print the URL once the socket is bound (with --port 0 the port is known only then).
    original_startup = server.startup

    async def startup(sockets: object = None) -> None:
        await original_startup(sockets=sockets)  # type: ignore[arg-type]
        port = args.port
        for srv in getattr(server, "servers", []):
            for sock in srv.sockets:
                port = sock.getsockname()[1]
        print(f"{args.provider} simulator at http://{args.host}:{port}", flush=True)
        print(f"token: {token}", flush=True)
        key = inference.inference_key or default_inference_key(args.provider, token)
        print(f"inference key: {key}", flush=True)

    server.startup = startup  # type: ignore[method-assign]
    server.run()
    return 0
