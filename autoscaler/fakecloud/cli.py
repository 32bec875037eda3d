"""`autoscaler sim-provider`: serve one provider simulator over HTTP with uvicorn.

Prints the base URL, the token (a random one when `--token` is not given) and the inference key
on start, then a ready-to-paste `providers:` snippet for a daemon config, so a daemon or curl can
use them at once. `/healthz` answers without a token. Fault flags set the simulator's random
faults; `/_sim/faults` changes them while it runs. Inference flags set the fake vLLM every ready
deployment serves (`/_sim/inference` changes them while it runs).
"""

from __future__ import annotations

import argparse
import logging
import secrets
import sys

from autoscaler.fakecloud.app import PROVIDERS, create_app
from autoscaler.fakecloud.faults import Faults, SimulatedDrop
from autoscaler.fakecloud.inference import InferenceSettings, default_inference_key


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
    """Long because it is the argparse table of the command's options, one call per option."""
    parser.add_argument(
        "--provider", required=True, choices=PROVIDERS, help="which provider's API to serve"
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port (0: any free port)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--token", help="bearer token to accept (default: a random one, printed on start)"
    )
    parser.add_argument(
        "--provision-seconds",
        type=_seconds,
        default=5.0,
        metavar="SECONDS",
        help="seconds from create to ready; scale and delete take half (default: %(default)s)",
    )
    faults = parser.add_argument_group(
        "faults (probabilities per API request; /_sim/faults changes them while running)"
    )
    faults.add_argument(
        "--error-rate",
        type=_probability,
        metavar="P",
        default=0.0,
        help="requests answered with an error (default: %(default)s)",
    )
    faults.add_argument(
        "--error-status",
        type=int,
        metavar="STATUS",
        default=500,
        help="status of injected errors (default: %(default)s)",
    )
    faults.add_argument(
        "--latency",
        type=_seconds,
        metavar="SECONDS",
        default=0.0,
        help="seconds added per request (default: %(default)s)",
    )
    faults.add_argument(
        "--rate-limit-rate",
        type=_probability,
        metavar="P",
        default=0.0,
        help="requests answered 429 (default: %(default)s)",
    )
    faults.add_argument(
        "--retry-after",
        type=_seconds,
        metavar="SECONDS",
        default=1.0,
        help="Retry-After of a 429 (default: %(default)s)",
    )
    faults.add_argument(
        "--drop-rate",
        type=_probability,
        metavar="P",
        default=0.0,
        help="connections dropped unanswered (default: %(default)s)",
    )
    faults.add_argument(
        "--fail-rate",
        type=_probability,
        metavar="P",
        default=0.0,
        help="deployments that end failed (default: %(default)s)",
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
    """The fake vLLM every ready deployment serves (see autoscaler.fakecloud.inference_http)."""
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


# What a daemon config needs per provider besides base_url and token (the simulator accepts
# any NeevCloud org and project: these are placeholders to keep).
_PROFILE_EXTRA = {"neevcloud": ("org_id: org-sim", "project_id: prj-sim")}
TOKEN_ENV = "AUTOSCALER_SIM_TOKEN"


def config_snippet(provider: str, url: str, token: str) -> list[str]:
    """The lines printed on start: how to point a daemon config at this simulator."""
    lines = [
        f"# health: {url}/healthz; inspect: {url}/_sim/deployments",
        f"# a daemon config for it (the token comes from the environment: export {TOKEN_ENV}=...):",
        f"export {TOKEN_ENV}={token}",
        "providers:",
        "  sim:",
        f"    type: {provider}",
        f"    base_url: {url}",
    ]
    lines += [f"    {extra}" for extra in _PROFILE_EXTRA.get(provider, ())]
    lines.append(f"    token: {{env: {TOKEN_ENV}}}")
    return lines


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
        host = f"[{args.host}]" if ":" in args.host else args.host
        url = f"http://{host}:{port}"
        print(f"{args.provider} simulator at {url}", flush=True)
        print(f"token: {token}", flush=True)
        key = inference.inference_key or default_inference_key(args.provider, token)
        print(f"inference key: {key}", flush=True)
        print("\n".join(config_snippet(args.provider, url, token)), flush=True)

    server.startup = startup  # type: ignore[method-assign]
    server.run()
    return 0
