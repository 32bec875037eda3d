"""NeevCloud Dedicated Model Deployments client (seed 001, OpenAPI 3.0.3).

Operations (all under `{base_url}/api/v1beta1/orgs/{org_id}/projects/{project_id}`):
list `GET /aimodels?page&limit` (follows `pagination.total_pages`), deploy `POST /aimodels`
(201), get `GET /aimodels/{id}`, delete `DELETE /aimodels/{id}` (204) and
`PUT /aimodels/{id}/scale {"replicas": n}` with n >= 1: zero is never sent, the daemon deletes.
Statuses are already the normalized words (`initializing ready failed terminating`).
Auth: the profile's `token` (an `access_token`, not an `sk-nc-*` inference key) or its `login`
(console credentials exchanged at `POST /api/v1/auth/login`, one re-login on 401).
Inference (`inference_route`): `{endpoint_url}/chat/completions` with the profile's
`inference.token` (an `sk-nc-*` key) and `model` = the response's `model_id`.

The spec a recreate needs (`DeploymentInfo.spec`), key by key:
- `region`, `gpu_config_id`, `gpu_count`: echoed by every response, taken from it.
- `catalog_id`: the deploy request takes the catalog's url-safe `id`, the response echoes the
  slash `model_id`. Carried from the create this client sent when it has one; otherwise derived
  from `model_id` by replacing `/` with `-` (the catalog convention in the seed's example:
  `meta-llama/Llama-3.1-8B-Instruct` -> `meta-llama-Llama-3.1-8B-Instruct`).
- `plan_id`, `config`: never echoed; carried from the create this client sent, else absent
  (the daemon recreates from the policy's `deployment.create`, which always has them).
Deploy has no replica field: `create(name, spec, n)` deploys one replica and `wait_ready`
scales to n once the deployment is `ready`.
"""

from __future__ import annotations

import re
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
    MalformedAnswerError,
    NotFoundError,
)
from autoscaler.providers.common import BaseProvider, created, replica_count
from autoscaler.providers.inference import InferenceRoutes

NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_MIN, NAME_MAX = 3, 30
CATALOG_ID_PATTERN = re.compile(r"^[a-zA-Z0-9_\-\.]+$")
PAGE_LIMIT = 100  # the API's maximum page size: fewest round trips
MAX_PAGES = 1_000  # 100,000 deployments: past it the pagination is taken to never end

SPEC_REQUIRED = ("catalog_id", "region", "gpu_config_id", "plan_id")
SPEC_OPTIONAL = ("gpu_count", "config")
# The provider's status words -> the shared vocabulary; an unknown word reads as initializing.
FROM_PROVIDER: dict[str, Status] = {
    "initializing": "initializing",
    "ready": "ready",
    "failed": "failed",
    "terminating": "terminating",
}


def check_name(name: str) -> None:
    """The deployment name is a DNS-1123 label of 3..30 characters (it is part of the public
    inference hostname)."""
    if not isinstance(name, str) or not NAME_MIN <= len(name) <= NAME_MAX:
        raise InvalidRequestError(
            f"deployment name {name!r} must be {NAME_MIN}..{NAME_MAX} characters long"
        )
    if not NAME_PATTERN.match(name):
        raise InvalidRequestError(
            f"deployment name {name!r} must be lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (DNS-1123 label)"
        )


