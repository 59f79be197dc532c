"""Shared settings and JSON strategies of the fuzz suite.

The suite's example budget is one hypothesis settings profile, ``polyrelay-fuzz``: small by default so the whole
suite stays quick in CI, raised with ``POLYRELAY_FUZZ_EXAMPLES=<examples per test>`` for a long local hunt, e.g.
``POLYRELAY_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/fuzz -q``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

F = TypeVar("F", bound=Callable[..., Any])

#: Examples per test when POLYRELAY_FUZZ_EXAMPLES is not set.
DEFAULT_EXAMPLES = 150


def _examples() -> int:
    raw = os.environ.get("POLYRELAY_FUZZ_EXAMPLES", "").strip()
    if not raw:
        return DEFAULT_EXAMPLES
    try:
        n = int(raw)
    except ValueError as exc:
        raise ValueError(f"POLYRELAY_FUZZ_EXAMPLES must be a positive integer, got {raw!r}") from exc
    if n < 1:
        raise ValueError(f"POLYRELAY_FUZZ_EXAMPLES must be a positive integer, got {raw!r}")
    return n


EXAMPLES = _examples()

settings.register_profile(
    "polyrelay-fuzz",
    max_examples=EXAMPLES,
    # No per-example time limit: a slow example is not a failure, and CI machines vary.
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

FUZZ = settings.get_profile("polyrelay-fuzz")


def fuzz(scale: float = 1.0) -> settings:
    """The profile, with ``scale`` times its example budget (for tests whose examples are cheaper or dearer)."""
    return settings(FUZZ, max_examples=max(1, int(EXAMPLES * scale)))


# -- JSON values ------------------------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)

#: Any JSON value, small.
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


# -- mutations of recorded JSON ---------------------------------------------------------------------------------

Path = tuple[str | int, ...]


def json_paths(value: Any, prefix: Path = ()) -> list[Path]:
    """Every path into ``value`` (dict keys and list indices), the root excluded."""
    out: list[Path] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append((*prefix, k))
            out.extend(json_paths(v, (*prefix, k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append((*prefix, i))
            out.extend(json_paths(v, (*prefix, i)))
    return out


def _parent(root: Any, path: Path) -> Any:
    node = root
    for step in path[:-1]:
        node = node[step]
    return node


MUTATIONS = ("delete", "null", "replace", "wrap_list", "to_string", "empty_object", "empty_list", "bool", "number")


def mutate(root: Any, path: Path, how: str, replacement: Any = None) -> Any:
    """Apply one mutation at ``path`` of ``root`` (in place; ``root`` must be a fresh copy). Returns ``root``."""
    parent = _parent(root, path)
    key = path[-1]
    old = parent[key]
    if how == "delete":
        del parent[key]
        return root
    new: Any
    if how == "null":
        new = None
    elif how == "replace":
        new = replacement
    elif how == "wrap_list":
        new = [old]
    elif how == "to_string":
        new = str(old)
    elif how == "empty_object":
        new = {}
    elif how == "empty_list":
        new = []
    elif how == "bool":
        new = True
    else:
        new = -1.5
    parent[key] = new
    return root


@st.composite
def mutated(draw: st.DrawFn, originals: list[Any], max_mutations: int = 3) -> Any:
    """A deep copy of one of ``originals`` with 1..``max_mutations`` mutations at random paths."""
    import copy

    value = copy.deepcopy(draw(st.sampled_from(originals)))
    for _ in range(draw(st.integers(1, max_mutations))):
        paths = json_paths(value)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        how = draw(st.sampled_from(MUTATIONS))
        replacement = draw(json_values) if how == "replace" else None
        value = mutate(value, path, how, replacement)
    return value


def load_cassettes(folder: Any) -> list[dict[str, Any]]:
    """Every interaction of every cassette under ``folder`` (a Path), recursively, in a stable order."""
    import yaml

    out: list[dict[str, Any]] = []
    for path in sorted(folder.rglob("*.yaml")):
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        out.extend(data.get("interactions") or [])
    return out


def attrs_state(value: Any) -> Any:
    """Every field of an attrs object, recursively, including the ones equality ignores (``explicit_nulls``)."""
    cls = type(value)
    if attrs.has(cls):
        return (cls.__name__, tuple((a.name, attrs_state(getattr(value, a.name))) for a in attrs.fields(cls)))
    if isinstance(value, tuple | list):
        return tuple(attrs_state(v) for v in value)
    return value
