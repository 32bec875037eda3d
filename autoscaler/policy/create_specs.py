"""What `deployment.create` (and `deployment.name`) may hold, per provider type.

Declared once with the field vocabulary of `fields`, so the validator's messages (`FILE:LINE:COL:
key.path: message`, the bad value, "did you mean") and the JSON Schema's per-provider branches
come from the same table. The rules are the provider's documented ones:

- NeevCloud, the deploy body of the Dedicated Model Deployments API (our description is in
  tests/providers/contracts/neevcloud-openapi.yaml): `catalog_id` (url-safe, no slash),
  `region`, `gpu_config_id`, `plan_id` required; `gpu_count` >= 1; `config` with the honoured
  serving keys only (`max_model_len`, `max_num_seqs` positive integers, `extra_args` strings;
  the API keeps other keys but ignores them, so here they are a mistake). The deployment name
  is a DNS-1123 label of 3 to 30 characters (it is part of the inference hostname).
- NetMind, the inference-service create: a flavor (`flavor_id`, or `flavor`: a display name
  the client resolves), `deploy_metadata {image_url, command, port, gpu_num}`, optional
  `description` and `payment_type` (the flavor list bills in usd, cny and nmt).
- Nebius, the dedicated endpoint create: `model_name`, `flavor_name`, `gpu_type`, `gpu_count`
  (>= 1); the scaling block is the daemon's own (it sets min = max = the replica count).

Which provider a policy is for: its profile's `type` when the daemon config is known (the
daemon, `validate --config`); otherwise `deployment.provider_type` when written; otherwise the
type whose create keys the spec uses most (no check when none or a tie).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from yaml.nodes import MappingNode

from autoscaler.policy.errors import quote
from autoscaler.policy.fields import Field, Here, ListOf, Obj
from autoscaler.policy.scalars import Enum, Int, Spec, Str
from autoscaler.policy.yamlnodes import Collector, locate

PROVIDER_TYPES = ("neevcloud", "netmind", "nebius")


def _at_least_3(name: str) -> None:
    if len(name) < 3:
        raise ValueError(f"must be 3 to 30 characters, got {len(name)}: {quote(name)}")


NAMES: dict[str, Spec] = {
    "neevcloud": Str(
        "deployment name: a DNS-1123 label of 3 to 30 characters (part of the inference host)",
        pattern=r"[a-z0-9]([-a-z0-9]*[a-z0-9])?",
        pattern_text=(
            "a DNS-1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        ),
        max_len=30,
        check=_at_least_3,
    ),
}


def _one_flavor(here: Here) -> None:
    if not (here.has("flavor_id") or here.has("flavor")):
        here.sink.error(here.node, here.path, 'missing required key "flavor_id" (or "flavor")')
    elif here.has("flavor_id") and here.has("flavor"):
        here.error(["flavor"], 'give "flavor_id" or "flavor", not both')


CREATE: dict[str, Obj] = {
    "neevcloud": Obj(
        dict,
        {
            "catalog_id": Field(
                Str(
                    "the catalog's url-safe model id, e.g. meta-llama-Llama-3.1-8B-Instruct",
                    pattern=r"[a-zA-Z0-9_\-.]+",
                    pattern_text="the catalog's url-safe id (letters, digits, '_', '-', '.')",
                ),
                required=True,
            ),
            "region": Field(Str("region where the GPU is available"), required=True),
            "gpu_config_id": Field(
                Str("GPU configuration id (the inventory's config_id)"), required=True
            ),
            "plan_id": Field(
                Str("active on-demand billing plan for the GPU and region"), required=True
            ),
            "gpu_count": Field(Int("GPUs per replica", ge=1)),
            "config": Field(
                Obj(
                    dict,
                    {
                        "max_model_len": Field(Int("context length in tokens", ge=1)),
                        "max_num_seqs": Field(Int("concurrent sequences per batch", ge=1)),
                        "extra_args": Field(
                            ListOf(Str("one vLLM flag or value"), "extra vLLM arguments")
                        ),
                    },
                    "serving settings the API honours",
                )
            ),
        },
        "NeevCloud deploy body (the name comes from deployment.name)",
    ),
    "netmind": Obj(
        dict,
        {
            "flavor_id": Field(Str("flavor id from the flavor list")),
            "flavor": Field(
                Str("a flavor's display_name or cluster_flavor_id, resolved to its id")
            ),
            "deploy_metadata": Field(
                Obj(
                    dict,
                    {
                        "image_url": Field(Str("container image"), required=True),
                        "command": Field(Str("command the container runs")),
                        "port": Field(Int("port the server listens on", ge=1, le=65535)),
                        "gpu_num": Field(Int("GPUs per instance", ge=0)),
                    },
                    "what runs in each instance",
                ),
                required=True,
            ),
            "description": Field(Str("free text", min_len=0)),
            "payment_type": Field(Enum(("usd", "cny", "nmt"), "billing currency")),
        },
        "NetMind inference-service create (the name comes from deployment.name)",
        checks=[_one_flavor],
    ),
    "nebius": Obj(
        dict,
        {
            "model_name": Field(Str("model template name, e.g. gpt-oss-120b"), required=True),
            "flavor_name": Field(Str("template flavor, e.g. base or fast"), required=True),
            "gpu_type": Field(
                Str("GPU type the template supports, e.g. gpu-h100-sxm"), required=True
            ),
            "gpu_count": Field(Int("GPUs per replica", ge=1), required=True),
        },
        "Nebius dedicated endpoint create (scaling is set by the daemon)",
    ),
}


def infer_type(create: Mapping[str, Any] | None) -> str | None:
    """The provider type whose create keys `create` uses most; None when none or a tie."""
    if not create:
        return None
    scores = {t: len(set(create) & set(CREATE[t].fields)) for t in PROVIDER_TYPES}
    best = max(scores.values())
    winners = [t for t, score in scores.items() if score == best]
    return winners[0] if best > 0 and len(winners) == 1 else None


def check_deployment(root: MappingNode, provider_type: str, sink: Collector) -> None:
    """Check one policy's `deployment.name` and `deployment.create` for `provider_type`,
    reporting into `sink` at the lines of the bad keys."""
    name_spec = NAMES.get(provider_type)
    if name_spec is not None:
        node, path = locate(root, (), ["deployment", "name"], sink)
        if path == ("deployment", "name"):
            name_spec.convert(node, path, sink)
    node, path = locate(root, (), ["deployment", "create"], sink)
    if path == ("deployment", "create") and isinstance(node, MappingNode):
        CREATE[provider_type].convert(node, path, sink)


def deployment_schema_branches() -> list[dict[str, Any]]:
    """JSON Schema `if provider_type is X then name/create follow X` branches, for editors."""
    branches = []
    for t in PROVIDER_TYPES:
        then: dict[str, Any] = {"create": CREATE[t].schema()}
        if t in NAMES:
            then["name"] = {**NAMES[t].schema(), "minLength": 3}
        branches.append(
            {
                "if": {
                    "properties": {"provider_type": {"const": t, "description": f"the {t} API"}},
                    "required": ["provider_type"],
                },
                "then": {"properties": then},
            }
        )
    return branches
