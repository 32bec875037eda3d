"""NetMind dedicated endpoints simulator (seed 003): routes, validation, bodies.

Seed paths: `GET /v1/inference-service/flavor`, `POST /v1/inference-service`,
`GET|PUT|DELETE /v1/inference-service/{id}`. Beyond the seed (assumed, needed to find a
deployment by name): `GET /v1/inference-service` -> `{"service_list": [...]}`.
Statuses: `initializing` -> `available`; `failed`; `deleting` while terminating (the last two
are assumptions: the seed shows only the first two). `target_instance_number` is echoed the
way it was sent (the seed's update sends the string "2"; its create sends the number 1).
The seed shows no status codes: 200 for every success, 400 for invalid bodies, 401, 404, and
409 for a name already in use; errors are `{"code", "message"}`.
"""

from __future__ import annotations

from typing import Any

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

BASE = "/v1/inference-service"
STATUS_WORDS = {
    "initializing": "initializing",
    "ready": "available",
    "failed": "failed",
    "terminating": "deleting",
}
FLAVORS: list[dict[str, Any]] = [
    {
        "flavor_id": "69475e82e81c4dd6be3467e2ca374e0c",
        "display_name": "NVIDIA_GeForce_RTX_4090",
        "cluster_id": "1",
        "cluster_flavor_id": "US_01_4090",
        "meta_info": {"cuda": "12.0", "region": "cn"},
        "billing": {"cny_price_unit": 2.2, "usd_price_unit": 0.3, "nmt_price_unit": 0.147164},
        "created_at": "2024-11-13 09:00:19",
        "updated_at": "2024-11-13 09:00:19",
        "deleted_at": None,
        "is_deleted": False,
        "available_num": 1,
        "node_max_gpu": 2,
    },
    {
        "flavor_id": "7b2f36d30e0743debc6c60d5017e2d16",
        "display_name": "NVIDIA_GeForce_RTX_4090",
        "cluster_id": "1",
        "cluster_flavor_id": "US_01_4090",
        "meta_info": {"cuda": "12.0", "region": "other"},
        "billing": {"cny_price_unit": 2.2, "usd_price_unit": 0.3, "nmt_price_unit": 0.147164},
        "created_at": "2024-11-13 09:00:19",
        "updated_at": "2024-11-13 09:00:19",
        "deleted_at": None,
        "is_deleted": False,
        "available_num": 1,
        "node_max_gpu": 2,
    },
]
FLAVOR_IDS = {f["flavor_id"]: f for f in FLAVORS}


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def instance_count(value: Any, where: str) -> int:
    """A count sent as 1 or "1" (the seed uses both)."""
    if is_int(value):
        count = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        count = int(value.strip())
    else:
        raise ApiError(400, "invalid_request", f"{where} must be an integer >= 1")
    if count < 1:
        raise ApiError(400, "invalid_request", f"{where} must be an integer >= 1")
    return count


INFERENCE_SHARED_BASE = False


def inference_label(dep: SimDeployment) -> str:
    """The service id: the seed's endpoint_metadata is elided, ours carries
    `{simulator}/inference/{service_id}/v1`."""
    return dep.id


def served_model(dep: SimDeployment) -> None:
    """Any model name: the container serves what its command says, unknown to the API."""
    return None


def render(request: Request, dep: SimDeployment) -> dict[str, Any]:
    spec = dep.spec  # defaults below cover deployments made in-process with a partial spec
    flavor = FLAVOR_IDS.get(spec.get("flavor_id", ""), FLAVORS[0])
    ready = dep.status == "ready"
    endpoint: dict[str, Any] = {}
    if ready:
        endpoint = {"endpoint_url": endpoint_base(request, inference_label(dep))}
    return {
        "service_id": dep.id,
        "name": dep.name,
        "description": spec.get("description", ""),
        "user_id": "sim-user",
        "status": STATUS_WORDS[dep.status],
        "status_info": None,
        "resource_metadata": {
            "resource_display_name": flavor["display_name"],
            "scale_type": spec.get("scale_type", "manual"),
            "flavor_id": flavor["flavor_id"],
            "target_instance_number": dep.extra.get("target_as_sent", dep.replicas),
            "scale_policy": None,
            "VRAM": "32GB",
            "image_size": "12GB",
        },
        "billing_metadata": {"usd_price_unit": flavor["billing"]["usd_price_unit"]},
        "endpoint_metadata": endpoint,
        "deploy_metadata": spec.get("deploy_metadata", {}),
        "service_type": "normal",
        "created_at": rfc3339(dep.created_at),
        "updated_at": rfc3339(dep.updated_at),
        "deleted_at": None,
        "is_deleted": False,
        "payment_type": spec.get("payment_type", "usd"),
    }


