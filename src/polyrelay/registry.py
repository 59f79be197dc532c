"""Provider discovery through the ``polyrelay.providers`` entry-point group, loaded lazily.

Built-in providers and third-party plugins take the same path: listing names reads only distribution metadata;
a provider's module is imported the first time :meth:`ProviderRegistry.get` asks for it (when a request is first
routed to it). Tests and applications can :meth:`~ProviderRegistry.register` specs directly.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import attrs

from polyrelay.errors import PluginError
from polyrelay.provider import API_VERSION, ProviderSpec

__all__ = ["ENTRY_POINT_GROUP", "PluginInfo", "ProviderRegistry"]

ENTRY_POINT_GROUP = "polyrelay.providers"


@attrs.frozen(kw_only=True)
class PluginInfo:
    """What the metadata says about one provider type, without importing it."""

    name: str
    value: str
    """``module:attribute`` of the spec."""
    distribution: str


class ProviderRegistry:
    """Provider types by name. ``entry_points=False`` gives an empty registry (tests, embedded use)."""

    def __init__(self, specs: Iterable[ProviderSpec] = (), *, entry_points: bool = True) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, ProviderSpec] = {}
        self._infos: dict[str, list[PluginInfo]] | None = None if entry_points else {}
        for spec in specs:
            self.register(spec)

    # -- discovery ---------------------------------------------------------------------------------------------
    def _discover(self) -> Mapping[str, list[PluginInfo]]:
        infos = self._infos
        if infos is None:
            found: dict[str, list[PluginInfo]] = {}
            seen: set[tuple[str, str, str]] = set()
            for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
                dist = ep.dist.name if ep.dist is not None else "?"
                key = (ep.name, ep.value, dist)
                if key in seen:  # the same distribution seen twice on sys.path (editable + site)
                    continue
                seen.add(key)
                found.setdefault(ep.name, []).append(PluginInfo(name=ep.name, value=ep.value, distribution=dist))
            infos = self._infos = found
        return infos

    def plugins(self) -> list[PluginInfo]:
        """Every provider type the installed distributions declare (metadata only, nothing imported)."""
        return [i for lst in self._discover().values() for i in lst]

    def names(self) -> list[str]:
        """Sorted names of every known provider type (registered and declared)."""
        return sorted(set(self._discover()) | set(self._loaded))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._loaded or name in self._discover())

    # -- registration / loading --------------------------------------------------------------------------------
    def register(self, spec: ProviderSpec, *, replace: bool = False) -> None:
        """Add a spec directly (takes precedence over an entry point of the same name)."""
        _check_version(spec, origin="registered directly")
        with self._lock:
            if spec.name in self._loaded and not replace and self._loaded[spec.name] is not spec:
                raise PluginError(f"provider type {spec.name!r} is already registered")
            self._loaded[spec.name] = spec

    def get(self, name: str) -> ProviderSpec:
        """The spec for ``name``, importing its plugin on first use."""
        spec = self._loaded.get(name)
        if spec is not None:
            return spec
        infos = self._discover().get(name)
        if not infos:
            raise PluginError(f"no provider type {name!r} is installed (known: {', '.join(self.names()) or 'none'})")
        distinct = {(i.value, i.distribution) for i in infos}
        if len(distinct) > 1:
            who = " and ".join(f"{d} ({v})" for v, d in sorted(distinct))
            raise PluginError(f"provider type {name!r} is declared by more than one distribution: {who}")
        info = infos[0]
        with self._lock:
            spec = self._loaded.get(name)
            if spec is None:
                spec = self._load(info)
                self._loaded[name] = spec
        return spec

    @staticmethod
    def _load(info: PluginInfo) -> ProviderSpec:
        ep = metadata.EntryPoint(name=info.name, value=info.value, group=ENTRY_POINT_GROUP)
        try:
            obj: Any = ep.load()
        except Exception as exc:
            raise PluginError(
                f"provider type {info.name!r} ({info.value} from {info.distribution}) failed to import: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if callable(obj) and not isinstance(obj, ProviderSpec):
            obj = obj()
        if not isinstance(obj, ProviderSpec):
            raise PluginError(
                f"entry point {info.name!r} ({info.value} from {info.distribution}) is not a polyrelay ProviderSpec"
            )
        if obj.name != info.name:
            raise PluginError(
                f"entry point {info.name!r} ({info.value}) exposes a spec named {obj.name!r}; the names must match"
            )
        _check_version(obj, origin=f"{info.value} from {info.distribution}")
        return obj


def _check_version(spec: ProviderSpec, *, origin: str) -> None:
    if spec.api_version != API_VERSION:
        raise PluginError(
            f"provider type {spec.name!r} ({origin}) implements provider API version {spec.api_version}, "
            f"but this polyrelay implements version {API_VERSION}"
        )
