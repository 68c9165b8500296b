#!/usr/bin/env python3
"""Check the property names (and fixed string values) of every Bicep resource body against
Microsoft's Bicep type data, for the exact `type@apiVersion` each resource declares.

The type data is Azure/bicep-types-az `generated/<provider>/<namespace>/<apiVersion>/types.json`,
kept under a directory as `<namespace>/<apiVersion>/types.json` (any depth: every types.json
below --types is indexed). Bodies are read with infra_model's Bicep reader, so literal objects
are checked wherever they appear, including in `resource ... = if (...)` bodies; a value that
is an expression (parameter, variable, function call) is not looked into.

Reported, each on one line `FILE: SYMBOL.path: problem`:
  - a property name the type does not have (objects without additionalProperties),
  - a read-only property that is set,
  - a string literal outside the type's fixed set of values (when the set is closed),
  - a resource whose type@apiVersion has no type data ("not checked"), or that the reader
    cannot read (a `[for ...]` loop body, say).

Usage: python bicep_types.py --types DIR FILE.bicep [...]
Exit 0 when every resource is checked and clean, 1 otherwise, 2 on a usage/data error.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import infra_model as m

READ_ONLY = 2  # bicep-types property flag
META = {"parent", "scope", "dependsOn"}  # Bicep keywords inside a resource body, not ARM properties


class TypeIndex:
    """resource type name (lower case, 'type@version') -> (types list, resource node)."""

    def __init__(self, root: Path) -> None:
        self.by_name: dict[str, tuple[list, dict]] = {}
        for f in sorted(root.rglob("types.json")):
            types = json.loads(f.read_text())
            for node in types:
                if node.get("$type") == "ResourceType":
                    self.by_name[node["name"].lower()] = (types, node)

    def get(self, ref: str):
        return self.by_name.get(ref.lower())


def _deref(types: list, ref: dict) -> dict:
    return types[int(ref["$ref"].split("/")[-1])]


def _literals(types: list, node: dict) -> set[str] | None:
    """The closed set of string values a type allows, or None when any string is allowed."""
    if node.get("$type") == "StringLiteralType":
        return {node["value"]}
    if node.get("$type") == "UnionType":
        out: set[str] = set()
        for el in node.get("elements", []):
            sub = _deref(types, el)
            if sub.get("$type") != "StringLiteralType":
                return None
            out.add(sub["value"])
        return out
    return None


def check_value(types: list, node: dict, value, path: str, errs: list[str]) -> None:
    kind = node.get("$type")
    if isinstance(value, m.Expr):
        return
    if kind == "UnionType" and isinstance(value, (dict, list)):
        trials = []
        for el in node.get("elements", []):
            sub = _deref(types, el)
            e: list[str] = []
            check_value(types, sub, value, path, e)
            trials.append(e)
        if trials and not any(not e for e in trials):
            errs.extend(min(trials, key=len))
        return
    if isinstance(value, str):
        allowed = _literals(types, node)
        if allowed is not None and value.lower() not in {a.lower() for a in allowed}:
            errs.append(f"{path}: {value!r} is not one of {sorted(allowed)}")
        return
    if kind == "ObjectType" and isinstance(value, dict):
        props = node.get("properties", {})
        open_ended = node.get("additionalProperties") is not None
        for key, v in value.items():
            if key in props:
                prop = props[key]
                if prop.get("flags", 0) & READ_ONLY:
                    errs.append(f"{path}.{key}: read-only property")
                check_value(types, _deref(types, prop["type"]), v, f"{path}.{key}", errs)
            elif open_ended:
                check_value(
                    types, _deref(types, node["additionalProperties"]), v, f"{path}.{key}", errs
                )
            else:
                errs.append(f"{path}.{key}: unknown property")
    elif kind == "DiscriminatedObjectType" and isinstance(value, dict):
        disc = node["discriminator"]
        props = dict(node.get("baseProperties", {}))
        chosen = value.get(disc)
        if isinstance(chosen, str):
            if chosen not in node.get("elements", {}):
                errs.append(
                    f"{path}.{disc}: {chosen!r} is not one of {sorted(node.get('elements', {}))}"
                )
            else:
                props.update(_deref(types, node["elements"][chosen]).get("properties", {}))
        for key, v in value.items():
            if key == disc:
                continue
            if key in props:
                check_value(types, _deref(types, props[key]["type"]), v, f"{path}.{key}", errs)
            elif isinstance(chosen, str):
                errs.append(f"{path}.{key}: unknown property")
    elif kind == "ArrayType" and isinstance(value, list):
        item = _deref(types, node["itemType"])
        for i, v in enumerate(value):
            check_value(types, item, v, f"{path}[{i}]", errs)


_ANY_DECL = re.compile(r"^resource\s+(\w+)\s+'([^']+)'", re.MULTILINE)


def check_file(path: Path, index: TypeIndex) -> list[str]:
    out: list[str] = []
    try:
        bf = m.read_bicep(path)
    except m.BicepSyntaxError as e:
        return [f"{path}: cannot read: {e}"]
    read = {d.symbol for d in bf.resources()}
    for mm in _ANY_DECL.finditer(bf.text):
        if mm[1] not in read:
            out.append(
                f"{path}: {mm[1]}: resource body not read (only literal object bodies are checked; not checked)"
            )
    for d in bf.resources():
        hit = index.get(d.ref)
        if hit is None:
            out.append(f"{path}: {d.symbol}: no type data for {d.ref} (not checked)")
            continue
        types, rt = hit
        body = {k: v for k, v in d.body.items() if k not in META}
        if d.existing:
            body = {k: v for k, v in body.items() if k == "name"}
        errs: list[str] = []
        check_value(types, _deref(types, rt["body"]), body, d.symbol, errs)
        out.extend(f"{path}: {e}" for e in errs)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--types", required=True, help="directory holding <namespace>/<apiVersion>/types.json"
    )
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    root = Path(a.types)
    if not root.is_dir():
        print(f"type data directory {root} does not exist")
        return 2
    index = TypeIndex(root)
    if not index.by_name:
        print(f"no types.json under {root}")
        return 2
    problems = []
    for f in a.files:
        problems += check_file(Path(f), index)
    for p in problems:
        print(p)
    print(f"bicep_types: {len(a.files)} files, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
