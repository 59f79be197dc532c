"""Building frozen attrs objects fast: a layout twin whose slots take plain stores, then ``__class__`` assignment.

A frozen attrs class blocks attribute assignment, so its generated ``__init__`` (and any code setting slots through
the descriptors' ``__set__``) pays a method call per field; that is most of the cost of the small objects every
call makes (its attempt record, response metadata, provider context, the typed completion). A *twin* is a plain
slotted class with the same bases and slots: on it each field is a plain store, and assigning the finished object's
``__class__`` makes it exactly what ``cls(...)`` makes (same class, equality, hash, frozenness). CPython allows that
assignment only between identical layouts, and not with a ``__weakref__`` slot, so classes built this way are
declared ``weakref_slot=False``; for any class where it is refused the descriptors are used instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import attrs

__all__ = ["maker", "twin"]

T = TypeVar("T")
_new = object.__new__


def twin(cls: type) -> type | None:
    """``cls``'s layout twin, or ``None`` when CPython would refuse the ``__class__`` assignment."""
    slots = cls.__dict__.get("__slots__")
    if not isinstance(slots, tuple) or "__weakref__" in slots:
        return None
    made = type(f"_{cls.__name__}Twin", cls.__bases__, {"__slots__": slots, "__module__": cls.__module__})
    try:
        probe: Any = _new(made)
        probe.__class__ = cls
    except TypeError:
        return None
    return made


def maker(cls: type[T], names: tuple[str, ...]) -> Callable[..., T]:
    """A positional constructor of the attrs class ``cls`` (frozen or not): every field, in declaration order
    (defaults and factories included: the caller passes each value). ``names`` is what the caller expects the
    fields to be; it is checked against the class once, here, as is the absence of anything ``__init__`` does
    besides storing."""
    fields = attrs.fields(cast(Any, cls))
    if tuple(f.name for f in fields) != names:
        raise TypeError(f"{cls.__name__}'s fields are {tuple(f.name for f in fields)}, not {names}")
    if hasattr(cls, "__attrs_post_init__") or any(f.validator is not None or f.converter is not None for f in fields):
        raise TypeError(f"{cls.__name__}'s __init__ does more than store its fields")
    if "_attrs_cached_hash" in getattr(cls, "__slots__", ()):  # cache_hash: __init__ also resets the cache
        raise TypeError(f"{cls.__name__} caches its hash")
    # A class that is not frozen takes plain stores itself; a frozen one through its twin, if it can have one.
    plain = getattr(cls, "__setattr__", None) is object.__setattr__
    made = None if plain else twin(cls)
    ns: dict[str, Any] = {"new": _new, "cls": cls, "twin": made}
    lines = [f"def make({', '.join(names)}):", f"    o = new({'twin' if made is not None else 'cls'})"]
    for name in names:
        if plain or made is not None:
            lines.append(f"    o.{name} = {name}")
        else:
            ns[f"set_{name}"] = getattr(cls, name).__set__
            lines.append(f"    set_{name}(o, {name})")
    if made is not None:
        lines.append("    o.__class__ = cls")
    lines.append("    return o")
    exec(compile("\n".join(lines), f"<polyrelay make {cls.__name__}>", "exec"), ns)
    make: Callable[..., T] = ns["make"]
    return make
