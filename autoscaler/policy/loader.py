"""Loading policy files and the daemon config into validated model objects.

Public API (other layers depend on these names): `load_policy_text`, `load_policy_file`,
`load_policies`, `load_daemon_config`, `load_daemon`, `read_file_capped`, plus `PolicyError`,
`ValidationFailed` and `parse_duration` re-exported. Every problem in every file is collected
and raised at once as `ValidationFailed`; no other exception escapes, whatever the input. The
rules themselves live on the model dataclasses (`sections`, via `declare`) and in `fields` /
`scalars` (how a field validates).

Files are read by `read_file_capped` (`files.py`, re-exported here with `open_regular` and
`FileRefused`): only regular files, without blocking, never more than `MAX_TEXT`.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from yaml.nodes import MappingNode, Node

from autoscaler.policy.create_specs import check_deployment, infer_type
from autoscaler.policy.durations import parse_duration
from autoscaler.policy.errors import (
    FILE_PATH,
    ROOT_PATH,
    PolicyError,
    ValidationFailed,
    quote,
)
from autoscaler.policy.fields import Obj
from autoscaler.policy.files import FileRefused, PathLike, open_regular, read_file_capped
from autoscaler.policy.model import DaemonConfig, Policy
from autoscaler.policy.scalars import INVALID
from autoscaler.policy.tables import DAEMON, POLICY
from autoscaler.policy.yamlnodes import (
    Abort,
    Collector,
    describe,
    locate,
    parse_documents,
)

__all__ = [
    "FileRefused",
    "PolicyError",
    "ValidationFailed",
    "load_daemon",
    "load_daemon_config",
    "load_daemon_config_text",
    "load_policies",
    "load_policy_file",
    "load_policy_text",
    "open_regular",
    "parse_duration",
    "read_file_capped",
]

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LocatedPolicy:
    """A loaded policy with the node tree it came from (for later cross-file messages)."""

    policy: Policy
    root: MappingNode
    filename: str


def _convert_document(spec: Obj, node: Node, sink: Collector) -> object:
    try:
        return spec.convert(node, (), sink)
    except Abort:
        return INVALID
    except RecursionError:
        sink.error(node, (), "document nested too deep")
        return INVALID


def _policies_from_text(text: str, filename: str, sink: Collector) -> list[LocatedPolicy]:
    located: list[LocatedPolicy] = []
    documents = parse_documents(text, sink)
    if not documents and not sink.errors:
        sink.error_at(1, 1, ROOT_PATH, "no policy in this file")
    for node in documents:
        errors_before = len(sink.errors)
        policy = _convert_document(POLICY, node, sink)
        if isinstance(policy, Policy) and len(sink.errors) == errors_before:
            assert isinstance(node, MappingNode)
            located.append(LocatedPolicy(replace(policy, source_file=filename), node, filename))
        elif len(sink.errors) == errors_before:  # never drop a document silently
            sink.error(node, (), "this document is not a valid policy")
    return located


def _check_unique(located: list[LocatedPolicy], sink_for: dict[str, Collector]) -> None:
    """Policy names, and the deployments they manage, must be unique across all files."""
    names: dict[str, LocatedPolicy] = {}
    deployments: dict[tuple[str, str], LocatedPolicy] = {}
    models: dict[str, LocatedPolicy] = {}  # gateway model name -> the policy routing it
    for item in located:
        sink = sink_for[item.filename]
        for model in item.policy.gateway.models if item.policy.gateway else ():
            router = models.setdefault(model, item)
            if router is not item:
                node, path = locate(item.root, (), ["gateway", "model"], sink)
                sink.error(
                    node,
                    path,
                    f"model {quote(model)} is already routed by policy "
                    f"{quote(router.policy.name)} ({router.filename})",
                )
        first = names.get(item.policy.name)
        if first is not None:
            node, path = locate(item.root, (), ["name"], sink)
            first_node, _ = locate(first.root, (), ["name"], sink)
            line = first_node.start_mark.line + 1
            sink.error(
                node,
                path,
                f"duplicate policy name {quote(item.policy.name)} (also "
                f"in {first.filename}:{line})",
            )
        else:
            names[item.policy.name] = item
        key = (item.policy.deployment.provider, item.policy.deployment.name)
        owner = deployments.get(key)
        if owner is not None and first is None:
            node, path = locate(item.root, (), ["deployment", "name"], sink)
            sink.error(
                node,
                path,
                f"deployment {quote(key[1])} at {quote(key[0])} is already "
                f"scaled by policy {quote(owner.policy.name)} ({owner.filename})",
            )
        else:
            deployments.setdefault(key, item)


def _check_create_specs(
    located: list[LocatedPolicy],
    sink_for: dict[str, Collector],
    profile_types: Mapping[str, str] | None,
) -> None:
    """`deployment.name` and `deployment.create` against the rules of the policy's provider:
    its profile's type when the daemon config is known (`profile_types`: profile -> type),
    else `deployment.provider_type`, else the type its create keys suggest."""
    for item in located:
        sink = sink_for[item.filename]
        deployment = item.policy.deployment
        written = deployment.provider_type
        if profile_types is None:
            provider_type = written or infer_type(deployment.create)
        else:
            provider_type = profile_types.get(deployment.provider)
            if provider_type is None:
                continue  # an unknown profile is reported by load_daemon
            if written is not None and written != provider_type:
                node, path = locate(item.root, (), ["deployment", "provider_type"], sink)
                sink.error(
                    node,
                    path,
                    f"is {quote(written)} but provider profile {quote(deployment.provider)} "
                    f"is of type {quote(provider_type)}",
                )
                continue
        if provider_type is not None:
            check_deployment(item.root, provider_type, sink)


def load_policy_text(text: str, filename: str = "<string>") -> list[Policy]:
    """Every policy in `text` (one per YAML document). Raises ValidationFailed."""
    sink = Collector(filename)
    if not isinstance(text, str):
        sink.error_at(1, 1, FILE_PATH, f"policy text must be a string, got {type(text).__name__}")
        raise ValidationFailed(sink.errors)
    located = _policies_from_text(text, filename, sink)
    _check_unique(located, {filename: sink})
    _check_create_specs(located, {filename: sink}, None)
    if sink.errors:
        raise ValidationFailed(sorted(sink.errors, key=lambda e: (e.line, e.col)))
    return [item.policy for item in located]


def _read_text(path: Path, sink: Collector) -> str | None:
    try:
        data = read_file_capped(path)
    except FileRefused as exc:
        sink.error_at(1, 1, FILE_PATH, str(exc))
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        sink.error_at(line, col, ROOT_PATH, f"not UTF-8 text: byte 0x{data[exc.start]:02x}")
        return None


def load_policy_file(path: PathLike) -> list[Policy]:
    """Every policy in one file. Raises ValidationFailed (also for an unreadable file)."""
    return load_policies([path])


def _found(name: str, errors: list[PolicyError]) -> list[Path]:
    """The files one path names (see `expand_paths`); a path the OS refuses (too long, a NUL
    byte) is an error here, not an exception."""
    path = Path(name)
    if "\0" in name:
        errors.append(PolicyError(quote(name), 1, 1, FILE_PATH, "a path cannot hold a NUL byte"))
        return []
    try:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in YAML_SUFFIXES and p.is_file())
            if not found:
                errors.append(
                    PolicyError(name, 1, 1, FILE_PATH, "folder holds no *.yaml or *.yml file")
                )
            return found
        if path.exists() or not glob.has_magic(name):
            return [path]  # a missing plain path is reported when read
        found = sorted(Path(p) for p in glob.glob(name, recursive=True) if Path(p).is_file())
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        errors.append(PolicyError(name, 1, 1, FILE_PATH, f"cannot read: {why}"))
        return []
    if not found:
        errors.append(PolicyError(name, 1, 1, FILE_PATH, "pattern matches no file"))
    return found


def expand_paths(paths: Iterable[PathLike], errors: list[PolicyError]) -> list[Path]:
    """Files named by `paths`: files as given, folders as their *.yaml / *.yml (sorted),
    anything else as a glob. Paths naming nothing become errors; duplicates are dropped."""
    files: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        for file in _found(os.fspath(raw), errors):
            try:
                identity = file.resolve()
            except (OSError, RuntimeError, ValueError):
                identity = file
            if identity not in seen:
                seen.add(identity)
                files.append(file)
    return files


def _as_list(paths: PathLike | Iterable[PathLike]) -> list[PathLike]:
    if isinstance(paths, str | os.PathLike):
        return [paths]
    return list(paths)


def load_located(
    paths: PathLike | Iterable[PathLike],
    profile_types: Mapping[str, str] | None = None,
) -> tuple[list[LocatedPolicy], list[Path], list[PolicyError]]:
    """Policies with their nodes, the files read, and every error (nothing raised).

    `profile_types` (provider profile -> provider type, from the daemon config) makes the
    create specs be checked against their profile's provider."""
    errors: list[PolicyError] = []
    files = expand_paths(_as_list(paths), errors)
    located: list[LocatedPolicy] = []
    sinks: dict[str, Collector] = {}
    for file in files:
        sink = sinks.setdefault(str(file), Collector(str(file)))
        text = _read_text(file, sink)
        if text is not None:
            located.extend(_policies_from_text(text, str(file), sink))
    _check_unique(located, sinks)
    _check_create_specs(located, sinks, profile_types)
    for sink in sinks.values():
        errors.extend(sorted(sink.errors, key=lambda e: (e.line, e.col)))
    return located, files, errors


