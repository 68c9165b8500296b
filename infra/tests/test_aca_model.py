#!/usr/bin/env python3
"""Tests of aca_model.py: the model holds the four apps with their ports and the environment's
OpenTelemetry agent, and it reports only what the Bicep says (a resiliency policy or the agent
removed from a temporary copy is null in the model).

Usage: python test_aca_model.py [--repo DIR]      Exit 0 when every test passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import aca_model

PORTS = {
    "checkout": 5000,
    "order-processor": 5001,
    "order-service": 5002,
    "inventory-service": 5003,
}
DAPR_PORTS = {
    "checkout": None,
    "order-processor": 5001,
    "order-service": 5002,
    "inventory-service": 5003,
}


def by_name(items: list[dict]) -> dict:
    return {i["name"]: i for i in items}


def test_four_apps_with_ports(repo: Path) -> None:
    apps = by_name(aca_model.build(repo)["apps"])
    assert sorted(apps) == sorted(PORTS), f"apps {sorted(apps)}"
    for name, port in PORTS.items():
        assert apps[name]["env"].get("APP_PORT") == str(port), (
            f"{name} APP_PORT {apps[name]['env'].get('APP_PORT')!r}"
        )
        assert apps[name]["dapr"]["appPort"] == DAPR_PORTS[name], (
            f"{name} dapr.appPort {apps[name]['dapr']['appPort']!r}"
        )
        ingress = apps[name]["ingress"]
        if ingress is not None:
            assert ingress["targetPort"] == port, (
                f"{name} ingress targetPort {ingress['targetPort']!r}"
            )
    assert apps["inventory-service"]["ingress"]["external"] is True
    assert apps["order-processor"]["resiliency"] is not None


def test_open_telemetry_agent(repo: Path) -> None:
    otel = aca_model.build(repo)["environment"]["openTelemetry"]
    assert otel == {"tracesDestinations": ["appInsights"], "includeDapr": True}, otel
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(repo / "infra", copy / "infra")
        f = copy / "infra" / "modules" / "container-apps-env.bicep"
        text = f.read_text()
        cut = re.sub(
            r"    openTelemetryConfiguration: \{\n.*?\n    \}\n", "", text, count=1, flags=re.DOTALL
        )
        assert cut != text, "could not find openTelemetryConfiguration to remove"
        f.write_text(cut)
        after = aca_model.build(copy)["environment"]["openTelemetry"]
    assert after is None, f"no agent in the Bicep must be none in the model: {after}"


def test_model_reports_what_the_bicep_says(repo: Path) -> None:
    before = by_name(aca_model.build(repo)["components"])
    assert before["pubsub-inventory"]["resiliency"] is not None, (
        "pubsub-inventory has no resiliency in the real files"
    )
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "repo"
        shutil.copytree(repo / "infra", copy / "infra")
        f = copy / "infra" / "modules" / "dapr-components.bicep"
        text = f.read_text()
        cut = re.sub(
            r"resource pubsubInventoryResiliency .*?\n}\n", "", text, count=1, flags=re.DOTALL
        )
        assert cut != text, "could not find the pubsubInventoryResiliency resource to remove"
        f.write_text(cut)
        after = by_name(aca_model.build(copy)["components"])
    assert after["pubsub-inventory"]["resiliency"] is None, after["pubsub-inventory"]["resiliency"]
    assert after["pubsub"]["resiliency"] == before["pubsub"]["resiliency"], (
        "other policies must be unaffected"
    )


def test_unresolvable_values_are_expressions(repo: Path) -> None:
    comps = by_name(aca_model.build(repo)["components"])
    assert comps["statestore"]["metadata"]["url"] == {"expr": "cosmos.outputs.endpoint"}
    assert comps["statestore"]["metadata"]["database"] == "inventory"  # main.bicep var, resolved


TESTS = [
    test_four_apps_with_ports,
    test_model_reports_what_the_bicep_says,
    test_open_telemetry_agent,
    test_unresolvable_values_are_expressions,
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", default=str(HERE.parents[1]))
    repo = Path(ap.parse_args().repo).resolve()
    failed = 0
    for t in TESTS:
        try:
            t(repo)
            print(f"ok   {t.__name__}")
        except Exception:  # noqa: BLE001 - any error is this test failing, with its traceback
            failed += 1
            print(f"FAIL {t.__name__}\n{traceback.format_exc()}")
    print(f"{len(TESTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
