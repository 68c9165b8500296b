#!/usr/bin/env python3
"""A machine-readable model of what infra/ deploys to Azure Container Apps, for comparing the
Azure deployment with a local run ("ACA parity"). It only REPORTS what the Bicep says: a
setting or policy that is not in the Bicep is null/absent here, never filled in with a
platform default.

Usage: python aca_model.py [--repo DIR] [--out FILE]     (JSON on stdout, or into FILE)

Values are resolved where the files allow it: a module parameter passed as a literal (or as a
main.bicep `var`/`param` with a literal default) becomes that literal; anything else is
{"expr": "<Bicep expression>"}. Numbers and booleans keep their JSON types; strings stay
strings (e.g. env values and Dapr metadata are strings in Bicep).

Schema:
{
  "apps": [{
    "name": str,                                  # container app name = Dapr app id
    "env": {NAME: str | {"expr": str}},           # the (single) container's env
    "dapr": {"enabled": bool, "appId": str, "appPort": int | null, "appProtocol": str | null,
             "logLevel": str | null, "enableApiLogging": bool | null,
             "httpMaxRequestSize": int | null, "httpReadBufferSize": int | null,
             "appHealth": {...literal object...} | null},
    "ingress": null | {"external": bool, "targetPort": int, "transport": str | null,
                       "allowInsecure": bool | null},
    "minReplicas": int | null, "maxReplicas": int | null,
    "resiliency": null | {...properties of its Microsoft.App/containerApps/resiliencyPolicies...}
  }],
  "components": [{
    "name": str, "componentType": str, "version": str,
    "metadata": {name: str | {"expr": str}},
    "scopes": [str | {"expr": str}],
    "resiliency": null | {...properties of its daprComponents/resiliencyPolicies...}
  }],
  "serviceBus": {"subscriptions": [{"topic": str | {"expr"}, "name": str | {"expr"},
                 "maxDeliveryCount": int | null, "lockDuration": str | null,
                 "defaultMessageTimeToLive": str | null}]},
  "environment": {"openTelemetry": null | {        # the managed OpenTelemetry agent
                    "tracesDestinations": [str] | null, "includeDapr": bool | null}}
}
Lists are sorted by name (subscriptions by topic, then name).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import infra_model as m
from infra_model import Expr, get

APP = "Microsoft.App/containerApps"
APP_POLICY = "Microsoft.App/containerApps/resiliencyPolicies"
COMPONENT = "Microsoft.App/managedEnvironments/daprComponents"
COMPONENT_POLICY = "Microsoft.App/managedEnvironments/daprComponents/resiliencyPolicies"
SUBSCRIPTION = "Microsoft.ServiceBus/namespaces/topics/subscriptions"
ENVIRONMENT = "Microsoft.App/managedEnvironments"
TOPIC = "Microsoft.ServiceBus/namespaces/topics"


class Resolver:
    """Resolves a module's parameter references through the one main.bicep call of it."""

    def __init__(self, root: Path) -> None:
        self.main = m.read_bicep(root / "infra" / "main.bicep")
        self.modules = {
            p.name: m.read_bicep(p) for p in sorted((root / "infra" / "modules").glob("*.bicep"))
        }

    def _main_literal(self, value):
        if isinstance(value, Expr):
            name = str(value)
            if name in self.main.vars and not isinstance(self.main.vars[name], Expr):
                return self.main.vars[name]
            if (
                name in self.main.params
                and self.main.params[name][1] is not None
                and not isinstance(self.main.params[name][1], Expr)
            ):
                return self.main.params[name][1]
        return value

    def resolve(self, module: str, value):
        if isinstance(value, dict):
            return {k: self.resolve(module, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(module, v) for v in value]
        if not isinstance(value, Expr):
            return value
        bf = self.modules.get(module)
        name = str(value)
        if bf is not None and name in bf.params:
            calls = [d for d in self.main.modules() if d.ref == f"modules/{module}"]
            if len(calls) == 1:
                passed = get(calls[0].body, "params", name)
                if passed is not None:
                    return self._main_literal(passed)
            default = bf.params[name][1]
            if default is not None:
                return default
        if bf is not None and name in bf.vars and not isinstance(bf.vars[name], Expr):
            return bf.vars[name]
        return value


def jsonable(value):
    if isinstance(value, Expr):
        return {"expr": str(value)}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def _policies(bf: m.BicepFile, policy_type: str, parent_type: str) -> dict[str, dict]:
    """parent resource name -> properties of the policy attached to it (same file)."""
    symbols = {d.symbol: d for d in bf.decls}
    out = {}
    for d in bf.resources(policy_type):
        parent = symbols.get(str(d.body.get("parent")))
        if (
            parent is not None
            and parent.type == parent_type
            and isinstance(parent.body.get("name"), str)
        ):
            out[parent.body["name"]] = d.body.get("properties") or {}
    return out


def build(root: Path) -> dict:
    res = Resolver(root)
    apps, components, subscriptions = [], [], []
    open_telemetry = None
    for fname, bf in res.modules.items():
        r = lambda v, f=fname: jsonable(res.resolve(f, v))
        app_pol = _policies(bf, APP_POLICY, APP)
        comp_pol = _policies(bf, COMPONENT_POLICY, COMPONENT)
        for d in bf.resources(APP):
            if d.existing:
                continue
            props = d.body.get("properties") or {}
            dapr = get(props, "configuration", "dapr") or {}
            containers = get(props, "template", "containers") or []
            env = m.env_list(containers[0]) if len(containers) == 1 else {}
            ingress = get(props, "configuration", "ingress")
            scale = get(props, "template", "scale") or {}
            name = d.body.get("name")
            apps.append(
                {
                    "name": r(name),
                    "env": {k: r(v) for k, v in env.items()},
                    "dapr": {
                        "enabled": r(dapr.get("enabled", False)),
                        "appId": r(dapr.get("appId")),
                        "appPort": r(dapr.get("appPort")),
                        "appProtocol": r(dapr.get("appProtocol")),
                        "logLevel": r(dapr.get("logLevel")),
                        "enableApiLogging": r(dapr.get("enableApiLogging")),
                        "httpMaxRequestSize": r(dapr.get("httpMaxRequestSize")),
                        "httpReadBufferSize": r(dapr.get("httpReadBufferSize")),
                        "appHealth": r(dapr.get("appHealth")),
                    },
                    "ingress": None
                    if not isinstance(ingress, dict)
                    else {
                        "external": r(ingress.get("external", False)),
                        "targetPort": r(ingress.get("targetPort")),
                        "transport": r(ingress.get("transport")),
                        "allowInsecure": r(ingress.get("allowInsecure")),
                    },
                    "minReplicas": r(scale.get("minReplicas")),
                    "maxReplicas": r(scale.get("maxReplicas")),
                    "resiliency": r(app_pol[name])
                    if isinstance(name, str) and name in app_pol
                    else None,
                }
            )
        for d in bf.resources(COMPONENT):
            props = d.body.get("properties") or {}
            name = d.body.get("name")
            components.append(
                {
                    "name": r(name),
                    "componentType": r(props.get("componentType")),
                    "version": r(props.get("version")),
                    "metadata": {k: r(v) for k, v in m.metadata_list(props).items()},
                    "scopes": [r(s) for s in props.get("scopes") or []],
                    "resiliency": r(comp_pol[name])
                    if isinstance(name, str) and name in comp_pol
                    else None,
                }
            )
        for d in bf.resources(ENVIRONMENT):
            otel = get(d.body, "properties", "openTelemetryConfiguration")
            if d.existing or not isinstance(otel, dict):
                continue
            traces = otel.get("tracesConfiguration") or {}
            open_telemetry = {
                "tracesDestinations": r(traces.get("destinations")),
                "includeDapr": r(traces.get("includeDapr")),
            }
        symbols = {d.symbol: d for d in bf.decls}
        for d in bf.resources(SUBSCRIPTION):
            topic = symbols.get(str(d.body.get("parent")))
            props = d.body.get("properties") or {}
            subscriptions.append(
                {
                    "topic": r(topic.body.get("name"))
                    if topic is not None and topic.type == TOPIC
                    else r(d.body.get("parent")),
                    "name": r(d.body.get("name")),
                    "maxDeliveryCount": r(props.get("maxDeliveryCount")),
                    "lockDuration": r(props.get("lockDuration")),
                    "defaultMessageTimeToLive": r(props.get("defaultMessageTimeToLive")),
                }
            )
    key = lambda x: json.dumps(x, sort_keys=True)
    return {
        "apps": sorted(apps, key=lambda a: key(a["name"])),
        "components": sorted(components, key=lambda c: key(c["name"])),
        "serviceBus": {
            "subscriptions": sorted(subscriptions, key=lambda s: (key(s["topic"]), key(s["name"])))
        },
        "environment": {"openTelemetry": open_telemetry},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[2]))
    ap.add_argument("--out", help="write the JSON here instead of stdout")
    a = ap.parse_args()
    text = json.dumps(build(Path(a.repo).resolve()), indent=2, sort_keys=False) + "\n"
    if a.out:
        Path(a.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