def load_policies(paths: PathLike | Iterable[PathLike]) -> list[Policy]:
    """Every policy in files, folders (their *.yaml / *.yml) and globs, in order.

    Names must be unique across all files. Raises ValidationFailed with every error of every
    file, or when no path was given.
    """
    path_list = _as_list(paths)
    if not path_list:
        raise ValidationFailed([PolicyError("<none>", 1, 1, FILE_PATH, "no policy path given")])
    located, _files, errors = load_located(path_list)
    if errors:
        raise ValidationFailed(errors)
    return [item.policy for item in located]


# --- daemon config --------------------------------------------------------------------------


def _config_from_text(text: str, filename: str, sink: Collector) -> DaemonConfig | None:
    documents = parse_documents(text, sink)
    if sink.errors:
        return None
    if len(documents) != 1:
        where = documents[1] if len(documents) > 1 else None
        sink.error(where, (), f"a config file holds exactly one document, got {len(documents)}")
        return None
    node = documents[0]
    if not isinstance(node, MappingNode):
        sink.error(node, (), f"must be a mapping, got {describe(node)}")
        return None
    config = _convert_document(DAEMON, node, sink)
    if not isinstance(config, DaemonConfig) or sink.errors:
        if not sink.errors:
            sink.error(node, (), "this document is not a valid config")
        return None
    # Relative to the config file, made absolute so a later chdir cannot change its meaning.
    policies = os.path.abspath(os.path.join(os.path.dirname(filename), config.policies))
    return replace(config, policies=policies, source_file=filename)


