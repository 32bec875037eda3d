"""Nebius-style dedicated endpoints simulator (seed 004): routes, validation, bodies.

The seed shows only `DELETE /v0/dedicated_endpoints/{endpoint_id}`; the other paths are
assumed to follow it: `GET /v0/dedicated_endpoints/templates`, `GET|POST
/v0/dedicated_endpoints`, `GET|PATCH /v0/dedicated_endpoints/{id}`. Create requires `name`,
`model_name`, `flavor_name`, `gpu_type`, `gpu_count`, `scaling.min_replicas`,
`scaling.max_replicas`, checked against the templates ("the model must have a corresponding
template"). PATCH is partial: only the fields sent change. Status words (assumed):
`creating` -> `running`; `updating` while a scaling change applies (`ready_replicas`: the
replicas still serving, those running before it); `failed`; `deleting`.
Inference (`POST /v1/chat/completions` ... on the simulator's shared `/v1`, with `model` = the
endpoint's `routing_key`) is the fake vLLM of `autoscaler.fakecloud.inference_http`; it answers 404
until the endpoint is running, as the seed warns. Errors are `{"detail", "code"}`; 400 for
invalid bodies, 401, 404, 409 for a name in use.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

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

BASE = "/v0/dedicated_endpoints"
STATUS_WORDS = {
    "initializing": "creating",
    "ready": "running",
    "failed": "failed",
    "terminating": "deleting",
}
_GPUS = {"gpu-h100-sxm": [1, 2, 4, 8], "gpu-h200-sxm": [1, 2, 4, 8]}
TEMPLATES: list[dict[str, Any]] = [
    {
        "model_name": model,
        "flavors": [{"name": flavor, "gpu_types": _GPUS} for flavor in ("base", "fast")],
    }
    for model in (
        "gpt-oss-120b",
        "openai/gpt-oss-120b",
        "deepseek-ai/DeepSeek-V3.1",
        "meta-llama/Llama-3.3-70B-Instruct",
        "meta-llama/Llama-3.1-8B-Instruct",
    )
]


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"detail": message, "code": code}


def check_template(model: Any, flavor: Any, gpu_type: Any, gpu_count: Any) -> None:
    template = next((t for t in TEMPLATES if t["model_name"] == model), None)
    if template is None:
        raise ApiError(400, "invalid_request", f"no template for model_name {model!r}")
    match = next((f for f in template["flavors"] if f["name"] == flavor), None)
    if match is None:
        raise ApiError(400, "invalid_request", f"model {model!r} has no flavor {flavor!r}")
    if gpu_type not in match["gpu_types"]:
        raise ApiError(400, "invalid_request", f"gpu_type {gpu_type!r} is not supported")
    if not is_int(gpu_count) or gpu_count < 1:
        raise ApiError(400, "invalid_request", "gpu_count must be an integer >= 1")
    if gpu_count not in match["gpu_types"][gpu_type]:
        raise ApiError(400, "invalid_request", f"gpu_count {gpu_count} is not supported")


def check_scaling(scaling: Any, current: dict[str, int] | None = None) -> dict[str, int]:
    if not isinstance(scaling, dict):
        raise ApiError(400, "invalid_request", "scaling must be an object")
    merged = dict(current or {})
    for key in ("min_replicas", "max_replicas"):
        if key in scaling:
            merged[key] = scaling[key]
        if key not in merged:
            raise ApiError(400, "invalid_request", f"scaling.{key} is required")
        if not is_int(merged[key]) or merged[key] < 1:
            raise ApiError(400, "invalid_request", f"scaling.{key} must be an integer >= 1")
    if merged["min_replicas"] > merged["max_replicas"]:
        raise ApiError(400, "invalid_request", "scaling.min_replicas must be <= max_replicas")
    return merged


def render(request: Request, dep: SimDeployment) -> dict[str, Any]:
    spec = dep.spec  # defaults below cover deployments made in-process with a partial spec
    served_model(dep)
    dep.extra.setdefault("scaling", {"min_replicas": dep.replicas, "max_replicas": dep.replicas})
    status = STATUS_WORDS[dep.status]
    if dep.status == "initializing" and dep.ready_since is None and dep.extra.get("updating"):
        status = "updating"
    return {
        "id": dep.id,
        "name": dep.name,
        "routing_key": dep.extra["routing_key"],
        "model_name": spec.get("model_name", "gpt-oss-120b"),
        "flavor_name": spec.get("flavor_name", "base"),
        "gpu_type": spec.get("gpu_type", "gpu-h100-sxm"),
        "gpu_count": spec.get("gpu_count", 1),
        "scaling": dict(dep.extra["scaling"]),
        "replicas": dep.replicas,
        # While `updating`, the replicas that were running before it keep serving (a rolling
        # change, `SimState.serving_replicas`), and the provider says so.
        "ready_replicas": _sim(request).serving_replicas(dep),
        "status": status,
        "created_at": rfc3339(dep.created_at),
        "updated_at": rfc3339(dep.updated_at),
    }


async def templates(request: Request) -> Response:
    require_token(request)
    return json_response({"templates": TEMPLATES})


async def list_endpoints(request: Request) -> Response:
    require_token(request)
    return json_response({"endpoints": [render(request, d) for d in _sim(request).current()]})


async def create(request: Request) -> Response:
    require_token(request)
    body = await json_object(request)
    required = ("name", "model_name", "flavor_name", "gpu_type", "gpu_count", "scaling")
    missing = [k for k in required if k not in body]
    if missing:
        raise ApiError(400, "invalid_request", f"missing required field(s): {', '.join(missing)}")
    name = body["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise ApiError(400, "invalid_request", "name must be a non-empty string of <= 64 chars")
    check_template(body["model_name"], body["flavor_name"], body["gpu_type"], body["gpu_count"])
    scaling = check_scaling(body["scaling"])
    spec = {k: body[k] for k in ("model_name", "flavor_name", "gpu_type", "gpu_count")}
    try:
        dep = _sim(request).create(name, spec, scaling["min_replicas"])
    except DuplicateName as exc:
        raise ApiError(409, "conflict", f"an endpoint named {name!r} already exists") from exc
    dep.extra["scaling"] = scaling
    dep.extra["routing_key"] = f"{spec['model_name']}-{dep.id}"
    return json_response(render(request, dep))


def _endpoint(request: Request) -> SimDeployment:
    require_token(request)
    try:
        return _sim(request).get(request.path_params["endpoint_id"])
    except UnknownDeployment as exc:
        raise ApiError(404, "not_found", "endpoint not found") from exc


async def get_endpoint(request: Request) -> Response:
    return json_response(render(request, _endpoint(request)))


async def patch_endpoint(request: Request) -> Response:
    dep = _endpoint(request)
    body = await json_object(request)
    unknown = sorted(set(body) - {"scaling", "name"})
    if unknown:
        raise ApiError(400, "invalid_request", f"cannot update field(s): {', '.join(unknown)}")
    if "name" in body and (not isinstance(body["name"], str) or not body["name"].strip()):
        raise ApiError(400, "invalid_request", "name must be a non-empty string")
    scaling = dep.extra.get("scaling", {"min_replicas": dep.replicas, "max_replicas": dep.replicas})
    if "scaling" in body:
        scaling = check_scaling(body["scaling"], scaling)
    sim = _sim(request)
    try:
        dep = sim.scale(dep.id, scaling["min_replicas"])
    except InvalidState as exc:
        raise ApiError(409, "conflict", f"cannot update: {exc}") from exc
    dep.extra["scaling"] = scaling
    dep.extra["updating"] = True
    if "name" in body:
        dep.name = body["name"]
    return json_response(render(request, dep))


async def delete_endpoint(request: Request) -> Response:
    dep = _endpoint(request)
    _sim(request).delete(dep.id)
    return Response(status_code=204)


INFERENCE_SHARED_BASE = True


def inference_label(dep: SimDeployment) -> None:
    """No base of its own: every endpoint is on the shared `/v1`, chosen by `model`."""
    return None


def served_model(dep: SimDeployment) -> str:
    """The routing key: inference names it as `model`."""
    key: str = dep.extra.setdefault(
        "routing_key", f"{dep.spec.get('model_name', 'model')}-{dep.id}"
    )
    return key


def routes() -> list[BaseRoute]:
    return [
        Route(f"{BASE}/templates", templates, methods=["GET"]),
        Route(BASE, list_endpoints, methods=["GET"]),
        Route(BASE, create, methods=["POST"]),
        Route(BASE + "/{endpoint_id}", get_endpoint, methods=["GET"]),
        Route(BASE + "/{endpoint_id}", patch_endpoint, methods=["PATCH"]),
        Route(BASE + "/{endpoint_id}", delete_endpoint, methods=["DELETE"]),
    ]
