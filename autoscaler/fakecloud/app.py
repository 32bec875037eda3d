"""Assembling a simulator app: provider routes + `/_sim/` inspection + fault middleware.

`/healthz` and `/_sim/` (never subject to faults, no token needed: it is a local test tool):
- `GET  /_sim/deployments`: every deployment ever created, the current ids, name collisions,
  replica-seconds per deployment;
- `POST /_sim/faults`: partial update of the random faults (`Faults` field names), or with
  `{"script": {"kind": ..., "method": ..., "path": ..., "times": ...}}` a one-shot fault;
- `POST /_sim/deployments/{id}/fail`: turn a deployment `failed`;
- `GET  /_sim/requests`: the log of write calls (method, path, body, status, fault);
- `POST /_sim/clock/advance {"seconds": s}`: move a virtual clock;
- `POST /_sim/revoke-tokens`: expire the access tokens the login issued;
- `GET|POST /_sim/inference`: the fake vLLM's settings (token rate, ttft, max_num_seqs, faults).
Every simulated deployment also serves OpenAI-compatible inference once ready: see
`autoscaler.fakecloud.inference_http`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from autoscaler.fakecloud.clock import Clock, VirtualClock, WallClock
from autoscaler.fakecloud.faults import FaultMiddleware, Faults, ScriptedFault
from autoscaler.fakecloud.inference import InferenceSettings
from autoscaler.fakecloud.inference_http import InferenceFake, bypass_prefixes
from autoscaler.fakecloud.inference_http import routes as inference_routes
from autoscaler.fakecloud.state import SimState, UnknownDeployment
from autoscaler.fakecloud.web import ApiError, json_object, json_response, sim_of

PROVIDERS = ("neevcloud", "netmind", "nebius")
ID_PREFIX = {"neevcloud": "dep-", "netmind": "svc-", "nebius": "ep-"}


async def sim_deployments(request: Request) -> Response:
    return json_response(sim_of(request).snapshot())


async def sim_requests(request: Request) -> Response:
    return json_response({"requests": sim_of(request).requests})


async def sim_faults(request: Request) -> Response:
    sim = sim_of(request)
    body = await json_object(request)
    try:
        script = body.pop("script", None)
        if script is not None:
            if not isinstance(script, dict):
                raise ValueError("script must be an object")
            sim.plan.script(ScriptedFault(**script))
        sim.faults.update(body)
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "invalid_request", str(exc)) from exc
    return json_response({"faults": sim.faults.as_dict(), "scripted": len(sim.plan.scripted)})


async def sim_fail(request: Request) -> Response:
    try:
        dep = sim_of(request).fail(request.path_params["id"])
    except UnknownDeployment as exc:
        raise ApiError(404, "not_found", "deployment not found") from exc
    return json_response(dep.public())


async def sim_advance(request: Request) -> Response:
    sim = sim_of(request)
    body = await json_object(request)
    seconds = body.get("seconds")
    if not isinstance(sim.clock, VirtualClock):
        raise ApiError(400, "invalid_request", "this simulator runs on the wall clock")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise ApiError(400, "invalid_request", "seconds must be a number >= 0")
    sim.clock.advance(float(seconds))
    return json_response({"now": sim.now()})


async def healthz(request: Request) -> Response:
    """For container probes and scripts waiting for the simulator (no token, no faults)."""
    return json_response({"status": "ok", "provider": sim_of(request).provider})


async def sim_revoke(request: Request) -> Response:
    sim_of(request).revoke_tokens()
    return json_response({"revoked": True})


SIM_ROUTES: list[BaseRoute] = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/_sim/deployments", sim_deployments, methods=["GET"]),
    Route("/_sim/requests", sim_requests, methods=["GET"]),
    Route("/_sim/faults", sim_faults, methods=["POST"]),
    Route("/_sim/deployments/{id}/fail", sim_fail, methods=["POST"]),
    Route("/_sim/clock/advance", sim_advance, methods=["POST"]),
    Route("/_sim/revoke-tokens", sim_revoke, methods=["POST"]),
]


def _check(provider: str, token: str, provision_seconds: float) -> None:
    if provider not in PROVIDERS:
        raise ValueError(f"provider {provider!r} must be one of {', '.join(PROVIDERS)}")
    if not token:
        raise ValueError("the simulator needs a non-empty token")
    if provision_seconds < 0:
        raise ValueError(f"provision_seconds must be >= 0, got {provision_seconds}")


def _error_handlers(error_body: Callable[[int, str, str], dict[str, Any]]) -> dict[Any, Any]:
    """Starlette's exception handlers: errors in the provider's own error shape."""

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return json_response(error_body(exc.status, exc.code, exc.message), exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "error")
        return json_response(error_body(exc.status_code, code, str(exc.detail)), exc.status_code)

    return {ApiError: api_error, HTTPException: http_error}


def create_app(
    provider: str,
    *,
    token: str,
    provision_seconds: float = 5.0,
    clock: Clock | None = None,
    faults: Faults | None = None,
    scale_seconds: float | None = None,
    terminate_seconds: float | None = None,
    users: Mapping[str, str] | None = None,
    inference: InferenceSettings | None = None,
) -> Starlette:
    """A simulator for `provider`; its state is `app.state.sim` (a `SimState`).

    `scale_seconds` and `terminate_seconds` default to half the provisioning delay.
    `users` (NeevCloud login): username -> password; by default any username logs in with the
    simulator's token as the password.
    `inference`: how the deployments' fake vLLM serves (`autoscaler.fakecloud.inference_http`);
    its state is `app.state.inference`.
    """
    _check(provider, token, provision_seconds)
    module: Any = importlib.import_module(f"autoscaler.fakecloud.{provider}")
    error_body: Callable[[int, str, str], dict[str, Any]] = module.error_body
    faults = faults if faults is not None else Faults()
    sim = SimState(
        provider,
        token=token,
        clock=clock or WallClock(),
        faults=faults,
        provision_seconds=provision_seconds,
        scale_seconds=provision_seconds / 2 if scale_seconds is None else scale_seconds,
        terminate_seconds=provision_seconds / 2 if terminate_seconds is None else terminate_seconds,
        id_prefix=ID_PREFIX[provider],
    )

    shared_base: bool = module.INFERENCE_SHARED_BASE
    fake = InferenceFake(sim, module, inference if inference is not None else InferenceSettings())
    app = Starlette(
        routes=[*module.routes(), *inference_routes(shared_base), *SIM_ROUTES],
        exception_handlers=_error_handlers(error_body),
        middleware=[
            Middleware(
                FaultMiddleware,
                plan=sim.plan,
                error_body=error_body,
                log=sim.requests,
                clock=sim.now,
                bypass=bypass_prefixes(shared_base),
            )
        ],
    )
    app.state.sim = sim
    app.state.inference = fake
    app.state.users = dict(users or {})
    return app
