#!/usr/bin/env python3
"""Negative tests: prove, on every run, that each offline check fails on deliberate breakage.

The repository (without target/ and .git) is copied to a temporary directory; each case breaks
ONE thing in a fresh copy and runs the same step function scripts/check-infra.sh runs
(steps.py). A case passes only when:
  - pass/fail steps (parse, types, checkov, azure-yaml, cargo-build): the step passes on the
    untouched copy, fails on the broken one, and its output names the breakage;
  - the consistency step: the broken copy reports at least one NEW problem (not in the untouched
    copy's report) that names the breakage. This stays meaningful while unrelated problems
    exist (e.g. a crate that is not written yet).
The local Dapr files (dapr.yaml, components/) are mutated where they exist; while they do not,
the local cases use a small fixture written into the copy (and say so).

Usage: python test_negative.py [--repo DIR] [--infra-check DIR] [-k SUBSTRING]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import steps

IGNORE = shutil.ignore_patterns(
    "target", ".git", ".azure", ".dapr", "node_modules", ".venv", "__pycache__", "*.log"
)


class Anchor(Exception):
    pass


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    n = text.count(old)
    if n != 1:
        raise Anchor(
            f"{path.name}: expected exactly one {old!r}, found {n} (update test_negative.py)"
        )
    path.write_text(text.replace(old, new))


def edit(rel: str, old: str, new: str) -> Callable[[Path], None]:
    return lambda repo: replace_once(repo / rel, old, new)


def append(rel: str, text: str) -> Callable[[Path], None]:
    return lambda repo: (repo / rel).write_text((repo / rel).read_text() + text)


def yaml_edit(rel: str, fn: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(repo: Path) -> None:
        p = repo / rel
        doc = yaml.safe_load(p.read_text())
        fn(doc)
        p.write_text(yaml.safe_dump(doc, sort_keys=False))

    return apply


# -- local Dapr files -------------------------------------------------------------------------

FIXTURE_DAPR = """\
version: 1
common:
  resourcesPaths: [./components]
apps:
  - appID: checkout
    appDirPath: ./checkout
    daprHTTPPort: 3500
    command: ["cargo", "run", "-p", "checkout"]
  - appID: order-processor
    appDirPath: ./order-processor
    appPort: 5001
    daprHTTPPort: 3501
    command: ["cargo", "run", "-p", "order-processor"]
  - appID: order-service
    appDirPath: ./order-service
    appPort: 5002
    daprHTTPPort: 3502
    env: {PUBSUB_NAME: pubsub}
    command: ["cargo", "run", "-p", "order-service"]
  - appID: inventory-service
    appDirPath: ./inventory-service
    appPort: 5003
    daprHTTPPort: 3503
    env: {APP_PORT: "5003"}
    command: ["cargo", "run", "-p", "inventory-service"]
