"""NetMind dedicated inference endpoints client (seed 003).

What the seed gives: `GET /v1/inference-service/flavor` (flavors), `POST /v1/inference-service`
(create: `name`, `description`, `payment_type`, `resource_metadata {flavor_id, scale_type:
"manual", target_instance_number}`, `deploy_metadata {image_url, command, port, gpu_num}`),
`GET /v1/inference-service/{id}`, `PUT /v1/inference-service/{id}` with
`{"resource_metadata": {"target_instance_number": "2"}}` (the seed sends a *string*: so do we;
responses are parsed whether it comes back as a number or a string), and
`DELETE /v1/inference-service/{id}`. Status `initializing` -> `available` (= ready); `failed`
and `deleting` are assumed words for the other two states.

Finding by name: the seed documents no list endpoint, and the daemon knows deployments only by
name. `find(name)` first asks `GET /v1/inference-service/{id}` for an id this client learnt
(from its own creates or earlier listings), and otherwise lists with
`GET /v1/inference-service` (NOT in the seed: assumed to answer `{"service_list": [...]}` like
the flavor list's `{"flavor_list": [...]}`; `{"data": [...]}` or a bare array are accepted too)
and matches `name`. Without some listing, a create whose response was lost could not be
resolved, so we rely on it; the simulator implements it.

The spec a recreate needs: `flavor_id` (or `flavor`: a flavor's `display_name` or
`cluster_flavor_id`, resolved through the flavor list), `deploy_metadata`, optional
`description` and `payment_type` (default `usd`). All are echoed by get, so the spec is
rebuilt from the response.

Inference: the seed elides `endpoint_metadata` ("..."); we read `endpoint_metadata.endpoint_url`
(or `url`) as the OpenAI-compatible base, present once `available`, and send the API token
(NetMind documents one bearer token) unless the profile names an `inference.token`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from autoscaler.core.status import DeploymentState, Status
from autoscaler.providers.answers import identity, listed, mapping, read_list, same, url
from autoscaler.providers.base import (
    DeploymentInfo,
    InferenceRoute,
    InvalidRequestError,
    Listing,
    NotFoundError,
)
from autoscaler.providers.common import BaseProvider, created, replica_count
from autoscaler.providers.inference import InferenceRoutes

BASE = "/v1/inference-service"
LIST_KEYS = ("service_list", "data", "items")
SPEC_KEYS = ("flavor_id", "flavor", "deploy_metadata", "description", "payment_type")
# The provider's status words -> the shared vocabulary; an unknown word reads as initializing.
FROM_PROVIDER: dict[str, Status] = {
    "available": "ready",
    "initializing": "initializing",
    "pending": "initializing",
    "updating": "initializing",
    "failed": "failed",
    "error": "failed",
    "deleting": "terminating",
    "terminating": "terminating",
}


def parse_count(value: Any) -> int | None:
    """target_instance_number arrives as 1 or "1"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