async def flavors(request: Request) -> Response:
    require_token(request)
    return json_response({"flavor_list": FLAVORS})


async def list_services(request: Request) -> Response:
    require_token(request)
    return json_response({"service_list": [render(request, d) for d in _sim(request).current()]})


async def create(request: Request) -> Response:
    require_token(request)
    body = await json_object(request)
    missing = [k for k in ("name", "resource_metadata", "deploy_metadata") if k not in body]
    if missing:
        raise ApiError(400, "invalid_request", f"missing required field(s): {', '.join(missing)}")
    name = body["name"]
    if not isinstance(name, str) or not name.strip() or len(name) > 64:
        raise ApiError(400, "invalid_request", "name must be a non-empty string of <= 64 chars")
    resource = body["resource_metadata"]
    if not isinstance(resource, dict):
        raise ApiError(400, "invalid_request", "resource_metadata must be an object")
    flavor_id = resource.get("flavor_id")
    if flavor_id not in FLAVOR_IDS:
        raise ApiError(400, "invalid_request", f"unknown flavor_id {flavor_id!r}")
    scale_type = resource.get("scale_type", "manual")
    if scale_type != "manual":
        raise ApiError(400, "invalid_request", "scale_type must be 'manual'")
    raw_count = resource.get("target_instance_number", 1)
    count = instance_count(raw_count, "resource_metadata.target_instance_number")
    deploy = body["deploy_metadata"]
    if not isinstance(deploy, dict) or not isinstance(deploy.get("image_url"), str):
        raise ApiError(400, "invalid_request", "deploy_metadata.image_url is required")
    if "port" in deploy and not is_int(deploy["port"]):
        raise ApiError(400, "invalid_request", "deploy_metadata.port must be an integer")
    gpu_num = deploy.get("gpu_num", 0)
    if not is_int(gpu_num) or gpu_num < 0:
        raise ApiError(400, "invalid_request", "deploy_metadata.gpu_num must be an integer >= 0")
    spec = {
        "flavor_id": flavor_id,
        "scale_type": scale_type,
        "deploy_metadata": deploy,
        "description": body.get("description", ""),
        "payment_type": body.get("payment_type", "usd"),
    }
    try:
        dep = _sim(request).create(name, spec, count)
    except DuplicateName as exc:
        raise ApiError(409, "conflict", f"an endpoint named {name!r} already exists") from exc
    dep.extra["target_as_sent"] = raw_count
    return json_response(render(request, dep))


def _service(request: Request) -> SimDeployment:
    require_token(request)
    try:
        return _sim(request).get(request.path_params["service_id"])
    except UnknownDeployment as exc:
        raise ApiError(404, "not_found", "inference service not found") from exc


async def get_service(request: Request) -> Response:
    return json_response(render(request, _service(request)))


async def update(request: Request) -> Response:
    dep = _service(request)
    body = await json_object(request)
    resource = body.get("resource_metadata")
    if not isinstance(resource, dict) or "target_instance_number" not in resource:
        raise ApiError(
            400, "invalid_request", "resource_metadata.target_instance_number is required"
        )
    raw = resource["target_instance_number"]
    count = instance_count(raw, "resource_metadata.target_instance_number")
    try:
        dep = _sim(request).scale(dep.id, count)
    except InvalidState as exc:
        raise ApiError(409, "conflict", f"cannot update: {exc}") from exc
    dep.extra["target_as_sent"] = raw
    return json_response(render(request, dep))


async def delete(request: Request) -> Response:
    dep = _service(request)
    _sim(request).delete(dep.id)
    return Response(status_code=200)


def routes() -> list[BaseRoute]:
    return [
        Route(f"{BASE}/flavor", flavors, methods=["GET"]),
        Route(BASE, list_services, methods=["GET"]),
        Route(BASE, create, methods=["POST"]),
        Route(BASE + "/{service_id}", get_service, methods=["GET"]),
        Route(BASE + "/{service_id}", update, methods=["PUT"]),
        Route(BASE + "/{service_id}", delete, methods=["DELETE"]),
    ]
