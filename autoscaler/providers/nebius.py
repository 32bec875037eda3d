"""Nebius-style dedicated endpoints client (seed 004, `/v0/dedicated_endpoints`).

What the seed gives: templates, create (`name`, `model_name`, `flavor_name`, `gpu_type`,
`gpu_count`, `scaling.min_replicas`, `scaling.max_replicas`; the answer has `id` and
`routing_key`), list, a partial `PATCH` (only the fields sent change), and
`DELETE /v0/dedicated_endpoints/{endpoint_id}`. Startup takes 10-15 minutes and inference
answers 404 meanwhile. The seed shows only the delete path; the others are assumed to be
`GET /v0/dedicated_endpoints/templates`, `GET|POST /v0/dedicated_endpoints` and
`GET|PATCH /v0/dedicated_endpoints/{id}`. Status words are not in the seed either: the client
accepts the common ones (`running`/`ready`/`active`, `creating`/`starting`/`updating`,
`failed`/`error`, `deleting`).

Scaling to N sets `min_replicas = max_replicas = N`: the daemon is the autoscaler, so the
provider's own autoscaler must not move the count between min and max behind its back (that
would fight our hysteresis and make cost caps meaningless); pinning both bounds in one PATCH
turns the provider's range into an exact count, and one request keeps min <= max at all times.

The spec a recreate needs (`model_name`, `flavor_name`, `gpu_type`, `gpu_count`) is echoed by
the provider and rebuilt from each response.

Inference: every endpoint shares one OpenAI-compatible base (`inference.base_url`, default the
API `base_url` + `/v1`) and is chosen by `model` = its `routing_key`; the bearer token is
`inference.token`, else the API token (the seed documents one). An endpoint `updating` (a
scale) that reports `ready_replicas >= 1` is routable: those replicas serve, whether or not this
client saw it running before.
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

BASE = "/v0/dedicated_endpoints"
LIST_KEYS = ("endpoints", "data", "items")
SPEC_REQUIRED = ("model_name", "flavor_name", "gpu_type", "gpu_count")
# The provider's status words -> the shared vocabulary; an unknown word reads as initializing.
FROM_PROVIDER: dict[str, Status] = {
    "running": "ready",
    "ready": "ready",
    "active": "ready",
    "available": "ready",
    "creating": "initializing",
    "starting": "initializing",
    "pending": "initializing",
    "provisioning": "initializing",
    "updating": "initializing",
    "scaling": "initializing",
    "failed": "failed",
    "error": "failed",
    "deleting": "terminating",
    "terminating": "terminating",
}


class NebiusProvider(BaseProvider):
    provider_type = "nebius"
    create_sets_replicas = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._routes = InferenceRoutes(self.profile, api_token_fallback=True)

    def to_info(self, item: Mapping[str, Any]) -> DeploymentInfo:
        ident, name = identity(self.profile_name, item)
        raw = str(item.get("status") or item.get("state") or "")
        status: Status = FROM_PROVIDER.get(raw.lower(), "initializing")
        scaling = item.get("scaling") or {}
        raw_count = scaling.get("min_replicas") if isinstance(scaling, dict) else None
        ready = item.get("ready_replicas")
        if type(raw_count) is int and raw_count == 0:
            # A floor of 0 is a valid setting (an endpoint made with the provider's own
            # autoscaling), not garbage: the replicas serving are the count then.
            raw_count = ready if type(ready) is int and ready >= 1 else 1
        count, unreadable = replica_count(status, raw_count)
        spec = {k: item[k] for k in SPEC_REQUIRED if item.get(k) is not None}
        endpoint_url = url(item.get("endpoint_url")) or self.shared_base()
        serving = ready if type(ready) is int and ready >= 0 else None
        return DeploymentInfo(
            id=ident,
            name=name,
            state=DeploymentState(status, count, serving),
            endpoint_url=endpoint_url if status == "ready" else None,
            spec=MappingProxyType(spec),
            raw_status=raw,
            served_model=str(item.get("routing_key") or "") or None,
            unreadable=unreadable,
        )

    def shared_base(self) -> str:
        """The API base + /v1: where every endpoint answers unless `inference.base_url` says."""
        return f"{str(self.http.client.base_url).rstrip('/')}/v1"

    def inference_route(self, info: DeploymentInfo) -> InferenceRoute | None:
        """The shared OpenAI-compatible base (`inference.base_url`, default the API base + /v1)
        with `model` = the endpoint's `routing_key`; no routing key, no route. The base is
        known whatever the status, so an endpoint `updating` with `ready_replicas >= 1` is
        routable even to a client that never saw it running."""
        if info.served_model is None:
            return None
        base = self._routes.configured_base or info.endpoint_url or self.shared_base()
        return self._routes.route(info, base, info.served_model)

    def adopt_route(
        self, info: DeploymentInfo, base_url: str, model: str | None
    ) -> InferenceRoute | None:
        """Only the news that the endpoint serves is taken: the base and the routing key are
        this client's own (the shared base, the endpoint's `routing_key`)."""
        if info.served_model is None:
            return None
        base = self._routes.configured_base or self.shared_base()
        return self._routes.adopt(info, base, info.served_model)

    async def templates(self) -> list[dict[str, Any]]:
        body = await self._request_json("templates", "GET", f"{BASE}/templates")
        if isinstance(body, dict):
            body = body.get("templates", body.get("data", []))
        return [t for t in body or [] if isinstance(t, dict)]

    async def list(self) -> Listing:
        body = await self._request_json("list", "GET", BASE)
        return read_list(listed(f"{self.profile_name}: list", body, LIST_KEYS), self.to_info)

    async def scale(self, deployment: DeploymentInfo, replicas: int) -> DeploymentInfo:
        self.check_replicas(replicas)
        body = {"scaling": {"min_replicas": replicas, "max_replicas": replicas}}
        answer = await self._request_json("scale", "PATCH", f"{BASE}/{deployment.id}", json=body)
        where = f"{self.profile_name}: scale"
        return same(where, deployment, self.to_info(mapping(where, answer)))

    async def delete(self, deployment: DeploymentInfo) -> None:
        try:
            await self._request_json("delete", "DELETE", f"{BASE}/{deployment.id}")
        except NotFoundError:
            pass  # already gone
        self._routes.forget(deployment)

    def validate_spec(self, name: str, spec: Mapping[str, Any]) -> None:
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequestError("deployment name must be a non-empty string")
        missing = [k for k in SPEC_REQUIRED if k not in spec]
        if missing:
            raise InvalidRequestError(
                f"deployment {name!r}: create spec is missing {', '.join(missing)}"
            )
        unknown = sorted(set(spec) - set(SPEC_REQUIRED))
        if unknown:
            raise InvalidRequestError(
                f"deployment {name!r}: unknown create spec keys {', '.join(unknown)} "
                f"(allowed: {', '.join(SPEC_REQUIRED)})"
            )
        count = spec["gpu_count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidRequestError(f"deployment {name!r}: gpu_count must be an integer >= 1")

    async def _create_once(
        self, name: str, spec: Mapping[str, Any], replicas: int
    ) -> DeploymentInfo:
        body = {
            "name": name,
            **{k: spec[k] for k in SPEC_REQUIRED},
            "scaling": {"min_replicas": replicas, "max_replicas": replicas},
        }
        response = await self.http.request("create", "POST", BASE, json=body)
        return self.to_info(created(self.profile_name, response))
