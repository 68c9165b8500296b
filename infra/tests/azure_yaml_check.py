#!/usr/bin/env python3
"""Validate azure.yaml against azd's published JSON schema (schemas/v1.0/azure.yaml.json of
Azure/azure-dev) plus the rule the schema cannot express: a `containerapp` service built from
source (no `image`) must name a `language` (azd: "must specify language or image"; Rust has no
azd language, so `docker`).

Usage: python azure_yaml_check.py --schema FILE azure.yaml
Prints one `path: message` line per problem; exit 0 when clean, 1 otherwise, 2 on unreadable
input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import jsonschema
import yaml


def problems(schema: dict, doc) -> list[str]:
    validator = jsonschema.validators.validator_for(schema)(schema)
    out = []
    for e in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(map(str, e.absolute_path)) or "<root>"
        out.append(f"{where}: {e.message}")
    services = doc.get("services") if isinstance(doc, dict) else None
    for name, svc in (services or {}).items():
        svc = svc or {}
        if svc.get("host") == "containerapp" and "image" not in svc and not svc.get("language"):
            out.append(
                f"services/{name}: a containerapp built from source needs `language` (use `docker` for Rust)"
            )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--schema", required=True)
    ap.add_argument("file")
    a = ap.parse_args()
    try:
        schema = json.loads(Path(a.schema).read_text())
        doc = yaml.safe_load(Path(a.file).read_text())
    except (OSError, ValueError, yaml.YAMLError) as e:
        print(f"cannot read input: {e}")
        return 2
    found = problems(schema, doc)
    for p in found:
        print(p)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
