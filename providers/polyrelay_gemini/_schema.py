"""JSON Schema (what OpenAI tools and ``response_format`` carry) → Gemini ``Schema`` (an OpenAPI 3.0 subset).

Gemini's ``parameters`` / ``responseSchema`` accept only a subset of JSON Schema, so :func:`to_gemini_schema`
rewrites a schema into it:

- ``$ref`` to ``#/$defs/...`` or ``#/definitions/...`` is inlined (a recursive reference cannot be expressed:
  :class:`~polyrelay.errors.UnsupportedFeature`; use ``json_schema_mode = "passthrough"`` for those);
- ``type: [x, "null"]`` and ``anyOf: [x, {"type": "null"}]`` become ``x`` with ``nullable: true``; several
  non-null types become ``anyOf``; ``oneOf`` is treated as ``anyOf``; ``allOf`` is merged;
- ``const`` becomes a one-value ``enum``; ``enum``\\ s of non-strings (Gemini enums are strings) are dropped and
  their values written into the description instead;
- type names are upper-cased (``STRING``, ``OBJECT``) like the proto enum;
- keys Gemini does not know (``$schema``, ``$id``, ``additionalProperties``, ``strict``, ``examples``,
  ``exclusiveMinimum``, ``patternProperties`` ...) are dropped; string ``format``\\ s other than ``enum`` and
  ``date-time`` are dropped (the API rejects them);
- ``required`` keeps only names that are in ``properties``;
- for response schemas ``propertyOrdering`` records the declared property order (Gemini otherwise orders keys
  alphabetically).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from polyrelay.errors import InvalidRequest, UnsupportedFeature

__all__ = ["to_gemini_schema"]

#: Keys copied through unchanged (after their values are converted where they hold schemas).
_PLAIN_KEYS: Final = frozenset(
    {
        "description",
        "title",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "minimum",
        "maximum",
        "default",
        "example",
    }
)
_TYPES: Final = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
_STRING_FORMATS: Final = frozenset({"enum", "date-time"})
_NUMBER_FORMATS: Final = frozenset({"float", "double", "int32", "int64"})
_MAX_DEPTH: Final = 64


def to_gemini_schema(
    schema: Mapping[str, Any], *, path: str, provider: str, property_ordering: bool = False
) -> dict[str, Any]:
    """Convert ``schema`` (JSON Schema) to a Gemini ``Schema``. ``path`` names it in error messages."""
    if not isinstance(schema, Mapping):
        raise InvalidRequest("a JSON Schema must be an object", path=path)
    defs: dict[str, Any] = {}
    for key in ("$defs", "definitions"):
        found = schema.get(key)
        if isinstance(found, Mapping):
            for name, sub in found.items():
                defs[f"#/{key}/{name}"] = sub
    conv = _Converter(defs=defs, provider=provider, property_ordering=property_ordering)
    return conv.convert(schema, path, (), 0)


class _Converter:
    __slots__ = ("defs", "property_ordering", "provider")

    def __init__(self, *, defs: Mapping[str, Any], provider: str, property_ordering: bool) -> None:
        self.defs = defs
        self.provider = provider
        self.property_ordering = property_ordering

    def convert(self, schema: Any, path: str, refs: tuple[str, ...], depth: int) -> dict[str, Any]:
        if isinstance(schema, bool):
            # `true` accepts anything: the closest Gemini form is an unconstrained schema. `false` cannot be said.
            if schema:
                return {}
            raise UnsupportedFeature("the schema `false` cannot be expressed", path=path, provider=self.provider)
        if not isinstance(schema, Mapping):
            raise InvalidRequest("a JSON Schema must be an object", path=path)
        if depth > _MAX_DEPTH:
            raise UnsupportedFeature("the schema is nested too deeply", path=path, provider=self.provider)
        ref = schema.get("$ref")
        if ref is not None:
            return self._inline_ref(schema, ref, path, refs, depth)
        if "allOf" in schema:
            return self.convert(_merge_all_of(schema, path), path, refs, depth)

        out: dict[str, Any] = {}
        nullable = schema.get("nullable") is True
        alternatives = schema.get("anyOf", schema.get("oneOf"))
        if alternatives is not None:
            key = "anyOf" if "anyOf" in schema else "oneOf"
            converted, alt_nullable = self._alternatives(alternatives, f"{path}.{key}", refs, depth)
            nullable = nullable or alt_nullable
            if len(converted) == 1:
                out.update(converted[0])
            elif converted:
                out["anyOf"] = converted

        type_ = schema.get("type")
        types: list[str] = []
        if isinstance(type_, str):
            types = [type_]
        elif isinstance(type_, list | tuple) and all(isinstance(t, str) for t in type_):
            types = list(type_)
        elif type_ is not None:
            raise InvalidRequest("`type` must be a string or a list of strings", path=f"{path}.type")
        for t in types:
            if t not in _TYPES:
                raise InvalidRequest(f"unknown JSON Schema type {t!r}", path=f"{path}.type")
        if "null" in types and len(types) > 1:
            nullable = True
            types = [t for t in types if t != "null"]
        if len(types) == 1:
            out["type"] = types[0].upper()
        elif len(types) > 1:
            # Several non-null types: one alternative per type, each with the type's own keywords.
            out["anyOf"] = [
                self.convert({**_without(schema, "type", "anyOf", "oneOf"), "type": t}, path, refs, depth)
                for t in types
            ]
            if nullable:
                out["nullable"] = True
            return out

        for key, value in schema.items():
            if key in _PLAIN_KEYS:
                out[key] = value
        self._enum(schema, out, path)
        self._format(schema, out)

        if "properties" in schema:
            props = schema["properties"]
            if not isinstance(props, Mapping):
                raise InvalidRequest("`properties` must be an object", path=f"{path}.properties")
            out["properties"] = {
                name: self.convert(sub, f"{path}.properties.{name}", refs, depth + 1) for name, sub in props.items()
            }
            if self.property_ordering and len(props) > 1:
                out["propertyOrdering"] = list(props)
            if not out["properties"]:
                del out["properties"]
            required = schema.get("required")
            if isinstance(required, list | tuple):
                kept = [r for r in required if isinstance(r, str) and r in props]
                if kept:
                    out["required"] = kept
        if "items" in schema:
            items = schema["items"]
            if isinstance(items, list | tuple):  # draft-4 tuple form: the closest is "any of these"
                converted_items = [
                    self.convert(sub, f"{path}.items[{i}]", refs, depth + 1) for i, sub in enumerate(items)
                ]
                out["items"] = converted_items[0] if len(converted_items) == 1 else {"anyOf": converted_items}
            else:
                out["items"] = self.convert(items, f"{path}.items", refs, depth + 1)
        if "type" not in out and "anyOf" not in out:
            inferred = _infer_type(out)
            if inferred is not None:
                out["type"] = inferred
        if nullable:
            out["nullable"] = True
        return out

    def _inline_ref(
        self, schema: Mapping[str, Any], ref: Any, path: str, refs: tuple[str, ...], depth: int
    ) -> dict[str, Any]:
        if not isinstance(ref, str):
            raise InvalidRequest("`$ref` must be a string", path=f"{path}.$ref")
        if ref in refs:
            raise UnsupportedFeature(
                f"the schema is recursive ({ref} refers to itself); Gemini schemas cannot express recursion "
                '(set json_schema_mode = "passthrough" to send it as responseJsonSchema/parametersJsonSchema)',
                path=path,
                provider=self.provider,
            )
        target = self.defs.get(ref)
        if target is None:
            raise UnsupportedFeature(
                f"only local references to $defs/definitions can be inlined, not {ref!r}",
                path=f"{path}.$ref",
                provider=self.provider,
            )
        # Sibling keywords of $ref (description, nullable) refine the referenced schema.
        siblings = _without(schema, "$ref")
        merged = {**target, **siblings} if isinstance(target, Mapping) else target
        return self.convert(merged, path, (*refs, ref), depth + 1)

    def _alternatives(
        self, alternatives: Any, path: str, refs: tuple[str, ...], depth: int
    ) -> tuple[list[dict[str, Any]], bool]:
        if not isinstance(alternatives, list | tuple) or not alternatives:
            raise InvalidRequest("must be a non-empty list of schemas", path=path)
        nullable = False
        converted: list[dict[str, Any]] = []
        for i, alt in enumerate(alternatives):
            if isinstance(alt, Mapping) and alt.get("type") == "null" and len(alt) == 1:
                nullable = True
                continue
            converted.append(self.convert(alt, f"{path}[{i}]", refs, depth + 1))
        return converted, nullable

    def _enum(self, schema: Mapping[str, Any], out: dict[str, Any], path: str) -> None:
        values: Any = None
        if "const" in schema:
            values = [schema["const"]]
        elif "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list | tuple):
                raise InvalidRequest("`enum` must be a list", path=f"{path}.enum")
        if values is None:
            return
        strings = [v for v in values if v is not None]
        if len(strings) < len(values):  # `enum: ["a", null]`: the null is nullability
            out["nullable"] = True
        if strings and all(isinstance(v, str) for v in strings):
            out["enum"] = strings
            out.setdefault("type", "STRING")
            return
        # Gemini enums are strings only: keep the type and tell the model the allowed values in words.
        listed = ", ".join(json.dumps(v) for v in values)
        note = f"Allowed values: {listed}."
        out["description"] = f"{out['description']} {note}" if out.get("description") else note

    @staticmethod
    def _format(schema: Mapping[str, Any], out: dict[str, Any]) -> None:
        fmt = schema.get("format")
        if not isinstance(fmt, str):
            return
        kind = out.get("type")
        if (kind == "STRING" and fmt in _STRING_FORMATS) or (kind in ("NUMBER", "INTEGER") and fmt in _NUMBER_FORMATS):
            out["format"] = fmt


def _without(schema: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in keys}


def _merge_all_of(schema: Mapping[str, Any], path: str) -> dict[str, Any]:
    """``allOf`` → one schema: properties and required lists are unioned, other keywords last-wins."""
    parts = schema["allOf"]
    if not isinstance(parts, Sequence) or isinstance(parts, str) or not parts:
        raise InvalidRequest("must be a non-empty list of schemas", path=f"{path}.allOf")
    merged: dict[str, Any] = _without(schema, "allOf")
    props: dict[str, Any] = dict(merged.get("properties") or {})
    required: list[str] = list(merged.get("required") or [])
    for i, part in enumerate(parts):
        if not isinstance(part, Mapping):
            raise InvalidRequest("a JSON Schema must be an object", path=f"{path}.allOf[{i}]")
        for key, value in part.items():
            if key == "properties" and isinstance(value, Mapping):
                props.update(value)
            elif key == "required" and isinstance(value, list | tuple):
                required.extend(r for r in value if r not in required)
            else:
                merged.setdefault(key, value)
    if props:
        merged["properties"] = props
    if required:
        merged["required"] = required
    return merged


def _infer_type(out: Mapping[str, Any]) -> str | None:
    if "properties" in out:
        return "OBJECT"
    if "items" in out:
        return "ARRAY"
    if "enum" in out:
        return "STRING"
    return None
