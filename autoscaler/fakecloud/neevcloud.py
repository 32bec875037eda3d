"""NeevCloud Dedicated Model Deployments simulator (seed 001): routes, validation, bodies.

Paths (also served under the `/aimodels` gateway prefix of the documented server URL):
`GET|POST /api/v1beta1/orgs/{org_id}/projects/{project_id}/aimodels`,
`GET|DELETE .../aimodels/{model_id}`, `PUT .../aimodels/{model_id}/scale`, and the tenant
login `POST /api/v1/auth/login` (`{"username" or "email", "password"}` -> `{"access_token"}`;
the password must be the simulator's token, or the one set for that user in `users`).
Any org and project ids are accepted; names are unique per project.

Status codes are the document's: 201 on deploy, 204 on delete, 400 `ErrorResponse` for
invalid bodies (list has no 400: its page/limit are clamped into range), 401 without a
valid token, 404 for an unknown deployment.
A duplicate name is refused with 400 `{"code": "already_exists"}`: the deploy operation
documents no 409, and names are "unique within the project".
The scale "transitional state" is reported as `initializing` (the only non-terminal word in
the status enum), with `endpoint_url` null and `uptime_seconds` 0 until `ready` again.
Inference: `endpoint_url` is `{simulator}/inference/{name}.{project}.{org}/v1`, served by the
fake vLLM (`autoscaler.fakecloud.inference_http`) with `model` = the `model_id`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from autoscaler.fakecloud.inference_http import endpoint_base
from autoscaler.fakecloud.state import DuplicateName, InvalidState, SimDeployment, UnknownDeployment
from autoscaler.fakecloud.web import (
    ApiError,
    is_int,
    json_object,
    json_response,
    require_token,
    rfc3339,
)
from autoscaler.fakecloud.web import sim_of as _sim

NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CATALOG_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_\-\.]+$")
PREFIX = "/api/v1beta1/orgs/{org_id}/projects/{project_id}/aimodels"

# A few catalog items (url-safe id -> slash model_id, display name). Other ids that match the
# catalog id pattern are accepted too, their model_id derived by the catalog's own convention.
CATALOG: dict[str, tuple[str, str]] = {
    "meta-llama-Llama-3.1-8B-Instruct": ("meta-llama/Llama-3.1-8B-Instruct", "Llama 3.1 8B"),
    "meta-llama-Llama-3.1-70B-Instruct": ("meta-llama/Llama-3.1-70B-Instruct", "Llama 3.1 70B"),
    "Qwen-Qwen2.5-7B-Instruct": ("Qwen/Qwen2.5-7B-Instruct", "Qwen2.5 7B"),
    "mistralai-Mistral-7B-Instruct-v0.3": ("mistralai/Mistral-7B-Instruct-v0.3", "Mistral 7B"),
}


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def catalog_item(catalog_id: str) -> tuple[str, str]:
    if catalog_id in CATALOG:
        return CATALOG[catalog_id]
    org, _, rest = catalog_id.partition("-")
    return (f"{org}/{rest}" if rest else catalog_id), catalog_id


def scope_of(request: Request) -> str:
    return f"{request.path_params['org_id']}/{request.path_params['project_id']}"


def served_model(dep: SimDeployment) -> str:
    """The slash `model_id` the deployment serves under (what inference requests name)."""
    if "model_id" not in dep.extra:
        catalog_id = str(dep.spec.get("catalog_id", "unknown-model"))
        dep.extra["model_id"], dep.extra["model_name"] = catalog_item(catalog_id)
    return str(dep.extra["model_id"])


INFERENCE_SHARED_BASE = False


def inference_label(dep: SimDeployment) -> str:
    """`name.project.org`: the simulator's stand-in for the public inference hostname
    `<name>.<project>.<org>.<region>.<env>.inference.ai.neevcloud.com` (by name, so a
    deployment recreated with the same name answers at the same URL)."""
    org, _, project = dep.scope.partition("/")
    return quote(f"{dep.name}.{project}.{org}", safe="")


def render(request: Request, dep: SimDeployment) -> dict[str, Any]:
    """The AIModelResponse of a deployment. Tolerates deployments made in-process with
    `SimState.create` and a partial spec (tests, the demo): missing fields get defaults."""
    sim = _sim(request)
    project = request.path_params["project_id"]
    spec = dep.spec
    served_model(dep)
    region = str(spec.get("region", "sim-region-1"))
    ready = dep.status == "ready"
    return {
        "id": dep.id,
        "name": dep.name,
        "project_id": project,
        "model_id": dep.extra["model_id"],
        "model_name": dep.extra["model_name"],
        "region": region,
        "status": dep.status,
        "endpoint_url": endpoint_base(request, inference_label(dep)) if ready else None,
        "gpu_config_id": str(spec.get("gpu_config_id", "sim-gpu")),
        "gpu_count": spec.get("gpu_count", 1),
        "replicas": dep.replicas,
        "created_at": rfc3339(dep.created_at),
        "updated_at": rfc3339(dep.updated_at),
        "uptime_seconds": sim.uptime(dep),
    }


def validate_create(body: Mapping[str, Any]) -> dict[str, Any]:
    required = ("name", "catalog_id", "region", "gpu_config_id", "gpu_count", "plan_id")
    # gpu_count has a default in the schema but is listed as required: both hold here.
    missing = [k for k in required if k not in body]
    if missing:
        raise ApiError(400, "invalid_request", f"missing required field(s): {', '.join(missing)}")
    name = body["name"]
    if not isinstance(name, str) or not 3 <= len(name) <= 30:
        raise ApiError(400, "invalid_request", "name must be a string of 3 to 30 characters")
    if not NAME_PATTERN.match(name):
        raise ApiError(
            400,
            "invalid_request",
            "name must match ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ (DNS-1123 label)",
        )
    for key in ("catalog_id", "region", "gpu_config_id", "plan_id"):
        if not isinstance(body[key], str) or not body[key]:
            raise ApiError(400, "invalid_request", f"{key} must be a non-empty string")
    if not CATALOG_ID_PATTERN.match(body["catalog_id"]):
        raise ApiError(400, "invalid_request", "catalog_id must match ^[a-zA-Z0-9_\\-\\.]+$")
    if not is_int(body["gpu_count"]) or body["gpu_count"] < 1:
        raise ApiError(400, "invalid_request", "gpu_count must be an integer >= 1")
    if "config" in body and not isinstance(body["config"], dict):
        raise ApiError(400, "invalid_request", "config must be an object")
    return {k: body[k] for k in (*required, "config") if k in body and k != "name"}


async def list_deployments(request: Request) -> Response:
    require_token(request)
    # The list operation documents no 400 response: out-of-range or malformed page/limit are
    # clamped into the schema's bounds (page >= 1, 1 <= limit <= 100) instead of refused.
    values: dict[str, int] = {}
    for key, default, high in (("page", 1, 1 << 31), ("limit", 20, 100)):
        try:
            value = int(request.query_params.get(key, default))
        except ValueError:
            value = default
        values[key] = min(max(value, 1), high)
    page, limit = values["page"], values["limit"]
    live = _sim(request).current(scope_of(request))
    start = (page - 1) * limit
    return json_response(
        {
            "items": [render(request, d) for d in live[start : start + limit]],
            "pagination": {
                "total_items": len(live),
                "total_pages": math.ceil(len(live) / limit),
                "current_page": page,
                "items_per_page": limit,
            },
        }
    )


async def deploy(request: Request) -> Response:
    require_token(request)
    body = await json_object(request)
    spec = validate_create(body)
    sim = _sim(request)
    try:
        dep = sim.create(body["name"], spec, 1, scope=scope_of(request))
    except DuplicateName as exc:
        raise ApiError(
            400,
            "already_exists",
            f"a deployment named {body['name']!r} already exists in this project",
        ) from exc
    return json_response(render(request, dep), 201)


def _deployment(request: Request) -> SimDeployment:
    require_token(request)
    try:
        return _sim(request).get(request.path_params["model_id"], scope_of(request))
    except UnknownDeployment as exc:
        raise ApiError(404, "not_found", "deployment not found") from exc


async def get_deployment(request: Request) -> Response:
    return json_response(render(request, _deployment(request)))


async def delete_deployment(request: Request) -> Response:
    dep = _deployment(request)
    _sim(request).delete(dep.id)
    return Response(status_code=204)


async def scale_deployment(request: Request) -> Response:
    dep = _deployment(request)
    body = await json_object(request)
    if "replicas" not in body:
        raise ApiError(400, "invalid_request", "missing required field: replicas")
    replicas = body["replicas"]
    if not is_int(replicas) or replicas < 1:
        raise ApiError(400, "invalid_request", "replicas must be an integer >= 1")
    try:
        dep = _sim(request).scale(dep.id, replicas)
    except InvalidState as exc:
        raise ApiError(400, "invalid_request", f"cannot scale: {exc}") from exc
    return json_response(render(request, dep))


async def login(request: Request) -> Response:
    body = await json_object(request)
    user = body.get("username", body.get("email"))
    password = body.get("password")
    if not isinstance(user, str) or not isinstance(password, str):
        raise ApiError(400, "invalid_request", "username (or email) and password are required")
    sim = _sim(request)
    users: Mapping[str, str] = request.app.state.users
    expected = users.get(user, sim.token) if users else sim.token
    if password != expected:
        raise ApiError(401, "unauthorized", "invalid credentials")
    return json_response(
        {"access_token": sim.issue_token(), "token_type": "bearer", "expires_in": 3600}
    )


def routes() -> list[BaseRoute]:
    table: list[BaseRoute] = [Route("/api/v1/auth/login", login, methods=["POST"])]
    for base in ("", "/aimodels"):
        table += [
            Route(base + PREFIX, list_deployments, methods=["GET"]),
            Route(base + PREFIX, deploy, methods=["POST"]),
            Route(base + PREFIX + "/{model_id}", get_deployment, methods=["GET"]),
            Route(base + PREFIX + "/{model_id}", delete_deployment, methods=["DELETE"]),
            Route(base + PREFIX + "/{model_id}/scale", scale_deployment, methods=["PUT"]),
        ]
    return table
