"""Converters between JSON-shaped data and our attrs wire models.

One private :class:`WireConverter` per wire format, built once at first use. Every attrs model handled here may
declare two bookkeeping fields, which is what makes ``unstructure(structure(json)) == json``:

- ``extra: Mapping[str, Any]`` — keys the model does not know, kept verbatim (never silently dropped) and written
  back on unstructure;
- ``explicit_nulls: frozenset[str] | None`` — the known keys that were present with ``null``. On unstructure a
  ``None`` field is written as ``null`` only if it is listed here (or, for objects built in code, in the class's
  ``EMIT_NULL`` tuple), and omitted otherwise. A class may also list in ``DEFAULTED`` fields that have a non-None
  default (``type = "function"``): when such a key was absent from the parsed JSON it is recorded here as
  ``"-name"`` and left out again on unstructure.

Fields whose metadata has ``wire=False`` (for example response metadata) are never read from or written to JSON.
A ``rename`` function maps Python field names to wire names (Gemini uses camelCase).

Structuring errors are re-raised by callers as :class:`~polyrelay.errors.InvalidRequest` (our input) or
:class:`~polyrelay.errors.InvalidUpstreamResponse` (their output) with a readable path, via :func:`error_paths`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from types import NoneType, UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.cols import homogenous_tuple_structure_factory, is_mapping, mapping_structure_factory
from cattrs.gen import make_dict_structure_fn, override

__all__ = [
    "NOT_WIRE",
    "WireConverter",
    "error_paths",
    "explicit_nulls_field",
    "extra_field",
    "first_error",
    "json_kind",
]

T = TypeVar("T")

#: attrs field metadata marking a field that is not part of the wire format.
NOT_WIRE: Mapping[str, Any] = {"wire": False}

_BOOKKEEPING = frozenset({"extra", "explicit_nulls"})
# Literal values are echoed in error messages; an upstream's huge string is clipped.
_MAX_ECHO = 40
_NO_NULLS: frozenset[str] = frozenset()


def extra_field() -> Any:
    """The ``extra`` bookkeeping field of a wire model: unknown keys, kept verbatim (see the module docstring)."""
    return attrs.field(factory=dict, repr=False)


def explicit_nulls_field() -> Any:
    """The ``explicit_nulls`` bookkeeping field of a wire model (see the module docstring)."""
    return attrs.field(default=None, repr=False, eq=False)


def _is_wire(a: attrs.Attribute) -> bool:  # type: ignore[type-arg]
    return a.name not in _BOOKKEEPING and a.metadata.get("wire", True)


class WireConverter:
    """A cattrs converter configured for one wire format (see the module docstring)."""

    def __init__(self, *, rename: Callable[[str], str] | None = None, detailed: bool = True) -> None:
        self.rename = rename
        self.c = cattrs.Converter(detailed_validation=detailed, forbid_extra_keys=False)
        self.c.register_structure_hook_factory(attrs.has, self._structure_factory)
        self.c.register_unstructure_hook_factory(attrs.has, self._unstructure_factory)
        _strict_containers(self.c)
        # Models skip cattrs' dispatch and the null check: a class's generated plain unstructure, looked up when
        # first met (see _plain_for), is called directly for its objects that hold no explicit null.
        self._plains: dict[type, Callable[[Any], Any]] = {}
        self._plain_of_hook: dict[Callable[[Any], Any], Callable[[Any], dict[str, Any]]] = {}

    # -- public -------------------------------------------------------------------------------------------------
    def structure(self, data: Any, cls: type[T]) -> T:
        return self.c.structure(data, cls)

    def unstructure(self, obj: Any) -> Any:
        # A model holding no explicit null goes straight to its generated plain unstructure (see _plain_for), not
        # through cattrs' dispatch and the hook's null check: a request's body is made this way on every call.
        cls = obj.__class__
        plain = self._plains.get(cls) or self._plain_for(cls)
        if plain is not _NO_PLAIN and not obj.explicit_nulls:
            return plain(obj)
        return self.c.unstructure(obj)

    def register_structure_hook(self, tp: Any, fn: Callable[[Any, Any], Any]) -> None:
        self.c.register_structure_hook(tp, fn)

    def register_unstructure_hook(self, tp: Any, fn: Callable[[Any], Any]) -> None:
        self.c.register_unstructure_hook(tp, fn)

    # -- hook factories -----------------------------------------------------------------------------------------
    def _wire_name(self, name: str) -> str:
        return self.rename(name) if self.rename else name

    def _structure_factory(self, cls: type[Any]) -> Callable[[Any, Any], Any]:
        fields = attrs.fields(cls)
        overrides: dict[str, Any] = {}
        known: set[str] = set()
        has_extra = has_nulls = False
        for a in fields:
            if a.name == "extra":
                has_extra = True
                overrides[a.name] = override(omit=True)
            elif a.name == "explicit_nulls":
                has_nulls = True
                overrides[a.name] = override(omit=True)
            elif not a.metadata.get("wire", True):
                overrides[a.name] = override(omit=True)
            else:
                wire = self._wire_name(a.name)
                known.add(wire)
                if wire != a.name:
                    overrides[a.name] = override(rename=wire)
        inner = make_dict_structure_fn(cls, self.c, _cattrs_forbid_extra_keys=False, **overrides)
        known_f = frozenset(known)
        defaulted = tuple((self._wire_name(n), n) for n in getattr(cls, "DEFAULTED", ()))
        setattr_ = object.__setattr__

        def structure(data: Any, _: Any) -> Any:
            if data.__class__ is not dict and not isinstance(data, Mapping):
                raise TypeError(f"expected a JSON object for {cls.__name__}, got {json_kind(data)}")
            obj = inner(data, cls)
            # The hot path of every parsed response: the common cases (no unknown key, no null) cost a C-level
            # set check and a C-level scan instead of a Python loop over the items.
            if has_extra and not known_f.issuperset(data):
                setattr_(obj, "extra", {k: v for k, v in data.items() if k not in known_f})
            if has_nulls:
                nulls = [k for k, v in data.items() if v is None and k in known_f] if None in data.values() else None
                if defaulted:
                    missing = ["-" + name for wire, name in defaulted if wire not in data]
                    if missing:
                        nulls = (nulls or []) + missing
                setattr_(obj, "explicit_nulls", frozenset(nulls) if nulls else _NO_NULLS)
            return obj

        return structure

    def _unstructure_factory(self, cls: type[Any]) -> Callable[[Any], Any]:
        specs = [(a.name, self._wire_name(a.name), a.type) for a in attrs.fields(cls) if _is_wire(a)]
        names = {a.name for a in attrs.fields(cls)}
        has_extra = "extra" in names
        has_nulls = "explicit_nulls" in names
        emit_null_default = frozenset(getattr(cls, "EMIT_NULL", ()))
        conv = self.c
        plain = _plain_unstructure(cls, specs, has_extra, conv.unstructure, self._plains, self._plain_for)

        def unstructure(obj: Any) -> dict[str, Any]:
            nulls = obj.explicit_nulls if has_nulls and obj.explicit_nulls is not None else emit_null_default
            if not nulls:
                return plain(obj)
            out: dict[str, Any] = {}
            for name, wire, _tp in specs:
                v = getattr(obj, name)
                if nulls and "-" + name in nulls:
                    continue
                if v is None:
                    if wire in nulls or name in nulls:
                        out[wire] = None
                    continue
                if v.__class__ in _SCALARS:
                    out[wire] = v
                else:
                    out[wire] = conv.unstructure(v)
            if has_extra and obj.extra:
                for k, v in obj.extra.items():
                    out.setdefault(k, v)
            return out

        if has_nulls and not emit_null_default:
            self._plain_of_hook[unstructure] = plain
        return unstructure

    def _plain_for(self, cls: type) -> Callable[[Any], Any]:
        """``cls``'s plain unstructure when cattrs' hook for it is the one made here (not a hook registered over
        it, like ``ImageURL``'s), else :data:`_NO_PLAIN`; remembered. Hooks are all registered when a converter is
        built, before it unstructures anything."""
        plain = self._plain_of_hook.get(self.c.get_unstructure_hook(cls), _NO_PLAIN)
        self._plains[cls] = plain
        return plain


def _plain_unstructure(
    cls: type[Any],
    specs: list[tuple[str, str, Any]],
    has_extra: bool,
    unstructure: Callable[[Any], Any],
    plains: Mapping[type, Callable[[Any], Any]],
    plain_for: Callable[[type], Callable[[Any], Any]],
) -> Callable[[Any], dict[str, Any]]:
    """The unstructure of an object with no null to keep and no default to leave out (the common case), generated
    as straight-line code (as attrs and cattrs generate theirs): every non-None field, then the extra keys. A tuple
    becomes the list cattrs makes of it (``list(un(item) for item in v)``), without its dispatch and generator; a
    nested model holding no explicit null goes straight to its own plain unstructure (``plains``)."""
    ns: dict[str, Any] = {"SCALARS": _SCALARS, "un": unstructure, "P": plains, "R": plain_for, "NO": _NO_PLAIN}
    item = (
        "i if (c := i.__class__) in SCALARS"
        " else p(i) if (p := P.get(c) or R(c)) is not NO and not i.explicit_nulls else un(i)"
    )
    lines = ["def plain(obj):", "    out = {}"]
    for name, wire, _tp in specs:
        lines += [
            f"    v = obj.{name}",
            "    if v is not None:",
            "        if (c := v.__class__) in SCALARS:",
            f"            out[{wire!r}] = v",
            "        elif c is tuple:",
            f"            out[{wire!r}] = [{item} for i in v]",
            "        elif (p := P.get(c) or R(c)) is not NO and not v.explicit_nulls:",
            f"            out[{wire!r}] = p(v)",
            "        else:",
            f"            out[{wire!r}] = un(v)",
        ]
    if has_extra:
        lines += ["    if obj.extra:", "        for k, v in obj.extra.items():", "            out.setdefault(k, v)"]
    lines.append("    return out")
    exec(compile("\n".join(lines), f"<polyrelay unstructure {cls.__name__}>", "exec"), ns)
    plain: Callable[[Any], dict[str, Any]] = ns["plain"]
    return plain


def json_kind(v: Any) -> str:
    """The JSON name of a value's type, for error messages (``null``, ``an array``...)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int | float):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, Mapping):
        return "an object"
    if isinstance(v, list | tuple):
        return "an array"
    return type(v).__name__


def _is_homogeneous_tuple(t: Any) -> bool:
    args = get_args(t)
    return get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis


def _is_literal(t: Any) -> bool:
    return get_origin(t) is Literal


def _optional_of(t: Any) -> Any:
    """``X`` for ``X | None`` (exactly one other member), else ``None``."""
    if get_origin(t) not in (Union, UnionType):
        return None
    args = get_args(t)
    if len(args) != 2 or NoneType not in args:
        return None
    return args[0] if args[1] is NoneType else args[1]


def _strict_containers(c: cattrs.Converter) -> None:
    """Arrays must be JSON arrays and objects JSON objects: cattrs alone turns any iterable into a tuple (the
    string ``"text"`` into ``("t", "e", "x", "t")``, an object into its keys) and fails on a non-mapping with a
    bare ``AttributeError``. Literal fields name their allowed values."""

    def tuple_factory(t: Any) -> Callable[[Any, Any], Any]:
        inner = homogenous_tuple_structure_factory(t, c)

        def structure_tuple(v: Any, _: Any) -> Any:
            if v.__class__ is not list and not isinstance(v, list | tuple):
                raise TypeError(f"expected an array, got {json_kind(v)}")
            return inner(v, t)

        return structure_tuple

    def mapping_factory(t: Any) -> Callable[[Any, Any], Any]:
        inner = mapping_structure_factory(t, c)

        def structure_mapping(v: Any, _: Any) -> Any:
            if not isinstance(v, Mapping):
                raise TypeError(f"expected an object, got {json_kind(v)}")
            return inner(v, t)

        return structure_mapping

    def literal_factory(t: Any) -> Callable[[Any, Any], Any]:
        allowed = get_args(t)
        names = ", ".join(repr(a) for a in allowed)

        def structure_literal(v: Any, _: Any) -> Any:
            for a in allowed:
                if v == a and v.__class__ is a.__class__:  # 1 == True: the types must match too
                    return a
            shown = repr(v) if isinstance(v, str | int | float | bool) or v is None else json_kind(v)
            if len(shown) > _MAX_ECHO:
                shown = shown[: _MAX_ECHO - 1] + "…"
            raise ValueError(f"must be one of {names}, got {shown}")

        return structure_literal

    def optional_factory(t: Any) -> Callable[[Any, Any], Any]:
        inner_t = _optional_of(t)
        hook: Callable[[Any, Any], Any] | None = None

        def structure_optional(v: Any, _: Any) -> Any:
            # cattrs' own Optional handling dispatches on every call; this binds the member's hook once. Bound
            # on first use, not here, so hooks a converter registers after building this one are still seen.
            nonlocal hook
            if v is None:
                return None
            if hook is None:
                hook = c.get_structure_hook(inner_t)
            return hook(v, inner_t)

        return structure_optional

    c.register_structure_hook_factory(_is_homogeneous_tuple, tuple_factory)
    c.register_structure_hook_factory(is_mapping, mapping_factory)
    c.register_structure_hook_factory(_is_literal, literal_factory)
    c.register_structure_hook_factory(lambda t: _optional_of(t) is not None, optional_factory)


_SCALARS = frozenset({str, int, float, bool})


def _NO_PLAIN(obj: Any) -> Any:
    """Marks a class without a plain unstructure in ``WireConverter._plains`` (never called)."""
    raise AssertionError("not a plain unstructure")


def error_paths(exc: BaseException, root: str = "") -> list[tuple[str, str]]:
    """Flatten a cattrs validation error into ``(path, message)`` pairs, e.g.
    ``("messages[2].content[0].image_url", "expected a string, got int")``."""
    out: list[tuple[str, str]] = []
    _walk(exc, root, out)
    return out


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _walk(exc: BaseException, path: str, out: list[tuple[str, str]]) -> None:
    if isinstance(exc, cattrs.ClassValidationError):
        with_notes, other = exc.group_exceptions()
        for sub_c, note in with_notes:
            _walk(sub_c, _join(path, note.name), out)
        for sub in other:
            _walk(sub, path, out)
    elif isinstance(exc, cattrs.IterableValidationError):
        with_notes_i, other_i = exc.group_exceptions()
        for sub, inote in with_notes_i:
            # A list index, or an object's key (logit_bias["50256"]): keys are quoted so they read as keys.
            idx = inote.index
            _walk(sub, f"{path}[{idx}]" if isinstance(idx, int) else f"{path}[{json.dumps(idx)}]", out)
        for sub in other_i:
            _walk(sub, path, out)
    elif isinstance(exc, BaseExceptionGroup):
        for sub_g in exc.exceptions:
            _walk(sub_g, path, out)
    elif isinstance(exc, KeyError):
        key = exc.args[0] if exc.args else ""
        out.append((path if str(key) in path.rsplit(".", 1)[-1:] else _join(path, str(key)), "is required"))
    else:
        out.append((path, str(exc) or type(exc).__name__))


def first_error(exc: BaseException, root: str = "") -> tuple[str, str]:
    """The first ``(path, message)`` of a structuring error."""
    errs = error_paths(exc, root)
    return errs[0] if errs else (root, str(exc))
