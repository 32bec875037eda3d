"""Checking a provider's answer before anything is decided or sent on it.

A provider answer that is not what its API says (a list body without its list, an item that is
not an object, a deployment without a usable id or name, two live deployments with one name,
a scale answer about another deployment) raises `MalformedAnswerError` naming what was wrong:
a temporary error, so a lookup fails (nothing is decided, as on a failed metric read) and the
next evaluation asks again. Nothing here is made up from what is missing. A malformed item of
a list that names a deployment fails only the lookups of that name (`read_list`, `pick`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from autoscaler.providers.base import DeploymentInfo, Listing, MalformedAnswerError
from autoscaler.textcut import cut

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~:-]{0,199}$")
"""An id goes into request paths as it is (`DELETE .../{id}`): one URL-safe path segment."""


def mapping(where: str, body: object) -> Mapping[str, Any]:
    """`body` when it is a JSON object; an empty body, a list, a string: malformed."""
    if not isinstance(body, Mapping):
        raise MalformedAnswerError(f"{where} answered {_show(body)}, not a JSON object")
    return body


def listed(where: str, body: object, keys: Sequence[str]) -> list[Mapping[str, Any]]:
    """The deployments of a list answer: a bare array, or an object holding one under the
    first of `keys` it has. An object without any of them (an error body sent with 200) is
    malformed, never an empty list: "none listed" would read as every deployment absent."""
    if isinstance(body, Mapping):
        found = next((k for k in keys if k in body), None)
        if found is None:
            raise MalformedAnswerError(
                f"{where} answered an object without {' or '.join(keys)}: {_show(body)}"
            )
        body = body[found]
    if not isinstance(body, list):
        raise MalformedAnswerError(f"{where} answered {_show(body)}, not a list of deployments")
    bad = [item for item in body if not isinstance(item, Mapping)]
    if bad:
        raise MalformedAnswerError(f"{where} listed {_show(bad[0])}, not a deployment object")
    return body


def read_list(
    items: Iterable[Mapping[str, Any]], to_info: Callable[[Mapping[str, Any]], DeploymentInfo]
) -> Listing:
    """The deployments of `listed` items. One that is malformed but names a deployment is
    skipped (someone else's broken deployment must not stall every policy of the account);
    a lookup of its name still fails (`pick`). One without a readable name fails the whole
    list: it may be the deployment looked up, and reading that as absent creates another."""
    listing = Listing()
    for item in items:
        try:
            listing.append(to_info(item))
        except MalformedAnswerError as exc:
            name = _name(item)
            if name is None:
                raise
            listing.skipped[name] = str(exc)
    return listing


def _name(item: Mapping[str, Any]) -> str | None:
    """The item's name when it is readable: a string that is not blank."""
    name = item.get("name")
    return name if isinstance(name, str) and name.strip() else None


def name_key(name: str) -> str:
    """A deployment name as compared for "the same name but for case or surrounding spaces"
    (`pick`, and the daemon's shared list, `runtime.reads.DeploymentView`)."""
    return name.strip().casefold()


def identity(where: str, item: Mapping[str, Any], id_key: str = "id") -> tuple[str, str]:
    """(id, name) of a deployment object: a name that is a non-blank string, an id that is one
    URL-safe path segment (a string or an integer). Anything else is malformed: acting on it
    would send a scale or delete to another path, or read the deployment as absent."""
    name, ident = _name(item), item.get(id_key)
    if name is None:
        raise MalformedAnswerError(
            f"{where}: a deployment's name is {_show(item.get('name'), 'null')}, not a "
            f"non-blank string ({id_key} {_show(ident, 'null')})"
        )
    if type(ident) is int and ident >= 0:
        ident = str(ident)
    if not isinstance(ident, str) or not SAFE_ID.match(ident):
        raise MalformedAnswerError(
            f"{where}: deployment {name!r} has {id_key} {_show(ident, 'null')}, not a URL-safe id"
        )
    return ident, name


def pick(
    where: str, name: str, deployments: Iterable[DeploymentInfo], *, skipped: Mapping[str, str]
) -> DeploymentInfo | None:
    """The deployment named `name`, None when none is. A dying one beside a live one: the live
    one. Two live ones: malformed (which one is ours cannot be told). With none named exactly
    `name`, one whose name differs only in case or surrounding spaces is malformed too
    (reading it as absent would create another); beside an exact match it is another
    deployment. An item of the list `skipped` as unreadable (`Listing`) under `name`, or
    under a name differing only in case or spaces, is malformed whatever else is listed: it
    may be ours, and it cannot be acted on."""
    wanted = name.casefold()
    for other, why in skipped.items():
        if name_key(other) == wanted:
            raise MalformedAnswerError(f"{why}; not deciding whether it is {name!r}")
    live: list[DeploymentInfo] = []
    dying: list[DeploymentInfo] = []
    variant: DeploymentInfo | None = None
    for dep in deployments:
        if dep.name == name:
            (dying if dep.status == "terminating" else live).append(dep)
        elif name_key(dep.name) == wanted:
            variant = dep
    if variant is not None and not live and not dying:
        raise MalformedAnswerError(
            f"{where}: deployment {variant.name!r} (id {variant.id}) differs from {name!r} only "
            "in case or spaces; not deciding whether it is this one"
        )
    if len(live) > 1 and len({d.id for d in live}) > 1:
        raise MalformedAnswerError(
            f"{where}: {len(live)} live deployments are named {name!r} "
            f"(ids {', '.join(sorted({d.id for d in live}))}); not deciding which one is ours"
        )
    return live[0] if live else (dying[0] if dying else None)


def same(where: str, deployment: DeploymentInfo, answer: DeploymentInfo) -> DeploymentInfo:
    """A scale answer about `deployment`; about another id or name: malformed."""
    if (answer.id, answer.name) != (deployment.id, deployment.name):
        raise MalformedAnswerError(
            f"{where}: the answer about {deployment.name!r} (id {deployment.id}) names "
            f"{answer.name!r} (id {answer.id})"
        )
    return answer


def url(value: object) -> str | None:
    """An endpoint URL when it is an http(s) URL string; anything else reads as none."""
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value
    return None


def _show(value: object, none: str = "an empty body") -> str:
    return cut(none if value is None else repr(value), 100)