def load_daemon_config_text(text: str, filename: str = "<string>") -> DaemonConfig:
    """A daemon config from text; a relative `policies` is taken relative to `filename`."""
    sink = Collector(filename)
    config = _config_from_text(text, filename, sink)
    if config is None or sink.errors:
        raise ValidationFailed(sorted(sink.errors, key=lambda e: (e.line, e.col)))
    return config


def load_daemon_config(path: PathLike) -> DaemonConfig:
    """The daemon config at `path`, with `policies` resolved against the config's folder."""
    filename = os.fspath(path)
    sink = Collector(filename)
    text = _read_text(Path(filename), sink)
    if text is None:
        raise ValidationFailed(sink.errors)
    return load_daemon_config_text(text, filename)


def load_daemon(config_path: PathLike) -> tuple[DaemonConfig, list[Policy]]:
    """The config and its policies; every policy's `deployment.provider` must be a profile."""
    config = load_daemon_config(config_path)
    profile_types = {name: profile.type for name, profile in config.providers.items()}
    located, _files, errors = load_located([config.policies], profile_types)
    for item in located:
        provider = item.policy.deployment.provider
        if provider not in config.providers:
            sink = Collector(item.filename)
            node, path = locate(item.root, (), ["deployment", "provider"], sink)
            known = ", ".join(sorted(config.providers))
            sink.error(
                node,
                path,
                f"must name a provider profile of {config.source_file}, "
                f"one of [{known}], got {quote(provider)}",
            )
            errors.extend(sink.errors)
    if errors:
        raise ValidationFailed(errors)
    return config, [item.policy for item in located]