class NeevCloudProvider(BaseProvider):
    provider_type = "neevcloud"
    create_sets_replicas = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        org, project = self.profile.org_id, self.profile.project_id
        self.prefix = f"/api/v1beta1/orgs/{org}/projects/{project}/aimodels"
        self._sent_specs: dict[str, dict[str, Any]] = {}
        self._routes = InferenceRoutes(self.profile, api_token_fallback=False)

    # --- mapping ----------------------------------------------------------------------------

    def to_info(self, item: Mapping[str, Any]) -> DeploymentInfo:
        ident, name = identity(self.profile_name, item)
        raw = str(item.get("status") or "")
        status: Status = FROM_PROVIDER.get(raw, "initializing")
        replicas, unreadable = replica_count(status, item.get("replicas"))
        return DeploymentInfo(
            id=ident,
            name=name,
            state=DeploymentState(status, replicas),
            endpoint_url=url(item.get("endpoint_url")) if status == "ready" else None,
            spec=MappingProxyType(self.spec_from_response(item)),
            raw_status=raw,
            served_model=str(item.get("model_id") or "") or None,
            unreadable=unreadable,
        )

    def spec_from_response(self, item: Mapping[str, Any]) -> dict[str, Any]:
        sent = self._sent_specs.get(str(item.get("name") or ""), {})
        spec: dict[str, Any] = dict(sent)
        model_id = item.get("model_id")
        if "catalog_id" not in spec and isinstance(model_id, str) and model_id:
            spec["catalog_id"] = model_id.replace("/", "-")
        for key in ("region", "gpu_config_id", "gpu_count"):
            if item.get(key) is not None:
                spec[key] = item[key]
        return spec

    def inference_route(self, info: DeploymentInfo) -> InferenceRoute | None:
        """`endpoint_url` once `ready` (seed 001: send to `{endpoint_url}/chat/completions`),
        the model named by its `model_id` (what the deployment serves under), and the profile's
        `inference.token` (an `sk-nc-*` key)."""
        base = info.endpoint_url or self._routes.configured_base
        return self._routes.route(info, base, info.served_model)

    def adopt_route(
        self, info: DeploymentInfo, base_url: str, model: str | None
    ) -> InferenceRoute | None:
        """The learned `endpoint_url` (NeevCloud reports none while scaling), with the model
        this client sees the deployment serve under (its `model_id`) and its own key."""
        return self._routes.adopt(info, base_url, info.served_model or model)

    # --- operations -------------------------------------------------------------------------

    async def list(self) -> Listing:
        """Every page (`pagination.total_pages`, else until a short page, counting the items
        skipped as unreadable). A page that only repeats deployments already read, or more
        than MAX_PAGES pages: malformed, never a partial list (a deployment on an unread page
        would read as absent)."""
        where = f"{self.profile_name}: list"
        found: dict[str, DeploymentInfo] = {}
        skipped: dict[str, str] = {}
        page = 1
        while True:
            if page > MAX_PAGES:
                raise MalformedAnswerError(
                    f"{where}: still more pages after {MAX_PAGES} (pagination never ends)"
                )
            body = mapping(
                where,
                await self._request_json(
                    "list", "GET", self.prefix, params={"page": page, "limit": PAGE_LIMIT}
                ),
            )
            raw = listed(where, body, ("items",))
            items = read_list(raw, self.to_info)
            if items and all(d.id in found for d in items):
                raise MalformedAnswerError(
                    f"{where}: page {page} repeats only deployments of earlier pages "
                    "(pagination loops)"
                )
            found.update((d.id, d) for d in items if d.id not in found)
            skipped.update(items.skipped)
            total_pages = self._total_pages(where, body)
            if (page >= total_pages) if total_pages is not None else len(raw) < PAGE_LIMIT:
                return Listing(found.values(), skipped)
            page += 1

    @staticmethod
    def _total_pages(where: str, body: Mapping[str, Any]) -> int | None:
        pagination = body.get("pagination")
        if pagination is None:
            return None
        total = mapping(f"{where} pagination", pagination).get("total_pages")
        if total is None:
            return None
        if type(total) is not int or not 0 <= total <= MAX_PAGES:
            raise MalformedAnswerError(
                f"{where}: total_pages is {total!r:.40}, not a page count in 0..{MAX_PAGES}"
            )
        return total

    async def get(self, deployment_id: str) -> DeploymentInfo:
        body = await self._request_json("get", "GET", f"{self.prefix}/{deployment_id}")
        return self.to_info(mapping(f"{self.profile_name}: get", body))

    async def scale(self, deployment: DeploymentInfo, replicas: int) -> DeploymentInfo:
        self.check_replicas(replicas)
        body = await self._request_json(
            "scale", "PUT", f"{self.prefix}/{deployment.id}/scale", json={"replicas": replicas}
        )
        where = f"{self.profile_name}: scale"
        return same(where, deployment, self.to_info(mapping(where, body)))

    async def delete(self, deployment: DeploymentInfo) -> None:
        try:
            await self._request_json("delete", "DELETE", f"{self.prefix}/{deployment.id}")
        except NotFoundError:
            pass  # already gone
        self._pending_replicas.pop(deployment.name, None)
        self._routes.forget(deployment)

    def validate_spec(self, name: str, spec: Mapping[str, Any]) -> None:
        check_name(name)
        missing = [k for k in SPEC_REQUIRED if k not in spec]
        if missing:
            raise InvalidRequestError(
                f"deployment {name!r}: create spec is missing {', '.join(missing)}"
            )
        unknown = sorted(set(spec) - set(SPEC_REQUIRED) - set(SPEC_OPTIONAL))
        if unknown:
            raise InvalidRequestError(
                f"deployment {name!r}: unknown create spec keys {', '.join(unknown)} "
                f"(allowed: {', '.join(SPEC_REQUIRED + SPEC_OPTIONAL)})"
            )
        for key in ("catalog_id", "region", "gpu_config_id", "plan_id"):
            if not isinstance(spec[key], str) or not spec[key]:
                raise InvalidRequestError(f"deployment {name!r}: {key} must be a non-empty string")
        if not CATALOG_ID_PATTERN.match(spec["catalog_id"]):
            raise InvalidRequestError(
                f"deployment {name!r}: catalog_id {spec['catalog_id']!r} must be the catalog's "
                "url-safe id (letters, digits, '_', '-', '.'; no slash)"
            )
        count = spec.get("gpu_count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidRequestError(f"deployment {name!r}: gpu_count must be an integer >= 1")
        if "config" in spec and not isinstance(spec["config"], Mapping):
            raise InvalidRequestError(f"deployment {name!r}: config must be a mapping")

    def request_body(self, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": name,
            "catalog_id": spec["catalog_id"],
            "region": spec["region"],
            "gpu_config_id": spec["gpu_config_id"],
            "gpu_count": spec.get("gpu_count", 1),
            "plan_id": spec["plan_id"],
        }
        if "config" in spec:
            body["config"] = dict(spec["config"])
        return body

    async def _create_once(
        self, name: str, spec: Mapping[str, Any], replicas: int
    ) -> DeploymentInfo:
        body = self.request_body(name, spec)
        self._sent_specs[name] = {k: v for k, v in body.items() if k != "name"}
        response = await self.http.request("create", "POST", self.prefix, json=body)
        return self.to_info(created(self.profile_name, response))