"""
FIXTURE_COMPONENTS = {
    "pubsub.yaml": "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: pubsub}\nspec:\n  type: pubsub.redis\n  version: v1\n  metadata: [{name: redisHost, value: 'localhost:6379'}]\n",
    "statestore.yaml": "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata: {name: statestore}\nspec:\n  type: state.redis\n  version: v1\n  metadata: [{name: redisHost, value: 'localhost:6379'}]\n",
    "resiliency.yaml": "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata: {name: resiliency}\nspec:\n  policies: {retries: {r: {policy: constant, duration: 1s, maxRetries: 3}}}\n  targets: {components: {pubsub: {inbound: {retry: r}}}}\n",
}


def local_files_present(repo: Path) -> bool:
    return (repo / "dapr.yaml").is_file() and (repo / "components").is_dir()


def ensure_local(repo: Path) -> str:
    """Use the real dapr.yaml/components when both exist, else write the fixture."""
    if local_files_present(repo):
        return "real dapr.yaml + components/"
    (repo / "dapr.yaml").write_text(FIXTURE_DAPR)
    comp = repo / "components"
    if comp.exists():
        shutil.rmtree(comp)
    comp.mkdir()
    for name, text in FIXTURE_COMPONENTS.items():
        (comp / name).write_text(text)
    return "fixture dapr.yaml + components/ (the real ones are not in the repository yet)"


def set_app(app_id: str, key: str, value) -> Callable[[dict], None]:
    def fn(doc: dict) -> None:
        for a in doc.get("apps") or []:
            if a.get("appID") == app_id:
                a[key] = value
                return
        raise Anchor(f"dapr.yaml has no app {app_id!r}")

    return fn


def bump_app_port(app_id: str) -> Callable[[dict], None]:
    def fn(doc: dict) -> None:
        for a in doc.get("apps") or []:
            if a.get("appID") == app_id:
                if "appPort" not in a:
                    raise Anchor(f"dapr.yaml app {app_id!r} has no appPort")
                a["appPort"] = int(a["appPort"]) + 7
                return
        raise Anchor(f"dapr.yaml has no app {app_id!r}")

    return fn


def rename_local_component(repo: Path) -> None:
    """Rename the local Component that order-service publishes to."""
    env = {}
    doc = yaml.safe_load((repo / "dapr.yaml").read_text())
    for a in doc.get("apps") or []:
        if a.get("appID") == "order-service":
            env = {**((doc.get("common") or {}).get("env") or {}), **(a.get("env") or {})}
    import infra_model

    cfg = repo / "order-service" / "src" / "config.rs"
    name = env.get("PUBSUB_NAME")
    if name is None and cfg.is_file():
        consts = infra_model.rust_consts(cfg)
        name = next(
            (
                consts[c]
                for c in ("DEFAULT_PUBSUB_NAME", "PUBSUB_NAME")
                if c in consts and consts[c] != c
            ),
            None,
        )
    name = name or "pubsub"
    for p in sorted((repo / "components").glob("*.y*ml")):
        docs = list(yaml.safe_load_all(p.read_text()))
        hit = False
        for d in docs:
            if (
                isinstance(d, dict)
                and d.get("kind") == "Component"
                and (d.get("metadata") or {}).get("name") == name
            ):
                d["metadata"]["name"] = name + "-renamed"
                hit = True
        if hit:
            p.write_text(yaml.safe_dump_all(docs, sort_keys=False))
            return
    raise Anchor(f"components/ has no Component named {name!r}")


# -- cases ------------------------------------------------------------------------------------


@dataclass
class Case:
    id: str
    what: str
    step: str
    mutate: Callable[[Path], None]
    expect: str  # a regex the failing output (or a new consistency problem) must match
    local: bool = False
    services: list[str] | None = None


CASES = [
    Case(
        "parse-syntax",
        "unterminated string in cosmos.bicep",
        "parse",
        edit("infra/modules/cosmos.bicep", "kind: 'GlobalDocumentDB'", "kind: 'GlobalDocumentDB"),
        r"PARSE ERROR .*cosmos\.bicep",
    ),
    Case(
        "types-unknown-property",
        "misspelled ingress property (targetPortt)",
        "types",
        edit("infra/modules/app-order-service.bicep", "targetPort: 5002", "targetPortt: 5002"),
        r"targetPortt(: unknown property|.*BCP037)",
    ),
    Case(
        "types-unknown-resiliency-property",
        "misspelled retry count in a Dapr component resiliency policy",
        "types",
        edit("infra/modules/dapr-components.bicep", "maxRetries: 60", "maxRetriess: 60"),
        r"maxRetriess(: unknown property|.*BCP037)",
    ),
    Case(
        "types-unchecked-api-version",
        "Service Bus namespace at an API version without type data",
        "types",
        edit(
            "infra/modules/servicebus.bicep",
            "'Microsoft.ServiceBus/namespaces@2024-01-01' =",
            "'Microsoft.ServiceBus/namespaces@2021-11-01' =",
        ),
        r"not checked|BCP081",
    ),
    Case(
        "consistency-location-unrestricted",
        "location without its list of regions",
        "consistency",
        lambda repo: (repo / "infra/main.bicep").write_text(
            re.sub(
                r"@allowed\(\[\n(?:  '[a-z0-9]+'\n)+\]\)\nparam location",
                "param location",
                (repo / "infra/main.bicep").read_text(),
                count=1,
            )
        ),
        r"param location has no @allowed",
    ),
    Case(
        "consistency-no-developer-access",
        "developer principal not passed by azd",
        "consistency",
        edit("infra/main.parameters.json", '"${AZURE_PRINCIPAL_ID}"', '""'),
        r"developer principal parameter",
    ),
    Case(
        "consistency-acr-arm-policy",
        "registry ARM-audience token policy left implicit",
        "consistency",
        edit("infra/modules/registry.bicep", "status: 'enabled'", "status: 'disabled'"),
        r"azureADAuthenticationAsArmPolicy is not explicitly enabled",
    ),
    Case(
        "checkov-acr-admin-user",
        "registry admin user switched on",
        "checkov",
        edit("infra/modules/registry.bicep", "adminUserEnabled: false", "adminUserEnabled: true"),
        r"FAILED\s+CKV_AZURE_137",
    ),
    Case(
        "checkov-root-user",
        "runtime image runs as root",
        "checkov",
        edit("order-processor/Dockerfile", "USER nonroot:nonroot", "USER root"),
        r"FAILED\s+CKV_DOCKER_8",
    ),
    Case(
        "checkov-literal-secret",
        "a storage connection string in Bicep",
        "checkov",
        append(
            "infra/modules/monitoring.bicep",
            "\nvar leaked = 'DefaultEndpointsProtocol=https;AccountName=foo;AccountKey=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4MTIzNA==;EndpointSuffix=core.windows.net'\noutput leakedLength int = length(leaked)\n",
        ),
        r"FAILED\s+CKV_SECRET",
    ),
    Case(
        "azure-yaml-no-language",
        "order-service without `language: docker`",
        "azure-yaml",
        yaml_edit("azure.yaml", lambda d: d["services"]["order-service"].pop("language")),
        r"order-service.*language",
    ),
    Case(
        "azure-yaml-top-level-remote-build",
        "remoteBuild at service level (only valid for functions)",
        "azure-yaml",
        yaml_edit("azure.yaml", lambda d: d["services"]["checkout"].update(remoteBuild=True)),
        r"services/checkout",
    ),
    Case(
        "azure-yaml-bad-name",
        "project name with upper case and underscore",
        "azure-yaml",
        yaml_edit("azure.yaml", lambda d: d.update(name="Dapr_Rust")),
        r"Dapr_Rust",
    ),
    Case(
        "consistency-app-id",
        "wrong Dapr app id on the inventory-service app",
        "consistency",
        edit(
            "infra/modules/app-inventory-service.bicep",
            "appId: 'inventory-service'",
            "appId: 'inventory'",
        ),
        r"inventory-service Dapr app id",
    ),
    Case(
        "consistency-service-name",
        "azure.yaml service renamed",
        "consistency",
        yaml_edit(
            "azure.yaml",
            lambda d: d.__setitem__(
                "services",
                {("orders" if k == "order-service" else k): v for k, v in d["services"].items()},
            ),
        ),
        r"azure\.yaml services",
    ),
    Case(
        "consistency-port-infra",
        "order-processor APP_PORT changed in infra only",
        "consistency",
        edit(
            "infra/modules/app-order-processor.bicep",
            "name: 'APP_PORT'\n              value: '5001'",
            "name: 'APP_PORT'\n              value: '5009'",
        ),
        r"order-processor port",
    ),
    Case(
        "consistency-port-plan-infra",
        "inventory-service back on its old Azure port 5001 (README plan: 5003)",
        "consistency",
        edit(
            "infra/modules/app-inventory-service.bicep",
            "name: 'APP_PORT'\n              value: '5003'",
            "name: 'APP_PORT'\n              value: '5001'",
        ),
        r"inventory-service port.*README port plan",
    ),
    Case(
        "consistency-resiliency-wrong-component",
        "the delivery retry policy attached to the publisher's component",
        "consistency",
        edit(
            "infra/modules/dapr-components.bicep",
            "resource pubsubInventoryResiliency 'Microsoft.App/managedEnvironments/daprComponents/resiliencyPolicies@2025-10-02-preview' = {\n  parent: pubsubInventory",
            "resource pubsubInventoryResiliency 'Microsoft.App/managedEnvironments/daprComponents/resiliencyPolicies@2025-10-02-preview' = {\n  parent: pubsub",
        ),
        r"'pubsub-inventory' has no resiliency policy",
    ),
    Case(
        "consistency-resiliency-no-inbound-retry",
        "delivery retries switched off (maxRetries 0)",
        "consistency",
        edit("infra/modules/dapr-components.bicep", "maxRetries: 60", "maxRetries: 0"),
        r"pubsub-inventory.*inboundPolicy has no httpRetryPolicy",
    ),
    Case(
        "consistency-app-resiliency-missing",
        "order-processor's app resiliency policy removed",
        "consistency",
        lambda repo: (repo / "infra/modules/app-order-processor.bicep").write_text(
            re.sub(
                r"resource resiliency .*?\n}\n",
                "",
                (repo / "infra/modules/app-order-processor.bicep").read_text(),
                count=1,
                flags=re.DOTALL,
            )
        ),
        r"'order-processor' has no containerApps/resiliencyPolicies",
    ),
    Case(
        "consistency-handler-timeout",
        "Service Bus handler timeout shorter than the retry loop",
        "consistency",
        edit("infra/modules/dapr-components.bicep", "value: '1800'", "value: '60'"),
        r"handlerTimeoutInSec 60 <= worst-case",
    ),
    Case(
        "consistency-unbounded-handlers",
        "maxConcurrentHandlers removed from pubsub-inventory",
        "consistency",
        edit(
            "infra/modules/dapr-components.bicep",
            "name: 'maxConcurrentHandlers'",
            "name: 'maxConcurrentHandlersX'",
        ),
        r"must bound maxConcurrentHandlers",
    ),
    Case(
        "consistency-inventory-ingress-internal",
        "inventory-service ingress made internal",
        "consistency",
        edit(
            "infra/modules/app-inventory-service.bicep",
            "external: true\n        targetPort: 5003",
            "external: false\n        targetPort: 5003",
        ),
        r"inventory-service ingress external",
    ),
    Case(
        "consistency-token-not-required",
        "inventory-service writes reachable without the sidecar token",
        "consistency",
        edit(
            "infra/modules/app-inventory-service.bicep",
            "name: 'APP_API_TOKEN_REQUIRED'\n              value: 'true'",
            "name: 'APP_API_TOKEN_REQUIRED'\n              value: 'false'",
        ),
        r"inventory-service APP_API_TOKEN_REQUIRED",
    ),
    Case(
        "consistency-otel-no-dapr-traces",
        "the OpenTelemetry agent without the Dapr sidecars' traces (includeDapr)",
        "consistency",
        edit("infra/modules/container-apps-env.bicep", "includeDapr: true", "includeDapr: false"),
        r"includeDapr is not true",
    ),
    Case(
        "consistency-otel-no-app-insights",
        "traces sent by the agent to no Application Insights destination",
        "consistency",
        edit("infra/modules/container-apps-env.bicep", "'appInsights'", "'dataDog'"),
        r"destinations lacks 'appInsights'",
    ),
    Case(
        "consistency-otel-legacy-dapr-export",
        "daprAIConnectionString set again beside the agent",
        "consistency",
        edit(
            "infra/modules/container-apps-env.bicep",
            "    appInsightsConfiguration: {",
            "    daprAIConnectionString: applicationInsights.properties.ConnectionString\n"
            "    appInsightsConfiguration: {",
        ),
        r"daprAIConnectionString is set",
    ),
    Case(
        "consistency-otel-endpoint-overridden",
        "an app setting OTEL_EXPORTER_OTLP_PROTOCOL itself, over the agent's value",
        "consistency",
        edit(
            "infra/modules/app-order-service.bicep",
            "            {\n              name: 'PUBSUB_NAME'",
            "            {\n              name: 'OTEL_EXPORTER_OTLP_PROTOCOL'\n"
            "              value: 'http/protobuf'\n            }\n"
            "            {\n              name: 'PUBSUB_NAME'",
        ),
        r"order-service: sets OTEL_EXPORTER_OTLP_PROTOCOL",
    ),
    Case(
        "consistency-cosmos-session",
        "Cosmos DB account back at Session consistency, whose reads Dapr makes without a token",
        "consistency",
        edit(
            "infra/modules/cosmos.bicep",
            "defaultConsistencyLevel: 'Strong'",
            "defaultConsistencyLevel: 'Session'",
        ),
        r"Cosmos default consistency",
    ),
    Case(
        "consistency-outcome-ttl",
        "OUTCOME_TTL_SECONDS equal to the message TTL (14 days)",
        "consistency",
        edit("infra/modules/app-inventory-service.bicep", "value: '2592000'", "value: '1209600'"),
        r"OUTCOME_TTL_SECONDS 1209600 is not above",
    ),
    Case(
        "consistency-shutdown-delay-too-long",
        "inventory-service keeps serving 25 s after SIGTERM, past the 30 s grace with its drain",
        "consistency",
        edit(
            "infra/modules/app-inventory-service.bicep",
            "name: 'SHUTDOWN_DELAY_SECONDS'\n              value: '10'",
            "name: 'SHUTDOWN_DELAY_SECONDS'\n              value: '25'",
        ),
        r"SHUTDOWN_DELAY_SECONDS 25 plus the 10 s drain .* exceed the 30 s",
    ),
    Case(
        "consistency-shutdown-delay-too-short",
        "inventory-service stops serving before its sidecar stops delivering",
        "consistency",
        edit(
            "infra/modules/app-inventory-service.bicep",
            "name: 'SHUTDOWN_DELAY_SECONDS'\n              value: '10'",
            "name: 'SHUTDOWN_DELAY_SECONDS'\n              value: '3'",
        ),
        r"SHUTDOWN_DELAY_SECONDS 3 does not outlast the sidecar",
    ),
    Case(
        "consistency-order-processor-http-rule",
        "order-processor's CPU scale rule replaced by another kind",
        "consistency",
        edit(
            "infra/modules/app-order-processor.bicep",
            "name: 'cpu-utilization'\n            custom: {\n              type: 'cpu'",
            "name: 'cpu-utilization'\n            custom: {\n              type: 'memory'",
        ),
        r"order-processor.*no CPU scale rule",
    ),
    Case(
        "consistency-azure-yaml-api-version",
        "azure.yaml service without apiVersion",
        "consistency",
        yaml_edit("azure.yaml", lambda d: d["services"]["order-service"].pop("apiVersion")),
        r"order-service apiVersion",
    ),
    Case(
        "consistency-port-image",
        "order-service image exposes another port",
        "consistency",
        edit("order-service/Dockerfile", "EXPOSE 5002", "EXPOSE 5003"),
        r"EXPOSE",
    ),
    Case(
        "consistency-component-env",
        "inventory-service told to use a pub/sub component that does not exist",
        "consistency",
        edit(
            "infra/modules/app-inventory-service.bicep",
            "value: 'pubsub-inventory'",
            "value: 'pubsub-inv'",
        ),
        r"'pubsub-inv'",
    ),
    Case(
        "consistency-component-name",
        "state store component renamed in infra",
        "consistency",
        edit("infra/modules/dapr-components.bicep", "name: 'statestore'", "name: 'state-store'"),
        r"'statestore'",
    ),
    Case(
        "consistency-component-scope",
        "publisher component scoped to the wrong app",
        "consistency",
        edit("infra/main.bicep", "publisherAppId: 'order-service'", "publisherAppId: 'checkout'"),
        r"azureClientId is order-service's identity",
    ),
    Case(
        "consistency-topic",
        "topic renamed in main.bicep only",
        "consistency",
        edit("infra/main.bicep", "var topicName = 'OrderPlaced'", "var topicName = 'OrderCreated'"),
        r"topic",
    ),
    Case(
        "consistency-topic-code",
        "topic renamed in the shared OrderPlaced contract only",
        "consistency",
        edit(
            "service-kit/src/events.rs",
            'pub const TOPIC: &str = "OrderPlaced";',
            'pub const TOPIC: &str = "OrderCreated";',
        ),
        r"topic",
    ),
    Case(
        "consistency-dead-letter-topic",
        "KEDA rule watches another dead-letter topic",
        "consistency",
        edit(
            "infra/modules/app-inventory-service.bicep",
            "topicName: 'OrderPlaced-deadletter'",
            "topicName: 'OrderPlaced-dlq'",
        ),
        r"KEDA topics",
    ),
    Case(
        "consistency-image-crate",
        "checkout image builds another crate",
        "consistency",
        edit(
            "checkout/Dockerfile",
            "cargo build --release --locked -p checkout",
            "cargo build --release --locked -p order-processor",
        ),
        r"checkout built package",
    ),
    Case(
        "consistency-azd-exists-var",
        "wrong azd variable for keeping order-service's image",
        "consistency",
        edit(
            "infra/main.parameters.json",
            "SERVICE_ORDER_SERVICE_RESOURCE_EXISTS",
            "SERVICE_ORDERSERVICE_RESOURCE_EXISTS",
        ),
        r"order-service image-keeping",
    ),
    Case(
        "consistency-secret-output",
        "an output that carries a key",
        "consistency",
        append("infra/main.bicep", "\noutput COSMOS_KEY string = cosmos.outputs.endpoint\n"),
        r"COSMOS_KEY looks like a secret",
    ),
    Case(
        "consistency-unjustified-skip",
        "checkov skip without a reason",
        "consistency",
        lambda repo: (repo / "infra/modules/cosmos.bicep").write_text(
            re.sub(
                r"checkov:skip=CKV_AZURE_99:[^\n]*",
                "checkov:skip=CKV_AZURE_99: todo",
                (repo / "infra/modules/cosmos.bicep").read_text(),
            )
        ),
        r"CKV_AZURE_99 without a real justification",
    ),
    Case(
        "local-app-id",
        "dapr.yaml app id renamed",
        "consistency",
        yaml_edit("dapr.yaml", set_app("inventory-service", "appID", "inventory")),
        r"dapr\.yaml appIDs",
        local=True,
    ),
    Case(
        "local-port",
        "dapr.yaml appPort of order-processor changed",
        "consistency",
        yaml_edit("dapr.yaml", bump_app_port("order-processor")),
        r"order-processor port",
        local=True,
    ),
    Case(
        "local-port-plan-docs",
        "README port plan changed without dapr.yaml",
        "consistency",
        edit("README.md", "| `order-service` | 5002 | 3502 |", "| `order-service` | 5012 | 3502 |"),
        r"order-service port.*README port plan",
    ),
    Case(
        "local-component-name",
        "local pub/sub component renamed",
        "consistency",
        rename_local_component,
        r"order-service uses Dapr component",
        local=True,
    ),
    Case(
        "cargo-build-wrong-package",
        "Dockerfile builds a crate that does not exist",
        "cargo-build",
        edit("checkout/Dockerfile", "-p checkout", "-p no-such-crate"),
        r"no-such-crate.*(did not match|not found)",
        services=["checkout"],
    ),
    Case(
        "cargo-build-context-missing-member",
        ".dockerignore drops a workspace member from the image build context",
        "cargo-build",
        append(".dockerignore", "\nservice-kit/\n"),
        r"service-kit",
        services=["checkout"],
    ),
]


def script_without_data(src: Path, tmp: Path) -> tuple[bool, str]:
    """scripts/check-infra.sh in a copy with no ../shared, an empty INFRA_CHECK_DIR, an empty
    cache, no Bicep CLI and the download disabled must stop with exit 2 and say what it tried."""
    work = tmp / "nodata" / "repo"
    work.mkdir(parents=True)
    shutil.copytree(src / "scripts", work / "scripts")
    shutil.copytree(src / "infra", work / "infra", ignore=IGNORE)
    (tmp / "nodata" / "empty").mkdir()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp / "nodata" / "home"),
        "DAPR_RUST_CACHE": str(tmp / "nodata" / "cache"),
        "INFRA_CHECK_DIR": str(tmp / "nodata" / "empty"),
        "INFRA_CHECK_NO_FETCH": "1",
        "BICEP_CLI": "none",
    }
    p = subprocess.run(
        ["bash", str(work / "scripts" / "check-infra.sh")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    out = p.stdout + p.stderr
    ok = (
        p.returncode == 2
        and "no Bicep type data" in out
        and "INFRA_CHECK_NO_FETCH" in out
        and "INFRA_CHECK_DIR=" in out
    )
    return ok, f"exit {p.returncode}\n{out.strip()}"


def fresh_copy(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=IGNORE, symlinks=True)


def run_step(name: str, repo: Path, infra_check: Path, services=None) -> tuple[bool, str]:
    return steps.STEPS[name](repo=repo, infra_check=infra_check, services=services)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", default=str(HERE.parents[1]))
    ap.add_argument(
        "--infra-check",
        default=os.environ.get("INFRA_CHECK_DIR", str(HERE.parents[2] / "shared" / "infra-check")),
    )
    ap.add_argument("-k", dest="only", help="run only cases whose id contains this")
    a = ap.parse_args()
    src, infra_check = Path(a.repo).resolve(), Path(a.infra_check).resolve()
    cases = [c for c in CASES if not a.only or a.only in c.id]
    if any(c.step == "cargo-build" for c in cases):
        # cargo must fail on the spec, not on a download: every locked crate is fetched first
        # (the steps before this one need not have fetched them all on a fresh machine; an
        # unknown -p makes cargo load the whole lock), and then the cases build offline.
        subprocess.run(["cargo", "fetch", "--locked"], cwd=src, check=True)
    os.environ["CARGO_NET_OFFLINE"] = "true"

    failures = 0
    with tempfile.TemporaryDirectory(prefix="infra-negative-") as tmp:
        work = Path(tmp) / "repo"
        # Keep the cargo cases' build context away from the real one (step 6).
        os.environ["CARGO_TARGET_DIR"] = str(Path(tmp) / "target")
        baselines: dict[tuple[str, bool], tuple[bool, str]] = {}

        def baseline(step: str, local: bool) -> tuple[bool, str]:
            key = (step, local)
            if key not in baselines:
                fresh_copy(src, work)
                if local:
                    ensure_local(work)
                baselines[key] = run_step(
                    step, work, infra_check, None if step != "cargo-build" else ["checkout"]
                )
            return baselines[key]

        for c in cases:
            note = ""
            try:
                if c.step == "cargo-build":
                    # The real build runs in step 6; here only the failure matters.
                    base_ok, base_out = True, ""
                else:
                    base_ok, base_out = baseline(c.step, c.local)
                fresh_copy(src, work)
                if c.local:
                    note = f" [{ensure_local(work)}]"
                c.mutate(work)
                ok, out = run_step(c.step, work, infra_check, c.services)
            except Anchor as e:
                failures += 1
                print(f"FAIL {c.id}: cannot apply the breakage: {e}")
                continue
            if c.step == "consistency":
                before = set(base_out.splitlines()) if not base_ok else set()
                new = [ln for ln in out.splitlines() if ln.startswith("[") and ln not in before]
                hits = [ln for ln in new if re.search(c.expect, ln)]
                if not ok and hits:
                    print(f"ok   {c.id}: {c.what}{note}\n       -> {hits[0]}")
                else:
                    failures += 1
                    print(f"FAIL {c.id}: {c.what}{note}: no new problem matching /{c.expect}/")
                    print(textwrap.indent("\n".join(new) or "(no new problems)", "       "))
                continue
            if not base_ok:
                failures += 1
                print(
                    f"FAIL {c.id}: step {c.step} already fails on the untouched files, so this breakage proves nothing:"
                )
                print(textwrap.indent(base_out[-2000:], "       "))
                continue
            hits = [ln for ln in out.splitlines() if re.search(c.expect, ln)]
            if not ok and hits:
                print(f"ok   {c.id}: {c.what}{note}\n       -> {hits[0].strip()[:220]}")
            else:
                failures += 1
                print(
                    f"FAIL {c.id}: {c.what}{note}: step {c.step} {'passed' if ok else 'failed without /' + c.expect + '/'}"
                )
                print(textwrap.indent(out[-2000:], "       "))
        if not a.only or a.only in "script-no-data":
            cases = [*cases, None]
            ok, out = script_without_data(src, Path(tmp))
            if ok:
                print(
                    "ok   script-no-data: check-infra.sh without any type data stops with exit 2 and says what it tried"
                )
            else:
                failures += 1
                print("FAIL script-no-data: expected exit 2 naming what was tried")
                print(textwrap.indent(out[-2000:], "       "))
    print(f"negative tests: {len(cases) - failures}/{len(cases)} proved")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
