"""The apps' sidecar readers against the published JSON Schema (ssdmobile/schema/sidecar.schema.json).

Android: SchemaTest.kt does it in JUnit, by reflection over the Gson-mapped Kotlin classes
(android_demo/postprocess/test.sh, run by tests/test_android_postprocess.py).

iOS: there is no Swift toolchain here, so this test reads the Swift source instead of compiling it:
the `Decodable` structs in Sidecar.swift (stored `let`/`var` properties, their types and
optionality, and `enum CodingKeys`). It is a reader for the plain style that file keeps, not a
Swift parser; a construct it does not know (a custom init(from:), an enum-typed property) fails
here rather than being skipped. What it checks, as SchemaTest does for Kotlin: every JSON
property the app decodes exists in the schema at that path with a compatible JSON type, and
every non-optional one (JSONDecoder throws when it is absent or null) is required and
non-nullable in the schema.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ssdmobile.schema import SCHEMA_FILE

REPO = Path(__file__).resolve().parents[1]
SWIFT = REPO / "ios_demo/SSDMobileDemo/Sidecar.swift"


# -- reading the Swift structs ------------------------------------------------------------------------

@dataclass
class SwiftStruct:
    name: str
    decodable: bool
    parent: "SwiftStruct | None"
    properties: list[tuple[str, str]] = field(default_factory=list)  # (name, type as written)
    coding_keys: dict[str, str] | None = None  # property -> JSON key, when the struct declares CodingKeys
    children: dict[str, "SwiftStruct"] = field(default_factory=dict)

    def json_key(self, prop: str) -> str | None:
        return prop if self.coding_keys is None else self.coding_keys.get(prop)

    def lookup(self, name: str) -> "SwiftStruct | None":
        s = self
        while s is not None:
            if name in s.children:
                return s.children[name]
            s = s.parent
        return None


def _code(line: str) -> str:
    """The line without string literals and // comments (so braces in either are not counted)."""
    line = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)
    return line.split("//", 1)[0]


def read_swift_structs(text: str) -> dict[str, SwiftStruct]:
    """Top-level structs by name, nested ones under .children."""
    top = SwiftStruct("<file>", False, None)
    stack: list[tuple[str, SwiftStruct | None]] = []  # ("struct" | "keys" | "other", struct)
    for raw in text.splitlines():
        line = _code(raw)
        ctx, cur = stack[-1] if stack else ("struct", top)
        if ctx == "struct" and "{" not in line:
            m = re.match(r"\s*(?:let|var)\s+(\w+)\s*:\s*([^=]+?)\s*$", line)
            if m and not re.match(r"\s*static\b", line):
                cur.properties.append((m.group(1), m.group(2)))
        if ctx == "keys":
            m = re.match(r"\s*case\s+(.*)$", raw.split("//", 1)[0])  # raw: the JSON names are string literals
            for item in (m.group(1).split(",") if m else []):
                name, _, raw_value = (p.strip() for p in item.partition("="))
                cur.coding_keys[name] = raw_value.strip('"') if raw_value else name
        opener = None
        m = re.match(r"\s*struct\s+(\w+)\s*(?::\s*([^{]*))?\{", line)
        if m and ctx == "struct":
            s = SwiftStruct(m.group(1), "Decodable" in (m.group(2) or "") or "Codable" in (m.group(2) or ""), cur)
            cur.children[s.name] = s
            opener = ("struct", s)
        elif re.match(r"\s*enum\s+CodingKeys\s*:\s*String\s*,\s*CodingKey\s*\{", line) and ctx == "struct":
            cur.coding_keys = {}
            opener = ("keys", cur)
        for ch in line:
            if ch == "{":
                stack.append(opener or ("other", cur))
                opener = None
            elif ch == "}":
                stack.pop()
    assert not stack, "unbalanced braces while reading the Swift source"
    return top.children


# -- checking a reader against the schema ------------------------------------------------------------

class SchemaWalker:
    def __init__(self, schema: dict):
        self.schema = schema

    def resolve(self, node: dict) -> dict:
        ref = node.get("$ref")
        return self.schema["$defs"][ref.removeprefix("#/$defs/")] if ref else node

    def non_null(self, node: dict) -> tuple[dict, bool]:
        """(schema of the non-null value, whether null is allowed); pydantic writes X | None as anyOf [X, null]."""
        if "anyOf" not in node:
            return self.resolve(node), False
        others = [n for n in node["anyOf"] if n.get("type") != "null"]
        assert len(others) == 1, f"anyOf of several non-null schemas: {node}"
        return self.resolve(others[0]), len(others) < len(node["anyOf"])


