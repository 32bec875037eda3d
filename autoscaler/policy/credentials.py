"""Every credential a daemon config and its policies name must resolve before anything starts.

A provider token whose environment variable is unset, a secret file that cannot be read, an
admin token or a source password that resolves to nothing: each is a config error, one
`FILE:LINE:COL: key.path: message` line naming the variable or file and whose credential it
is (the provider profile, the admin API, the policy). `autoscaler run` and
`autoscaler validate --config` call `check_credentials` after loading and stop (exit 2) on any.
Values are never printed; only where they were looked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields, is_dataclass
from typing import Any

from yaml.nodes import MappingNode, Node, ScalarNode

from autoscaler.policy.errors import KeyPath, PolicyError, format_path, quote
from autoscaler.policy.files import FileRefused, read_file_capped
from autoscaler.policy.model import DaemonConfig, Policy, SecretRef
from autoscaler.policy.yamlnodes import Collector, locate, mapping_pairs, parse_documents
from autoscaler.secrets import SecretError, resolve


def secret_refs(value: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, SecretRef]]:
    """Every `SecretRef` inside a model value, with its key path (dataclasses, mappings,
    tuples of them)."""
    if isinstance(value, SecretRef):
        yield path, value
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from secret_refs(getattr(value, f.name), (*path, f.name))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from secret_refs(item, (*path, str(key)))
    elif isinstance(value, tuple | list):
        for index, item in enumerate(value):
            yield from secret_refs(item, (*path, index))


def _problem(ref: SecretRef) -> str | None:
    """Why `ref` gives no credential, naming the variable or file; None when it gives one."""
    try:
        secret = resolve(ref)
    except SecretError as exc:
        return str(exc)
    if secret is not None and not secret.reveal():
        where = f"environment variable {ref.env!r}" if ref.env else f"credential file {ref.file!r}"
        return f"{where} is empty"
    return None


def _documents(filename: str) -> list[Node]:
    try:  # as the loader read it: a file swapped for a FIFO since then cannot hang this
        text = read_file_capped(filename).decode("utf-8-sig")
    except (FileRefused, UnicodeDecodeError):
        return []
    return parse_documents(text, Collector(filename))


def _named(document: Node, name: str) -> bool:
    if not isinstance(document, MappingNode):
        return False
    quiet = Collector("")
    return any(
        p.key == "name" and isinstance(p.value, ScalarNode) and p.value.value == name
        for p in mapping_pairs(document, (), quiet)
    )


def _error(filename: str, root: Node | None, path: KeyPath, message: str) -> PolicyError:
    sink = Collector(filename)
    if root is None:
        return PolicyError(filename, 1, 1, format_path(path), message)
    node, _ = locate(root, (), list(path), sink)
    sink.error(node, path, message)
    return sink.errors[0]


def _whose(path: KeyPath) -> str:
    if path[:1] == ("providers",) and len(path) > 1:
        return f"provider profile {quote(str(path[1]))}"
    if path[:2] == ("http", "admin_token"):
        return "the admin API"
    return format_path(path)


def check_credentials(config: DaemonConfig, policies: Sequence[Policy] = ()) -> list[PolicyError]:
    """One located error per credential of `config` and `policies` that does not resolve."""
    errors: list[PolicyError] = []
    config_file = config.source_file or "<config>"
    config_root: Node | None = None
    for path, ref in secret_refs(config):
        problem = _problem(ref)
        if problem is None:
            continue
        if config_root is None:
            config_root = next(iter(_documents(config_file)), None)
        at = (*path, "env" if ref.env is not None else "file")
        errors.append(_error(config_file, config_root, at, f"{problem} ({_whose(path)})"))
    documents: dict[str, list[Node]] = {}
    for policy in policies:
        refs = [(p, r, m) for p, r in secret_refs(policy) if (m := _problem(r)) is not None]
        if not refs:
            continue
        filename = policy.source_file or "<policy>"
        if filename not in documents:
            documents[filename] = _documents(filename)
        root = next((d for d in documents[filename] if _named(d, policy.name)), None)
        for path, ref, problem in refs:
            at = (*path, "env" if ref.env is not None else "file")
            errors.append(_error(filename, root, at, f"{problem} (policy {quote(policy.name)})"))
    return errors
