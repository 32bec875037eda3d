"""The libyaml fast path: same nodes and positions as the pure-Python path, and never used
where its recursion could crash the process."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from autoscaler.policy import yamlnodes
from autoscaler.policy.loader import ValidationFailed, load_policy_text

POLICIES = sorted((Path(__file__).resolve().parents[2] / "policies").glob("*.yaml"))


def _shape(node: yaml.Node) -> object:
    mark = (node.start_mark.line, node.start_mark.column)
    if isinstance(node, yaml.MappingNode):
        return (node.tag, mark, [(_shape(k), _shape(v)) for k, v in node.value])
    if isinstance(node, yaml.SequenceNode):
        return (node.tag, mark, [_shape(v) for v in node.value])
    return (node.tag, mark, node.value)


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_fast_path_gives_the_pure_path_nodes(path: Path) -> None:
    text = path.read_text()
    fast = yamlnodes._compose_fast(text)
    assert fast is not None
    pure = [n for n in yaml.compose_all(text, Loader=yaml.SafeLoader) if n is not None]
    assert [_shape(n) for n in fast] == [_shape(n) for n in pure]


@pytest.mark.parametrize("text", ["[" * 60_000 + "]" * 60_000, "a: " + "{b: " * 60_000])
def test_deep_nesting_takes_the_pure_path_and_is_an_error(text: str) -> None:
    assert yamlnodes._nesting_bound(text) > yamlnodes._FAST_MAX_DEPTH
    assert yamlnodes._compose_fast(text) is None
    with pytest.raises(ValidationFailed) as err:
        load_policy_text(text, "deep.yaml")
    assert all(e.line >= 1 for e in err.value.errors)


def test_syntax_errors_keep_the_pure_path_message() -> None:
    with pytest.raises(ValidationFailed) as err:
        load_policy_text("name: [unclosed\n", "bad.yaml")
    assert str(err.value.errors[0]).startswith("bad.yaml:")
    assert "invalid YAML" in str(err.value)