SWIFT_JSON_TYPES = {"String": {"string"}, "Int": {"integer"}, "Double": {"number", "integer"},
                    "Float": {"number", "integer"}, "Bool": {"boolean"}}


def check_swift_struct(walker: SchemaWalker, struct: SwiftStruct, obj: dict, prefix: str = "") -> list[str]:
    problems = []
    assert struct.decodable, f"{struct.name} is not Decodable"
    properties, required = obj.get("properties", {}), set(obj.get("required", ()))
    for prop, swift_type in struct.properties:
        key = struct.json_key(prop)
        path = prefix + (key or prop)
        if key is None:
            problems.append(f"{path}: {struct.name}.{prop} has no case in CodingKeys")
            continue
        if key not in properties:
            problems.append(f"{path}: {struct.name}.{prop} decodes it, the schema has no such property")
            continue
        optional = swift_type.endswith("?")
        node, nullable = walker.non_null(properties[key])
        if not optional:
            if key not in required:
                problems.append(f"{path}: {struct.name}.{prop} is not optional, the schema does not require it")
            if nullable:
                problems.append(f"{path}: {struct.name}.{prop} is not optional, the schema allows null")
        problems += _check_swift_type(walker, struct, swift_type.rstrip("?").strip(), node, path)
    return problems


def _check_swift_type(walker, struct, swift_type: str, node: dict, path: str) -> list[str]:
    array = re.fullmatch(r"\[\s*(.+?)\s*\]", swift_type)
    if array:
        if node.get("type") != "array":
            return [f"{path}: the app decodes an array, the schema says {node.get('type')}"]
        item, nullable = walker.non_null(node.get("items", {}))
        element = array.group(1)
        problems = [] if element.endswith("?") or not nullable else [f"{path}: the schema allows null items"]
        return problems + _check_swift_type(walker, struct, element.rstrip("?"), item, path + "[]")
    if swift_type in SWIFT_JSON_TYPES:
        if node.get("type") not in SWIFT_JSON_TYPES[swift_type]:
            return [f"{path}: the app decodes {swift_type}, the schema says {node.get('type')}"]
        return []
    nested = struct.lookup(swift_type)
    if nested is None:
        return [f"{path}: this test does not know the Swift type {swift_type}"]
    if node.get("type") != "object":
        return [f"{path}: the app decodes the struct {swift_type}, the schema says {node.get('type')}"]
    return check_swift_struct(walker, nested, node, path + ".")


@pytest.fixture(scope="module")
def walker():
    return SchemaWalker(json.loads(SCHEMA_FILE.read_text()))


def test_swift_reader_matches_schema(walker):
    structs = read_swift_structs(SWIFT.read_text())
    sidecar = structs["Sidecar"]
    # what the reading found, so a change of style that it silently misses fails here
    assert {"format", "schemaVersion", "input", "preprocess", "nms", "classNames"} <= {p for p, _ in sidecar.properties}
    assert {"Input", "Preprocess", "Output", "Nms"} <= set(sidecar.children)
    problems = check_swift_struct(walker, sidecar, walker.schema)
    assert not problems, "the Swift sidecar reader disagrees with the schema:\n  " + "\n  ".join(problems)


def test_swift_check_reports_mismatches(walker):
    """The check can fail: a reader that wants what the schema does not promise is caught."""
    swift = """
    struct Sidecar: Decodable {
        struct Nms: Decodable {
            let inGraph: Bool
            let maxPerClass: Int       // schema: nullable
            let topk: Int?             // no such property
            let iouThresh: String      // schema: number
            enum CodingKeys: String, CodingKey {
                case inGraph = "in_graph", maxPerClass = "max_per_class", topk
                case iouThresh = "iou_thresh"
            }
        }
        let nms: Nms
        let schemaVersion: Int         // no CodingKeys, so decoded as "schemaVersion"
        let runtime: String            // optional in the schema
        let outputs: [Output]          // unknown struct
    }
    """
    problems = "\n".join(check_swift_struct(walker, read_swift_structs(swift)["Sidecar"], walker.schema))
    for want in ("nms.max_per_class: Nms.maxPerClass is not optional, the schema allows null",
                 "nms.topk: Nms.topk decodes it, the schema has no such property",
                 "nms.iou_thresh: the app decodes String, the schema says number",
                 "schemaVersion: Sidecar.schemaVersion decodes it",
                 "runtime: Sidecar.runtime is not optional, the schema does not require it",
                 "outputs[]: this test does not know the Swift type Output"):
        assert want in problems, f"{want!r} not in:\n{problems}"
