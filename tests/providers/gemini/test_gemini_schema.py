"""JSON Schema → Gemini Schema conversion."""

from __future__ import annotations

from typing import Any

import pytest

from polyrelay.errors import InvalidRequest, UnsupportedFeature
from polyrelay_gemini._schema import to_gemini_schema


def conv(schema: Any, **kw: Any) -> dict[str, Any]:
    return to_gemini_schema(schema, path="tools[0].function.parameters", provider="gemini", **kw)


def test_strips_keys_gemini_does_not_know() -> None:
    assert conv(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "x",
            "type": "object",
            "strict": True,
            "additionalProperties": False,
            "examples": [{}],
            "title": "T",
            "description": "D",
            "properties": {"n": {"type": "integer", "exclusiveMinimum": 0, "minimum": 1, "maximum": 9, "default": 3}},
        }
    ) == {
        "type": "OBJECT",
        "title": "T",
        "description": "D",
        "properties": {"n": {"type": "INTEGER", "minimum": 1, "maximum": 9, "default": 3}},
    }


def test_nullable_forms() -> None:
    assert conv({"type": ["string", "null"]}) == {"type": "STRING", "nullable": True}
    assert conv({"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "n"}) == {
        "type": "INTEGER",
        "description": "n",
        "nullable": True,
    }
    assert conv({"type": "string", "nullable": True}) == {"type": "STRING", "nullable": True}


def test_several_types_become_any_of() -> None:
    assert conv({"type": ["string", "integer", "null"], "description": "id"}) == {
        "anyOf": [{"type": "STRING", "description": "id"}, {"type": "INTEGER", "description": "id"}],
        "nullable": True,
    }
    assert conv({"oneOf": [{"type": "string"}, {"type": "number"}]}) == {
        "anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]
    }


def test_refs_are_inlined() -> None:
    schema = {
        "type": "object",
        "properties": {"home": {"$ref": "#/$defs/Addr", "description": "where"}, "work": {"$ref": "#/definitions/Co"}},
        "$defs": {"Addr": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        "definitions": {"Co": {"type": "string"}},
    }
    assert conv(schema) == {
        "type": "OBJECT",
        "properties": {
            "home": {
                "type": "OBJECT",
                "description": "where",
                "properties": {"city": {"type": "STRING"}},
                "required": ["city"],
            },
            "work": {"type": "STRING"},
        },
    }


def test_recursive_and_external_refs_are_unsupported() -> None:
    tree = {
        "$ref": "#/$defs/Node",
        "$defs": {
            "Node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}
        },
    }
    with pytest.raises(UnsupportedFeature) as info:
        conv(tree)
    assert "recursive" in str(info.value) and "passthrough" in str(info.value)
    assert info.value.path == "tools[0].function.parameters.properties.children.items"
    with pytest.raises(UnsupportedFeature) as info:
        conv({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}})
    assert info.value.path == "tools[0].function.parameters.properties.a.$ref"


def test_const_and_enums() -> None:
    assert conv({"const": "fixed"}) == {"enum": ["fixed"], "type": "STRING"}
    assert conv({"type": "string", "enum": ["a", "b", None]}) == {
        "type": "STRING",
        "enum": ["a", "b"],
        "nullable": True,
    }
    # Gemini enums are strings: other values are described instead of silently constrained.
    assert conv({"type": "integer", "enum": [1, 2, 3], "description": "Level."}) == {
        "type": "INTEGER",
        "description": "Level. Allowed values: 1, 2, 3.",
    }


def test_formats() -> None:
    assert conv({"type": "string", "format": "date-time"}) == {"type": "STRING", "format": "date-time"}
    assert conv({"type": "string", "format": "email"}) == {"type": "STRING"}
    assert conv({"type": "number", "format": "double"}) == {"type": "NUMBER", "format": "double"}
    assert conv({"type": "integer", "format": "uuid"}) == {"type": "INTEGER"}


def test_all_of_is_merged_and_required_filtered() -> None:
    assert conv(
        {
            "allOf": [
                {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                {"properties": {"b": {"type": "boolean"}}, "required": ["b", "ghost"]},
            ]
        }
    ) == {
        "type": "OBJECT",
        "properties": {"a": {"type": "STRING"}, "b": {"type": "BOOLEAN"}},
        "required": ["a", "b"],
    }


def test_arrays_and_inferred_types() -> None:
    assert conv({"type": "array", "items": {"type": "string"}, "minItems": 1}) == {
        "type": "ARRAY",
        "items": {"type": "STRING"},
        "minItems": 1,
    }
    assert conv({"items": [{"type": "string"}, {"type": "integer"}]}) == {
        "items": {"anyOf": [{"type": "STRING"}, {"type": "INTEGER"}]},
        "type": "ARRAY",
    }
    assert conv({"properties": {"x": {"type": "null"}}}) == {"properties": {"x": {"type": "NULL"}}, "type": "OBJECT"}
    assert conv({"type": "object", "properties": {"anything": True}}) == {
        "type": "OBJECT",
        "properties": {"anything": {}},
    }
    with pytest.raises(InvalidRequest):
        conv(True)  # the root must be an object schema


def test_property_ordering_only_for_response_schemas() -> None:
    schema = {"type": "object", "properties": {"z": {"type": "string"}, "a": {"type": "string"}}}
    assert "propertyOrdering" not in conv(schema)
    assert conv(schema, property_ordering=True)["propertyOrdering"] == ["z", "a"]


@pytest.mark.parametrize(
    ("schema", "path"),
    [
        ({"type": "object", "properties": {"a": {"type": "strin"}}}, "tools[0].function.parameters.properties.a.type"),
        ({"type": "object", "properties": []}, "tools[0].function.parameters.properties"),
        ({"type": "object", "properties": {"a": 5}}, "tools[0].function.parameters.properties.a"),
        ({"anyOf": []}, "tools[0].function.parameters.anyOf"),
    ],
)
def test_invalid_schemas_name_the_path(schema: Any, path: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        conv(schema)
    assert info.value.path == path
    assert not isinstance(info.value, UnsupportedFeature)


def test_false_schema_is_unsupported() -> None:
    with pytest.raises(UnsupportedFeature):
        conv({"type": "object", "properties": {"never": False}})