class NetMindProvider(BaseProvider):
    provider_type = "netmind"
    create_sets_replicas = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._ids: dict[str, str] = {}
        self._routes = InferenceRoutes(self.profile, api_token_fallback=True)

    def to_info(self, item: Mapping[str, Any]) -> DeploymentInfo:
        service_id, name = identity(self.profile_name, item, "service_id")
        raw = str(item.get("status") or "")
        status: Status = FROM_PROVIDER.get(raw.lower(), "initializing")
        resource = item.get("resource_metadata") or {}
        if not isinstance(resource, Mapping):
            resource = {}  # no count: a ready one is unreadable (replica_count)
        endpoint = item.get("endpoint_metadata") or {}
        count, unreadable = replica_count(
            status, resource.get("target_instance_number"), parse_count
        )
        spec: dict[str, Any] = {}
        if resource.get("flavor_id"):
            spec["flavor_id"] = resource["flavor_id"]
        if isinstance(item.get("deploy_metadata"), dict):
            spec["deploy_metadata"] = dict(item["deploy_metadata"])
        for key in ("description", "payment_type"):
            if item.get(key) is not None:
                spec[key] = item[key]
        endpoint_url = (
            url(endpoint.get("endpoint_url") or endpoint.get("url"))
            if isinstance(endpoint, dict)
            else None
        )
        if status != "terminating":
            self._ids[name] = service_id
        return DeploymentInfo(
            id=service_id,
            name=name,
            state=DeploymentState(status, count),
            endpoint_url=endpoint_url if status == "ready" else None,
            spec=MappingProxyType(spec),
            raw_status=raw,
            unreadable=unreadable,
        )

    def inference_route(self, info: DeploymentInfo) -> InferenceRoute | None:
        """`endpoint_metadata.endpoint_url` once `available` (else `inference.base_url`), with
        `inference.token` or, as NetMind has one bearer token for everything, the API token.
        The model name is the client's: the container serves what it serves."""
        base = info.endpoint_url or self._routes.configured_base
        return self._routes.route(info, base)

    def adopt_route(
        self, info: DeploymentInfo, base_url: str, model: str | None
    ) -> InferenceRoute | None:
        """The learned endpoint URL (NetMind reports none while scaling); the client's model
        name is kept, as on every NetMind route."""
        return self._routes.adopt(info, base_url, None)

    async def flavors(self) -> list[dict[str, Any]]:
        body = await self._request_json("flavors", "GET", f"{BASE}/flavor")
        flavors = body.get("flavor_list") if isinstance(body, dict) else None
        return [f for f in flavors or [] if isinstance(f, dict)]

    async def list(self) -> Listing:
        body = await self._request_json("list", "GET", BASE)
        return read_list(listed(f"{self.profile_name}: list", body, LIST_KEYS), self.to_info)

    async def find(self, name: str) -> DeploymentInfo | None:
        known = self._ids.get(name)
        if known is not None:
            try:
                info = await self.get(known)
            except NotFoundError:
                self._ids.pop(name, None)
            else:
                if info.name == name and info.status != "terminating":
                    return info
        return await super().find(name)

    async def get(self, service_id: str) -> DeploymentInfo:
        body = await self._request_json("get", "GET", f"{BASE}/{service_id}")
        return self.to_info(mapping(f"{self.profile_name}: get", body))

    async def scale(self, deployment: DeploymentInfo, replicas: int) -> DeploymentInfo:
        self.check_replicas(replicas)
        body = {"resource_metadata": {"target_instance_number": str(replicas)}}
        answer = await self._request_json("scale", "PUT", f"{BASE}/{deployment.id}", json=body)
        where = f"{self.profile_name}: scale"
        return same(where, deployment, self.to_info(mapping(where, answer)))

    async def delete(self, deployment: DeploymentInfo) -> None:
        try:
            await self._request_json("delete", "DELETE", f"{BASE}/{deployment.id}")
        except NotFoundError:
            pass  # already gone
        self._ids.pop(deployment.name, None)
        self._routes.forget(deployment)

    def validate_spec(self, name: str, spec: Mapping[str, Any]) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequestError("deployment name must be a non-empty string")
        unknown = sorted(set(spec) - set(SPEC_KEYS))
        if unknown:
            raise InvalidRequestError(
                f"deployment {name!r}: unknown create spec keys {', '.join(unknown)} "
                f"(allowed: {', '.join(SPEC_KEYS)})"
            )
        if not spec.get("flavor_id") and not spec.get("flavor"):
            raise InvalidRequestError(f"deployment {name!r}: create spec needs flavor_id or flavor")
        if not isinstance(spec.get("deploy_metadata"), Mapping):
            raise InvalidRequestError(
                f"deployment {name!r}: create spec needs deploy_metadata "
                "(image_url, command, port, gpu_num)"
            )

    async def resolve_flavor(self, spec: Mapping[str, Any]) -> str:
        if spec.get("flavor_id"):
            return str(spec["flavor_id"])
        wanted = str(spec["flavor"])
        for flavor in await self.flavors():
            if wanted in (flavor.get("display_name"), flavor.get("cluster_flavor_id")):
                return str(flavor["flavor_id"])
        raise InvalidRequestError(f"{self.profile_name}: no flavor named {wanted!r}")

    async def _create_once(
        self, name: str, spec: Mapping[str, Any], replicas: int
    ) -> DeploymentInfo:
        body = {
            "name": name,
            "description": spec.get("description", ""),
            "payment_type": spec.get("payment_type", "usd"),
            "resource_metadata": {
                "flavor_id": await self.resolve_flavor(spec),
                "scale_type": "manual",
                "target_instance_number": replicas,
            },
            "deploy_metadata": dict(spec["deploy_metadata"]),
        }
        response = await self.http.request("create", "POST", BASE, json=body)
        return self.to_info(created(self.profile_name, response))
