#!/usr/bin/env python3
"""Consistency check: the names and ports the four services agree on must be the same in the
Rust code, the local Dapr files, azure.yaml, the Dockerfiles and infra/.

Usage: python test_consistency.py [--repo DIR]
Exit 0 when everything agrees, 1 with one line per disagreement otherwise. Missing inputs
(a crate, dapr.yaml, components/) are failures, never skips.

Sources and what is compared:
  code      <crate>/src/config.rs consts (then service-kit/src/events.rs, the shared OrderPlaced
            contract): DEFAULT_PORT, PUBSUB_NAME / DEFAULT_PUBSUB_NAME, TOPIC,
            DEAD_LETTER_TOPIC, STATE_STORE_NAME / DEFAULT_STATE_STORE_NAME,
            DEFAULT_TARGET_APP_ID; env var names as string literals in the crate or service-kit
  local     dapr.yaml (apps[].appID/appPort/daprHTTPPort/command/env), components/*.yaml
  azd       azure.yaml, infra/main.parameters.json, infra/main.bicep params and outputs
  images    <service>/Dockerfile, .dockerignore
  infra     infra/modules/*.bicep: container apps, Dapr components, Service Bus, Cosmos DB,
            the environment's OpenTelemetry agent (traces of apps and sidecars to App Insights)
"""

from __future__ import annotations

import argparse
import re
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import infra_model as m
from infra_model import Expr, get

# The contract (see docs/deploy-azure.md): what only the deployment decides.
SERVICES = ["checkout", "order-processor", "order-service", "inventory-service"]
CONTRACT = {
    "checkout": {"ingress": None, "dapr_app_port": False, "replicas": (1, 1)},
    "order-processor": {
        "ingress": "internal",
        "dapr_app_port": True,
        "scale": "cpu",
        "token_required": True,
    },
    "order-service": {"ingress": "external", "dapr_app_port": True, "scale": "http"},
    "inventory-service": {
        "ingress": "external",
        "dapr_app_port": True,
        "scale": "azure-servicebus",
        "token_required": True,
        # Its sidecar delivers events to it, so it must outlast the sidecar after SIGTERM.
        "subscriber": True,
    },
}
# Env the inventory-service app needs on Azure (seeded stock, outcome records' lifetime).
INVENTORY_ENV = {"INITIAL_STOCK", "OUTCOME_TTL_SECONDS"}
# Dapr components that must carry a resiliency policy, and the direction that must retry.
COMPONENT_RESILIENCY = {
    "pubsub": "outboundPolicy",
    "pubsub-inventory": "inboundPolicy",
    "statestore": "outboundPolicy",
}
APP_RESILIENCY = {"order-processor"}
REQUIRED_ENV = {"APP_PORT", "LOG_FORMAT", "RUST_LOG"}
REQUIRED_OUTPUTS = {
    "AZURE_CONTAINER_REGISTRY_ENDPOINT",
    "AZURE_RESOURCE_GROUP",
    "SERVICE_ORDER_SERVICE_URI",
    "SERVICE_INVENTORY_SERVICE_URI",
}
SECRETISH = re.compile(
    r"(key|secret|password|connectionstring|token|credential|sas)", re.IGNORECASE
)
SECRET_EXPR = re.compile(
    r"(\blist\w*\(|connectionstring|instrumentationkey|primarykey|secondarykey)", re.IGNORECASE
)
MAX_APP_NAME = 32

# Accepted spellings of each code default, first match wins. A const whose value equals its
# own name is an env-var-name const (e.g. PUBSUB_NAME = "PUBSUB_NAME"), not a default.
CODE_NAMES = {
    "port": ["DEFAULT_PORT", "DEFAULT_APP_PORT"],
    "pubsub": ["DEFAULT_PUBSUB_NAME", "PUBSUB_NAME"],
    "topic": ["TOPIC", "DEFAULT_TOPIC", "TOPIC_NAME", "ORDER_PLACED_TOPIC"],
    "dead_letter": ["DEAD_LETTER_TOPIC", "DEFAULT_DEAD_LETTER_TOPIC", "DEADLETTER_TOPIC"],
    "state": ["DEFAULT_STATE_STORE_NAME", "STATE_STORE_NAME"],
    "target": ["DEFAULT_TARGET_APP_ID", "TARGET_APP_ID"],
}
CODE_NEEDS = {
    "checkout": ["target"],
    "order-processor": ["port"],
    "order-service": ["port", "pubsub", "topic"],
    "inventory-service": ["port", "pubsub", "topic", "dead_letter", "state"],
}
ENV_OVERRIDES = {"pubsub": "PUBSUB_NAME", "state": "STATE_STORE_NAME", "port": "APP_PORT"}


class Report:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def err(self, area: str, msg: str) -> None:
        self.errors.append(f"[{area}] {msg}")

    def eq(self, area: str, what: str, a_name: str, a, b_name: str, b) -> bool:
        if a != b:
            self.err(area, f"{what}: {a_name} = {a!r} but {b_name} = {b!r}")
            return False
        return True


def camel(service: str) -> str:
    head, *rest = service.split("-")
    return head + "".join(p.capitalize() for p in rest)


class Repo:
    """Everything read once, with read errors recorded instead of raised."""

    def __init__(self, root: Path, r: Report) -> None:
        self.root = root
        self.r = r
        self.azure = self._load("azd", root / "azure.yaml", m.load_yaml)
        self.main = self._load("infra", root / "infra" / "main.bicep", m.read_bicep)
        self.params_json = self._load("azd", root / "infra" / "main.parameters.json", m.load_json)
        self.abbrs = self._load("infra", root / "infra" / "abbreviations.json", m.load_json)
        self.modules: dict[str, m.BicepFile] = {}
        for p in sorted((root / "infra" / "modules").glob("*.bicep")):
            bf = self._load("infra", p, m.read_bicep)
            if bf:
                self.modules[p.name] = bf
        self.workspace = self._load("code", root / "Cargo.toml", m.cargo_toml)

    def _load(self, area, path: Path, fn):
        if not path.exists():
            self.r.err(area, f"{path.relative_to(self.root)} not found")
            return None
        try:
            return fn(path)
        except Exception as e:  # noqa: BLE001 - a parse error is a finding
            self.r.err(area, f"{path.relative_to(self.root)}: cannot read: {e}")
            return None

    # -- infra helpers ------------------------------------------------------------------------

    def module_call(self, module_file: str) -> list[m.BicepDecl]:
        if not self.main:
            return []
        return [d for d in self.main.modules() if d.ref == f"modules/{module_file}"]

    def resolve_main(self, value):
        """Resolve a main.bicep expression that names a var (one level) to its literal."""
        if isinstance(value, Expr) and self.main and str(value) in self.main.vars:
            return self.main.vars[str(value)]
        return value

    def resolve_param(self, module_file: str, value, call: m.BicepDecl | None = None):
        """A module expression naming one of its params -> the literal main.bicep passes."""
        bf = self.modules.get(module_file)
        if not (isinstance(value, Expr) and bf and str(value) in bf.params):
            return value
        calls = [call] if call else self.module_call(module_file)
        if len(calls) != 1:
            return value
        passed = get(calls[0].body, "params", str(value))
        if passed is None:
            default = bf.params[str(value)][1]
            return default if default is not None else value
        return self.resolve_main(passed)

    def apps(self) -> dict[str, tuple[str, m.BicepDecl]]:
        out = {}
        for fname, bf in self.modules.items():
            for d in bf.resources("Microsoft.App/containerApps"):
                if d.existing:
                    continue
                name = d.body.get("name")
                if isinstance(name, str):
                    out[name] = (fname, d)
                else:
                    self.r.err("infra", f"{fname}: container app name is not a literal ({name})")
        return out

    def components(self) -> dict[str, tuple[str, m.BicepDecl]]:
        out = {}
        for fname, bf in self.modules.items():
            for d in bf.resources("Microsoft.App/managedEnvironments/daprComponents"):
                name = d.body.get("name")
                if not isinstance(name, str):
                    self.r.err("infra", f"{fname}: Dapr component name is not a literal ({name})")
                    continue
                if name in out:
                    self.r.err(
                        "infra",
                        f"Dapr component {name!r} declared twice (names are unique per environment)",
                    )
                out[name] = (fname, d)
        return out

    def identity_symbol_of_app(self, service: str) -> str | None:
        for call in self.main.modules() if self.main else []:
            if call.ref.startswith("modules/app-") and self.app_name_of_call(call) == service:
                ident = get(call.body, "params", "identityId")
                mm = re.fullmatch(r"(\w+)\.outputs\.id", str(ident or ""))
                return mm[1] if mm else None
        return None

    def app_name_of_call(self, call: m.BicepDecl) -> str | None:
        bf = self.modules.get(call.ref.removeprefix("modules/"))
        if not bf:
            return None
        for d in bf.resources("Microsoft.App/containerApps"):
            if not d.existing and isinstance(d.body.get("name"), str):
                return d.body["name"]
        return None

    def identity_service(self, symbol: str) -> str | None:
        """identity module symbol -> the service named in its deployment name identity-<svc>."""
        for call in self.main.modules() if self.main else []:
            if call.symbol == symbol and call.ref == "modules/identity.bicep":
                name = call.body.get("name")
                if isinstance(name, str) and name.startswith("identity-"):
                    return name.removeprefix("identity-")
        return None

    def identity_of_expr(self, expr, output: str) -> str | None:
        mm = re.fullmatch(rf"(\w+)\.outputs\.{output}", str(expr or ""))
        return self.identity_service(mm[1]) if mm else None


# ----------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------


def check_azure_yaml(repo: Repo, r: Report) -> None:
    doc = repo.azure
    if not isinstance(doc, dict):
        return
    services = doc.get("services") or {}
    if sorted(services) != sorted(SERVICES):
        r.err(
            "azd", f"azure.yaml services {sorted(services)} != the four services {sorted(SERVICES)}"
        )
    infra = doc.get("infra") or {}
    ipath = repo.root / infra.get("path", "infra") / f"{infra.get('module', 'main')}.bicep"
    if not ipath.is_file():
        r.err(
            "azd",
            f"azure.yaml infra points to {ipath.relative_to(repo.root)}, which does not exist",
        )
    for name, svc in services.items():
        svc = svc or {}
        r.eq(
            "azd", f"service {name} host", "azure.yaml", svc.get("host"), "expected", "containerapp"
        )
        r.eq(
            "azd",
            f"service {name} language",
            "azure.yaml",
            svc.get("language"),
            "expected (Rust has no azd language)",
            "docker",
        )
        project = repo.root / (svc.get("project") or ".")
        docker = svc.get("docker") or {}
        dpath = (project / docker.get("path", "./Dockerfile")).resolve()
        ctx = (project / docker.get("context", ".")).resolve()
        if project.resolve() != (repo.root / name).resolve():
            r.err(
                "azd",
                f"service {name}: project {svc.get('project')!r} is not the crate directory ./{name}",
            )
        if dpath != (repo.root / name / "Dockerfile").resolve():
            r.err(
                "azd",
                f"service {name}: docker.path resolves to {dpath}, expected {name}/Dockerfile",
            )
        elif not dpath.is_file():
            r.err("images", f"{name}/Dockerfile not found (azure.yaml docker.path)")
        if ctx != repo.root.resolve():
            r.err(
                "azd",
                f"service {name}: docker.context resolves to {ctx}, not the repository root (the workspace needs every member)",
            )
        if docker.get("remoteBuild") is not True:
            r.err("azd", f"service {name}: docker.remoteBuild is not true")
        want = sorted({d.api_version for _, d in repo.apps().values()}) if repo.modules else []
        if len(want) == 1:
            r.eq(
                "azd",
                f"service {name} apiVersion",
                "azure.yaml",
                svc.get("apiVersion"),
                "Microsoft.App/containerApps API version in infra",
                want[0],
            )
        else:
            r.err("azd", f"container apps use API versions {want}: azure.yaml apiVersion needs one")
        if (repo.root / "infra" / f"{name}.bicep").exists() and (
            (repo.root / "infra" / f"{name}.parameters.json").exists()
            or (repo.root / "infra" / f"{name}.bicepparam").exists()
        ):
            r.err(
                "azd",
                f"infra/{name}.bicep + parameters would switch azd deploy to a Bicep-controlled revision",
            )


def read_code(repo: Repo, r: Report) -> dict[str, dict]:
    """Per service: the resolved code defaults it needs (missing ones are reported)."""
    out: dict[str, dict] = {}
    members = set(get(repo.workspace or {}, "workspace", "members", default=[]) or [])
    for svc in SERVICES:
        crate = repo.root / svc
        cargo = m.cargo_toml(crate / "Cargo.toml")
        if cargo is None:
            r.err(
                "code",
                f"crate {svc!r} is missing: {svc}/Cargo.toml not found (azure.yaml and infra deploy it)",
            )
            continue
        if get(cargo, "package", "name") != svc:
            r.err(
                "code",
                f"{svc}/Cargo.toml package.name = {get(cargo, 'package', 'name')!r}, expected {svc!r} (binary name = crate name = app id)",
            )
        if svc not in members:
            r.err(
                "code",
                f"crate {svc!r} is not a member of the workspace (Cargo.toml [workspace].members)",
            )
        # A crate with settings of its own keeps its defaults in src/config.rs; one without (its
        # shared settings all live in service-kit) keeps them in src/lib.rs.
        cfg = crate / "src" / "config.rs"
        if not cfg.is_file():
            cfg = crate / "src" / "lib.rs"
        if not cfg.is_file():
            r.err("code", f"{svc}/src/config.rs not found (the code defaults are read from it)")
            continue
        # The OrderPlaced contract (topic name) is shared by both pub/sub services and lives in
        # service-kit; a crate's own config.rs wins where both define a name.
        shared = repo.root / "service-kit" / "src" / "events.rs"
        consts = {**(m.rust_consts(shared) if shared.is_file() else {}), **m.rust_consts(cfg)}
        vals: dict = {}
        for need in CODE_NEEDS[svc]:
            found = None
            for cname in CODE_NAMES[need]:
                v = consts.get(cname)
                if v is not None and v != cname:
                    found = (cname, v)
                    break
            if found is None:
                r.err(
                    "code",
                    f"{svc}/src/{cfg.name}: no const for the {need} default (expected one of {CODE_NAMES[need]})",
                )
            else:
                vals[need] = found[1]
        srcs = sorted((crate / "src").rglob("*.rs")) + sorted(
            (repo.root / "service-kit" / "src").rglob("*.rs")
        )
        vals["_literals"] = m.rust_string_literals(srcs)
        out[svc] = vals
    if "order-service" in out and "inventory-service" in out:
        a, b = out["order-service"].get("topic"), out["inventory-service"].get("topic")
        if a is not None and b is not None:
            r.eq("code", "topic", "order-service TOPIC", a, "inventory-service TOPIC", b)
    if "checkout" in out and "target" in out["checkout"]:
        t = out["checkout"]["target"]
        if t not in SERVICES or not CONTRACT.get(t, {}).get("dapr_app_port"):
            r.err(
                "code",
                f"checkout DEFAULT_TARGET_APP_ID = {t!r} is not a service Dapr can invoke (one with an app port)",
            )
        elif t != "order-processor":
            r.err(
                "code",
                f"checkout DEFAULT_TARGET_APP_ID = {t!r}, the tutorial's callee is 'order-processor'",
            )
    return out


def check_apps(repo: Repo, r: Report, code: dict) -> dict[str, dict]:
    """Container apps vs contract and code. Returns per-service effective ACA settings."""
    apps = repo.apps()
    eff: dict[str, dict] = {}
    if sorted(apps) != sorted(SERVICES):
        r.err(
            "infra",
            f"container apps in infra/modules {sorted(apps)} != services {sorted(SERVICES)}",
        )
    for svc in SERVICES:
        if svc not in apps:
            continue
        fname, d = apps[svc]
        body, where = d.body, f"{fname} ({svc})"
        c = CONTRACT[svc]
        if len(svc) > MAX_APP_NAME - 1 or not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", svc):
            r.err(
                "infra",
                f"{where}: container app name must be < 32 chars, lower-case, hyphen-separated",
            )
        if f"'azd-service-name': '{svc}'" not in str(body.get("tags", "")):
            r.err(
                "infra",
                f"{where}: tags do not set azd-service-name = {svc!r} (azd finds the app by it)",
            )
        props = body.get("properties") or {}
        dapr = get(props, "configuration", "dapr") or {}
        if dapr.get("enabled") is not True:
            r.err("infra", f"{where}: Dapr is not enabled")
        r.eq(
            "infra",
            f"{svc} Dapr app id",
            f"{fname} dapr.appId",
            dapr.get("appId"),
            "azure.yaml service / container app name",
            svc,
        )
        r.eq(
            "infra", f"{svc} Dapr app protocol", fname, dapr.get("appProtocol"), "contract", "http"
        )
        containers = get(props, "template", "containers") or []
        if len(containers) != 1:
            r.err("infra", f"{where}: expected exactly one container, found {len(containers)}")
            continue
        ctr = containers[0]
        env = m.env_list(ctr)
        missing = REQUIRED_ENV - set(env)
        if missing:
            r.err("infra", f"{where}: container env lacks {sorted(missing)}")
        r.eq("infra", f"{svc} LOG_FORMAT", fname, env.get("LOG_FORMAT"), "contract", "json")
        r.eq("infra", f"{svc} RUST_LOG", fname, env.get("RUST_LOG"), "contract", "info")
        port = env.get("APP_PORT")
        try:
            port = int(port)
        except (TypeError, ValueError):
            r.err("infra", f"{where}: APP_PORT {port!r} is not a literal port number")
            port = None
        eff[svc] = {
            "port": port,
            "env": env,
            "file": fname,
            "termination_grace": get(props, "template", "terminationGracePeriodSeconds"),
        }
        lits = code.get(svc, {}).get("_literals")
        if lits is not None:
            for var in env:
                if var not in lits:
                    r.err(
                        "code",
                        f'{fname} sets env {var} for {svc}, but neither {svc}/src nor service-kit/src mentions "{var}"',
                    )
        # Azure follows the local port plan (README "Port plan" = dapr.yaml appPort). The code
        # default is the single-tutorial port and is never used where APP_PORT is set.
        plan = readme_port_plan(repo)
        if svc in plan:
            r.eq(
                "infra",
                f"{svc} port",
                f"{fname} APP_PORT",
                port,
                "README port plan",
                plan[svc][0] if plan[svc][0] is not None else port,
            )
        else:
            r.err("infra", f"README port plan has no row for {svc}")
        if c.get("token_required"):
            r.eq(
                "infra",
                f"{svc} APP_API_TOKEN_REQUIRED",
                fname,
                env.get("APP_API_TOKEN_REQUIRED"),
                "decision (sidecar-only routes need the token)",
                "true",
            )
        if svc == "inventory-service":
            missing_inv = INVENTORY_ENV - set(env)
            if missing_inv:
                r.err("infra", f"{where}: container env lacks {sorted(missing_inv)}")
        if c["dapr_app_port"]:
            r.eq(
                "infra",
                f"{svc} port",
                f"{fname} dapr.appPort",
                dapr.get("appPort"),
                f"{fname} APP_PORT",
                port,
            )
            if get(dapr, "appHealth", "path") not in (None, "/healthz"):
                r.err("infra", f"{where}: Dapr appHealth path is not /healthz")
        elif "appPort" in dapr:
            r.err(
                "infra",
                f"{where}: Dapr has an appPort ({dapr['appPort']}) but {svc} only calls out (contract: no app port)",
            )
        kinds = {}
        for p in get(ctr, "probes", default=[]) or []:
            kinds[p.get("type")] = p
            r.eq(
                "infra",
                f"{svc} {p.get('type')} probe path",
                fname,
                get(p, "httpGet", "path"),
                "contract",
                "/healthz",
            )
            r.eq(
                "infra",
                f"{svc} {p.get('type')} probe port",
                fname,
                get(p, "httpGet", "port"),
                "APP_PORT",
                port,
            )
        for needed in ("Liveness", "Readiness"):
            if needed not in kinds:
                r.err("infra", f"{where}: no {needed} probe")
        if not get(ctr, "resources", "cpu") or not get(ctr, "resources", "memory"):
            r.err("infra", f"{where}: container cpu/memory not set")
        ingress = get(props, "configuration", "ingress")
        if c["ingress"] is None:
            if ingress is not None:
                r.err("infra", f"{where}: has ingress, the contract says none")
        elif not isinstance(ingress, dict):
            r.err("infra", f"{where}: no ingress, the contract says {c['ingress']}")
        else:
            r.eq(
                "infra",
                f"{svc} ingress external",
                fname,
                ingress.get("external"),
                "contract",
                c["ingress"] == "external",
            )
            r.eq(
                "infra",
                f"{svc} ingress allowInsecure",
                fname,
                ingress.get("allowInsecure"),
                "contract (HTTPS only)",
                False,
            )
            r.eq(
                "infra",
                f"{svc} ingress targetPort",
                fname,
                ingress.get("targetPort"),
                "APP_PORT",
                port,
            )
        scale = get(props, "template", "scale") or {}
        rules = scale.get("rules") or []
        if "replicas" in c:
            r.eq(
                "infra",
                f"{svc} replicas (min, max)",
                fname,
                (scale.get("minReplicas"), scale.get("maxReplicas")),
                "contract",
                c["replicas"],
            )
        if c.get("scale") == "http" and not any("http" in rule for rule in rules):
            r.err("infra", f"{where}: no HTTP scale rule")
        if c.get("scale") == "cpu":
            if not any(get(rule, "custom", "type") == "cpu" for rule in rules):
                r.err(
                    "infra",
                    f"{where}: no CPU scale rule (Dapr invocation never reaches an HTTP rule)",
                )
            if any("http" in rule for rule in rules):
                r.err(
                    "infra",
                    f"{where}: HTTP scale rule on an app reached only through Dapr invocation (it can never fire)",
                )
            if (scale.get("minReplicas") or 0) < 1:
                r.err(
                    "infra",
                    f"{where}: minReplicas < 1 (Dapr invocation does not wake an app at zero)",
                )
        if c.get("scale") == "azure-servicebus":
            sb_rules = [
                rule["custom"]
                for rule in rules
                if get(rule, "custom", "type") == "azure-servicebus"
            ]
            if not sb_rules:
                r.err("infra", f"{where}: no KEDA azure-servicebus scale rule")
            for rule in sb_rules:
                if not rule.get("identity"):
                    r.err(
                        "infra", f"{where}: azure-servicebus scale rule without a managed identity"
                    )
                if get(rule, "auth"):
                    r.err("infra", f"{where}: azure-servicebus scale rule uses secret auth")
            eff[svc]["keda_topics"] = sorted(
                str(get(rule, "metadata", "topicName")) for rule in sb_rules
            )
            eff[svc]["keda_subscriptions"] = sorted(
                {str(get(rule, "metadata", "subscriptionName")) for rule in sb_rules}
            )
            if (scale.get("minReplicas") or 0) < 1:
                r.err(
                    "infra",
                    f"{where}: minReplicas < 1 (the Dapr subscriber must keep a sidecar running)",
                )
    return eff


def check_components(repo: Repo, r: Report, code: dict, eff: dict) -> None:
    comps = repo.components()
    if not comps:
        r.err("infra", "no Dapr components in infra/modules")
        return
    resolved = {}
    for name, (fname, d) in comps.items():
        props = d.body.get("properties") or {}
        scopes = [repo.resolve_param(fname, s) for s in props.get("scopes") or []]
        md = {k: repo.resolve_param(fname, v) for k, v in m.metadata_list(props).items()}
        ctype = props.get("componentType")
        resolved[name] = {"type": ctype, "scopes": scopes, "md": md, "props": props, "file": fname}
        if not scopes:
            r.err("infra", f"Dapr component {name!r} has no scopes (every app would load it)")
        for s in scopes:
            if s not in SERVICES:
                r.err("infra", f"Dapr component {name!r} scope {s!r} is not an app id")
        if "masterKey" in md or "connectionString" in md:
            r.err(
                "infra",
                f"Dapr component {name!r} uses a key/connection string instead of managed identity",
            )
        client = m.metadata_list(props).get("azureClientId")
        call_params = (
            get(repo.module_call(fname)[0].body, "params")
            if len(repo.module_call(fname)) == 1
            else None
        )
        owner = (
            repo.identity_of_expr(get(call_params or {}, str(client)), "clientId")
            if isinstance(client, Expr)
            else None
        )
        if owner is None:
            r.err(
                "infra",
                f"Dapr component {name!r}: azureClientId is not a service identity's clientId",
            )
        elif scopes != [owner]:
            r.err(
                "infra",
                f"Dapr component {name!r}: azureClientId is {owner}'s identity but scopes are {scopes} (one identity per component)",
            )
        elif repo.identity_symbol_of_app(owner) is None:
            r.err(
                "infra", f"container app {owner} does not take its identity from an identity module"
            )
        if str(ctype).startswith("pubsub."):
            r.eq(
                "infra",
                f"component {name} type",
                fname,
                ctype,
                "decision",
                "pubsub.azure.servicebus.topics",
            )
            r.eq(
                "infra",
                f"component {name} disableEntityManagement",
                fname,
                md.get("disableEntityManagement"),
                "decision",
                "true",
            )
            if not str(md.get("namespaceName", "")) or "namespaceName" not in md:
                r.err("infra", f"component {name!r} has no namespaceName")
            if "consumerID" in md and scopes:
                r.eq(
                    "infra",
                    f"component {name} consumerID",
                    fname,
                    md["consumerID"],
                    "its app id",
                    scopes[0],
                )
        elif str(ctype).startswith("state."):
            r.eq(
                "infra", f"component {name} type", fname, ctype, "decision", "state.azure.cosmosdb"
            )
            if not props.get("initTimeout"):
                r.err("infra", f"component {name!r} has no initTimeout (Cosmos DB init is slow)")
    # Which component each app uses in Azure: env override, else the code default.
    for svc, kind, prefix in (
        ("order-service", "pubsub", "pubsub."),
        ("inventory-service", "pubsub", "pubsub."),
        ("inventory-service", "state", "state."),
    ):
        if svc not in eff:
            continue
        env_name = ENV_OVERRIDES[kind]
        used = eff[svc]["env"].get(env_name, code.get(svc, {}).get(kind))
        if used is None:
            continue
        comp = resolved.get(used)
        src = (
            f"{eff[svc]['file']} env {env_name}"
            if env_name in eff[svc]["env"]
            else f"{svc}/src/config.rs default"
        )
        if comp is None:
            r.err(
                "infra",
                f"{svc} uses Dapr component {used!r} ({src}) but infra declares only {sorted(resolved)}",
            )
        elif not str(comp["type"]).startswith(prefix):
            r.err("infra", f"{svc} uses {used!r} as {kind}, but it is a {comp['type']}")
        elif svc not in comp["scopes"]:
            r.err(
                "infra",
                f"Dapr component {used!r} used by {svc} is not scoped to it (scopes {comp['scopes']})",
            )
    # Service Bus entities vs code and KEDA.
    sb_calls = repo.module_call("servicebus.bicep")
    if len(sb_calls) != 1:
        r.err("infra", "main.bicep must deploy modules/servicebus.bicep exactly once")
    else:
        p = sb_calls[0].body.get("params") or {}
        topic, dlq, sub = (
            repo.resolve_main(p.get(k))
            for k in ("topicName", "deadLetterTopicName", "subscriptionName")
        )
        inv, osvc = code.get("inventory-service", {}), code.get("order-service", {})
        if "topic" in osvc:
            r.eq(
                "infra",
                "topic",
                "servicebus topicName",
                topic,
                "order-service TOPIC",
                osvc["topic"],
            )
        if "topic" in inv:
            r.eq(
                "infra",
                "topic",
                "servicebus topicName",
                topic,
                "inventory-service TOPIC",
                inv["topic"],
            )
        if "dead_letter" in inv:
            r.eq(
                "infra",
                "dead-letter topic",
                "servicebus deadLetterTopicName",
                dlq,
                "inventory-service DEAD_LETTER_TOPIC",
                inv["dead_letter"],
            )
        r.eq(
            "infra",
            "Service Bus subscription",
            "servicebus subscriptionName",
            sub,
            "subscriber app id",
            "inventory-service",
        )
        sub_comp = next(
            (
                c
                for c in resolved.values()
                if c["scopes"] == ["inventory-service"] and str(c["type"]).startswith("pubsub.")
            ),
            None,
        )
        if sub_comp is not None:
            r.eq(
                "infra",
                "Service Bus subscription",
                "servicebus subscriptionName",
                sub,
                "subscriber component consumerID",
                sub_comp["md"].get("consumerID", "inventory-service"),
            )
        if "inventory-service" in eff and "keda_topics" in eff["inventory-service"]:
            r.eq(
                "infra",
                "KEDA topics",
                "inventory-service scale rules",
                eff["inventory-service"]["keda_topics"],
                "Service Bus topics",
                sorted([str(topic), str(dlq)]),
            )
            r.eq(
                "infra",
                "KEDA subscriptions",
                "inventory-service scale rules",
                eff["inventory-service"]["keda_subscriptions"],
                "Service Bus subscription",
                [str(sub)],
            )
        for param, who in (
            ("publisherPrincipalId", "order-service"),
            ("subscriberPrincipalId", "inventory-service"),
        ):
            got = repo.identity_of_expr(p.get(param), "principalId")
            r.eq("infra", f"Service Bus {param}", "main.bicep", got, "identity of", who)
    cos_calls = repo.module_call("cosmos.bicep")
    state = next((c for c in resolved.values() if str(c["type"]).startswith("state.")), None)
    if len(cos_calls) != 1:
        r.err("infra", "main.bicep must deploy modules/cosmos.bicep exactly once")
    elif state:
        p = cos_calls[0].body.get("params") or {}
        r.eq(
            "infra",
            "Cosmos database",
            "cosmos databaseName",
            repo.resolve_main(p.get("databaseName")),
            "statestore database",
            state["md"].get("database"),
        )
        r.eq(
            "infra",
            "Cosmos container",
            "cosmos containerName",
            repo.resolve_main(p.get("containerName")),
            "statestore collection",
            state["md"].get("collection"),
        )
        r.eq(
            "infra",
            "Cosmos data contributor",
            "main.bicep",
            repo.identity_of_expr(p.get("dataContributorPrincipalId"), "principalId"),
            "state store app",
            (state["scopes"] or [None])[0],
        )
    cosmos = repo.modules.get("cosmos.bicep")
    for d in (
        cosmos.resources("Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers")
        if cosmos
        else []
    ):
        r.eq(
            "infra",
            "Cosmos partition key",
            "cosmos.bicep",
            get(d.body, "properties", "resource", "partitionKey", "paths"),
            "Dapr state.azure.cosmosdb",
            ["/partitionKey"],
        )
    for account in cosmos.resources("Microsoft.DocumentDB/databaseAccounts") if cosmos else []:
        r.eq(
            "infra",
            "Cosmos default consistency",
            "cosmos.bicep",
            get(account.body, "properties", "consistencyPolicy", "defaultConsistencyLevel"),
            "what inventory-service's reads need (Dapr sends no session token)",
            "Strong",
        )


ISO_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")


def iso_seconds(value) -> int | None:
    """ISO 8601 duration of days/hours/minutes/seconds (P14D, PT1M) in seconds; None otherwise."""
    mm = ISO_DURATION.match(str(value or ""))
    if not mm or not any(mm.groups()):
        return None
    d, h, mi, s = (int(x or 0) for x in mm.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s


def retry_worst_case_seconds(policy: dict) -> float | None:
    """Upper bound of one delivery's retry loop: every attempt times out, every backoff is at
    the top of Dapr's exponential jitter (interval x 1.5 growth, +50 %)."""
    retry = get(policy, "httpRetryPolicy") or {}
    n = retry.get("maxRetries")
    first = get(retry, "retryBackOff", "initialDelayInMilliseconds")
    cap = get(retry, "retryBackOff", "maxIntervalInMilliseconds")
    per_try = get(policy, "timeoutPolicy", "responseTimeoutInSeconds")
    if not all(isinstance(x, int) for x in (n, first, cap, per_try)):
        return None
    backoff, interval = 0.0, first / 1000
    for _ in range(n):
        backoff += min(interval, cap / 1000)
        interval *= 1.5
    return (n + 1) * per_try + backoff * 1.5


def check_resiliency(repo: Repo, r: Report, eff: dict) -> None:
    """Resiliency policies: each targets an existing component or app, the required ones exist
    with retries in the right direction, and the Service Bus component's lock and handler
    timeouts cover the inbound retry loop."""
    comps = repo.components()
    comp_policies: dict[str, dict] = {}
    for fname, bf in repo.modules.items():
        symbols = {d.symbol: d for d in bf.decls}
        for d in bf.resources(
            "Microsoft.App/managedEnvironments/daprComponents/resiliencyPolicies"
        ):
            parent = symbols.get(str(d.body.get("parent")))
            target = (
                parent.body.get("name")
                if parent and parent.type == "Microsoft.App/managedEnvironments/daprComponents"
                else None
            )
            if target not in comps:
                r.err(
                    "infra",
                    f"{fname}: resiliency policy {d.body.get('name')!r} is not attached to a Dapr component of this template (parent {d.body.get('parent')})",
                )
                continue
            comp_policies[target] = d.body.get("properties") or {}
        for d in bf.resources("Microsoft.App/containerApps/resiliencyPolicies"):
            parent = symbols.get(str(d.body.get("parent")))
            target = (
                parent.body.get("name")
                if parent and parent.type == "Microsoft.App/containerApps"
                else None
            )
            if target not in SERVICES:
                r.err(
                    "infra",
                    f"{fname}: app resiliency policy {d.body.get('name')!r} is not attached to a container app of this template",
                )
            elif target not in APP_RESILIENCY:
                r.err(
                    "infra",
                    f"{fname}: app resiliency policy on {target}, expected only on {sorted(APP_RESILIENCY)}",
                )
            else:
                eff.setdefault(target, {})["resiliency"] = d.body.get("properties") or {}
    for name, direction in COMPONENT_RESILIENCY.items():
        pol = comp_policies.get(name)
        if pol is None:
            r.err(
                "infra",
                f"Dapr component {name!r} has no resiliency policy (without {direction} retries a failure is final)",
            )
            continue
        retries = get(pol, direction, "httpRetryPolicy", "maxRetries")
        if not isinstance(retries, int) or retries < 1:
            r.err(
                "infra",
                f"Dapr component {name!r}: resiliency {direction} has no httpRetryPolicy.maxRetries >= 1",
            )
        if not isinstance(get(pol, direction, "timeoutPolicy", "responseTimeoutInSeconds"), int):
            r.err("infra", f"Dapr component {name!r}: resiliency {direction} has no timeoutPolicy")
    for app in APP_RESILIENCY:
        if "resiliency" not in eff.get(app, {}):
            r.err("infra", f"container app {app!r} has no containerApps/resiliencyPolicies")
    # Service Bus: lock renewal and handler timeout vs the inbound retry loop.
    if "pubsub-inventory" in comps:
        fname, d = comps["pubsub-inventory"]
        md = m.metadata_list(d.body.get("properties") or {})
        sb = repo.modules.get("servicebus.bicep")
        subs = sb.resources("Microsoft.ServiceBus/namespaces/topics/subscriptions") if sb else []
        lock = min(
            (iso_seconds(get(s.body, "properties", "lockDuration")) or 60 for s in subs), default=60
        )
        try:
            renew = int(md.get("lockRenewalInSec", 20))
            handler_timeout = int(md.get("handlerTimeoutInSec", 60))
            handlers = int(md["maxConcurrentHandlers"]) if "maxConcurrentHandlers" in md else None
            active = int(md["maxActiveMessages"]) if "maxActiveMessages" in md else None
        except (TypeError, ValueError) as e:
            r.err("infra", f"pubsub-inventory: Service Bus metadata is not a literal number ({e})")
            return
        if not 0 < renew < lock:
            r.err(
                "infra",
                f"pubsub-inventory lockRenewalInSec {renew} is not below the subscription lockDuration ({lock} s): locks would expire during retries",
            )
        if handlers is None or active is None:
            r.err(
                "infra",
                "pubsub-inventory must bound maxConcurrentHandlers and maxActiveMessages (the defaults are unlimited / 1000)",
            )
        elif active < handlers:
            r.err(
                "infra",
                f"pubsub-inventory maxActiveMessages {active} < maxConcurrentHandlers {handlers}",
            )
        worst = retry_worst_case_seconds(
            get(comp_policies.get("pubsub-inventory") or {}, "inboundPolicy") or {}
        )
        if worst is not None and handler_timeout <= worst:
            r.err(
                "infra",
                f"pubsub-inventory handlerTimeoutInSec {handler_timeout} <= worst-case inbound retry time {worst:.0f} s: the dead-letter publish would run on an expired context",
            )


def check_outcome_ttl(repo: Repo, r: Report, eff: dict) -> None:
    """inventory-service keeps each event's outcome longer than Service Bus keeps the event, so
    a redelivered event always finds it."""
    env = eff.get("inventory-service", {}).get("env", {})
    sb = repo.modules.get("servicebus.bicep")
    if "OUTCOME_TTL_SECONDS" not in env or not sb:
        return
    ttls = [
        iso_seconds(get(d.body, "properties", "defaultMessageTimeToLive"))
        for d in sb.resources("Microsoft.ServiceBus/namespaces/topics")
        + sb.resources("Microsoft.ServiceBus/namespaces/topics/subscriptions")
    ]
    ttls = [x for x in ttls if x is not None]
    try:
        outcome = int(env["OUTCOME_TTL_SECONDS"])
    except (TypeError, ValueError):
        r.err(
            "infra", f"OUTCOME_TTL_SECONDS {env['OUTCOME_TTL_SECONDS']!r} is not a literal number"
        )
        return
    if not ttls:
        r.err(
            "infra",
            "servicebus.bicep: no literal defaultMessageTimeToLive to compare OUTCOME_TTL_SECONDS with",
        )
    elif outcome <= max(ttls):
        r.err(
            "infra",
            f"OUTCOME_TTL_SECONDS {outcome} is not above the Service Bus message TTL ({max(ttls)} s)",
        )


# Container Apps kills an app once the template's terminationGracePeriodSeconds (30 unless set)
# have passed since SIGTERM.
DEFAULT_TERMINATION_GRACE_SECONDS = 30


def code_seconds(repo: Repo, r: Report, rel: str, name: str) -> int | None:
    """The whole seconds of `const {name}: Duration = Duration::from_secs(n)` in file `rel`."""
    value = m.rust_consts(repo.root / rel).get(name)
    if not isinstance(value, int):
        r.err("code", f"{rel}: no {name} in whole seconds")
        return None
    return value


def check_shutdown_delay(repo: Repo, r: Report, eff: dict) -> None:
    """A subscriber keeps serving after SIGTERM until its sidecar has stopped delivering
    (SHUTDOWN_DELAY_SECONDS; Container Apps stops the sidecar SIDECAR_STOP_DELAY after the app,
    as the parity run models it), and any app's delay plus its drain (service-kit's
    SHUTDOWN_GRACE) ends before Container Apps kills the replica."""
    drain = code_seconds(repo, r, "service-kit/src/http.rs", "SHUTDOWN_GRACE")
    sidecar_stop = code_seconds(repo, r, "e2e/src/aca.rs", "SIDECAR_STOP_DELAY")
    if drain is None or sidecar_stop is None:
        return
    for svc, e in eff.items():
        subscriber = CONTRACT[svc].get("subscriber", False)
        raw = e["env"].get("SHUTDOWN_DELAY_SECONDS")
        if raw is None:
            if subscriber:
                r.err(
                    "infra",
                    f"{e['file']}: {svc} has no SHUTDOWN_DELAY_SECONDS, so it refuses the events "
                    f"its sidecar delivers in the {sidecar_stop} s before it stops",
                )
            continue
        try:
            delay = int(raw)
        except (TypeError, ValueError):
            r.err("infra", f"{e['file']}: SHUTDOWN_DELAY_SECONDS {raw!r} is not a literal number")
            continue
        period = e["termination_grace"]
        if period is None:
            period = DEFAULT_TERMINATION_GRACE_SECONDS
        if not isinstance(period, int):
            r.err("infra", f"{e['file']}: terminationGracePeriodSeconds {period!r} is not a number")
            continue
        if subscriber and delay <= sidecar_stop:
            r.err(
                "infra",
                f"{e['file']}: SHUTDOWN_DELAY_SECONDS {delay} does not outlast the sidecar, "
                f"which Container Apps stops {sidecar_stop} s after the app",
            )
        if delay + drain > period:
            r.err(
                "infra",
                f"{e['file']}: SHUTDOWN_DELAY_SECONDS {delay} plus the {drain} s drain "
                f"(SHUTDOWN_GRACE) exceed the {period} s termination grace period: Container "
                "Apps would kill the replica mid-drain",
            )


# What the environment's managed OpenTelemetry agent injects into every app
# (learn.microsoft.com/azure/container-apps/opentelemetry-agents, "Environment variables"); an
# app that sets one itself overrides the agent's value and its spans miss the agent.
AGENT_ENV = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"}
ENVIRONMENT = "Microsoft.App/managedEnvironments"
INSIGHTS = "Microsoft.Insights/components"


def check_telemetry(repo: Repo, r: Report, eff: dict) -> None:
    """Traces of the apps and their Dapr sidecars reach Application Insights through the
    environment's managed OpenTelemetry agent: one order, one end-to-end transaction."""
    envs = [
        (fname, d)
        for fname, bf in repo.modules.items()
        for d in bf.resources(ENVIRONMENT)
        if not d.existing
    ]
    if len(envs) != 1:
        r.err(
            "infra", f"expected one Container Apps environment in infra/modules, found {len(envs)}"
        )
        return
    fname, d = envs[0]
    props = d.body.get("properties") or {}
    traces = get(props, "openTelemetryConfiguration", "tracesConfiguration") or {}
    if traces.get("includeDapr") is not True:
        r.err(
            "infra",
            f"{fname}: openTelemetryConfiguration.tracesConfiguration.includeDapr is not true "
            "(the Dapr sidecars' spans would not reach Application Insights)",
        )
    destinations = traces.get("destinations")
    if not isinstance(destinations, list) or "appInsights" not in destinations:
        r.err(
            "infra",
            f"{fname}: openTelemetryConfiguration.tracesConfiguration.destinations lacks "
            f"'appInsights' ({destinations!r})",
        )
    if not get(props, "appInsightsConfiguration", "connectionString"):
        r.err(
            "infra",
            f"{fname}: appInsightsConfiguration.connectionString is not set (the agent's "
            "appInsights destination has nowhere to send)",
        )
    for legacy in ("daprAIConnectionString", "daprAIInstrumentationKey"):
        if legacy in props:
            r.err(
                "infra",
                f"{fname}: {legacy} is set; while it is, Dapr's traces bypass the agent's "
                "includeDapr",
            )
    for svc, e in sorted(eff.items()):
        for name in sorted(AGENT_ENV & set(e.get("env") or {})):
            r.err(
                "infra",
                f"{svc}: sets {name}, overriding the value the OpenTelemetry agent injects",
            )
    for bf in repo.modules.values():
        for ai in bf.resources(INSIGHTS):
            if not ai.existing and get(ai.body, "properties", "DisableLocalAuth") is not False:
                r.err(
                    "infra",
                    f"{bf.path.name}: Application Insights must keep DisableLocalAuth: false "
                    "(the agent sends with the connection string)",
                )


def check_main(repo: Repo, r: Report) -> None:
    main, pj = repo.main, repo.params_json
    if not main or not isinstance(pj, dict):
        return
    given = pj.get("parameters") or {}
    for name in given:
        if name not in main.params:
            r.err(
                "azd",
                f"main.parameters.json passes {name!r}, which main.bicep does not declare (azd drops it silently)",
            )
    for name, (_, default) in main.params.items():
        if default is None and name not in given:
            r.err(
                "azd",
                f"main.bicep param {name!r} has no default and no value in main.parameters.json",
            )
    for svc in SERVICES:
        pname = f"{camel(svc)}Exists"
        expected = f"${{SERVICE_{m.azd_env_key(svc)}_RESOURCE_EXISTS=false}}"
        r.eq(
            "azd",
            f"{svc} image-keeping parameter",
            f"main.parameters.json {pname}",
            get(given, pname, "value"),
            "azd variable",
            expected,
        )
        fetch = [
            c
            for c in main.modules()
            if c.ref == "modules/fetch-container-image.bicep"
            and get(c.body, "params", "name") == svc
        ]
        if len(fetch) != 1 or (fetch[0].condition or "").strip() != pname:
            r.err(
                "azd",
                f"main.bicep: no fetch-container-image module for {svc!r} deployed if ({pname})",
            )
    missing = REQUIRED_OUTPUTS - set(main.outputs)
    if missing:
        r.err("azd", f"main.bicep lacks outputs {sorted(missing)}")
    for name, expr in main.outputs.items():
        if SECRETISH.search(name) or SECRET_EXPR.search(expr):
            r.err("infra", f"main.bicep output {name} looks like a secret ({expr})")
    for fname, bf in [("main.bicep", main), *repo.modules.items()]:
        for name, expr in bf.outputs.items():
            if SECRET_EXPR.search(expr):
                r.err("infra", f"{fname} output {name} exposes a secret ({expr})")
        if re.search(r"\blist(Keys|Credentials|Secrets|ConnectionStrings)\s*\(", bf.text):
            r.err("infra", f"{fname} calls a list*() function (keys/credentials)")
    used = set(re.findall(r"\babbrs\.(\w+)", main.text))
    for key in sorted(used - set(repo.abbrs or {})):
        r.err("infra", f"main.bicep uses abbrs.{key}, missing from abbreviations.json")


def check_template_conventions(repo: Repo, r: Report) -> None:
    """What an azd template is expected to have, which no other check would notice missing."""
    main, pj = repo.main, repo.params_json
    if not main or not isinstance(pj, dict):
        return
    # The region: only where every service exists, and azd's region prompt knows it is one.
    decl = re.search(
        r"((?:@[^\n]*\n|  [^\n]*\n|\)\n|\}\)\n|\]\)\n)*)param location string", main.text
    )
    head = decl.group(1) if decl else ""
    if "@allowed(" not in head:
        r.err("azd", "main.bicep param location has no @allowed list of regions")
    if not re.search(r"type:\s*'location'", head):
        r.err("azd", "main.bicep param location lacks @metadata({azd: {type: 'location'}})")
    # The developer running azd gets data-plane read access, as azd templates give it.
    given = pj.get("parameters") or {}
    r.eq(
        "azd",
        "developer principal parameter",
        "main.parameters.json principalId",
        get(given, "principalId", "value"),
        "azd variable",
        "${AZURE_PRINCIPAL_ID}",
    )
    if not re.search(
        r"module \w+ 'modules/developer-access\.bicep' = if \(!empty\(principalId\)\)", main.text
    ):
        r.err("azd", "main.bicep: no developer-access module deployed if (!empty(principalId))")
    # azd logs in to the registry with an ARM-audience token: say so explicitly.
    registry = repo.modules.get("registry.bicep")
    if registry is not None and not re.search(
        r"azureADAuthenticationAsArmPolicy:\s*\{\s*status:\s*'enabled'", registry.text
    ):
        r.err("infra", "registry.bicep: azureADAuthenticationAsArmPolicy is not explicitly enabled")


def check_dockerfiles(repo: Repo, r: Report, eff: dict) -> None:
    for svc in SERVICES:
        path = repo.root / svc / "Dockerfile"
        if not path.is_file():
            r.err("images", f"{svc}/Dockerfile not found")
            continue
        df = m.read_dockerfile(path)
        where = f"{svc}/Dockerfile"
        cmds = df.cargo_build_commands()
        if len(cmds) != 1:
            r.err("images", f"{where}: expected one `cargo build` command, found {len(cmds)}")
        for cmd in cmds:
            a = m.cargo_args(cmd)
            if not a["release"] or not a["locked"]:
                r.err("images", f"{where}: `{cmd}` must use --release --locked")
            r.eq("images", f"{svc} built package", where, a["packages"], "service crate", [svc])
        if f"target/release/{svc}" not in " ".join(a for _, a in df.instructions):
            r.err("images", f"{where}: does not take the binary from target/release/{svc}")
        entry = df.all("ENTRYPOINT")
        if not entry or not re.search(rf"/{re.escape(svc)}\"?\s*\]?\s*$", entry[-1]):
            r.err("images", f"{where}: ENTRYPOINT does not run the {svc} binary")
        args = {}
        for instr, arg in df.instructions:
            if instr == "FROM":
                break
            if instr == "ARG" and "=" in arg:
                k, v = arg.split("=", 1)
                args[k.strip()] = v.strip().strip('"')
        for img in df.all("FROM"):
            ref = re.sub(
                r"\$\{(\w+)\}|\$(\w+)",
                lambda mm, args=args: args.get(mm[1] or mm[2], mm[0]),
                img.split()[0],
            )
            tag = ref.split("@")[0].rsplit("/", 1)[-1]
            if "@sha256:" not in ref and (":" not in tag or tag.endswith(":latest")):
                r.err("images", f"{where}: base image {ref} is not pinned to a version tag")
        stages = df.stages()
        if len(stages) < 2:
            r.err("images", f"{where}: not a multi-stage build")
        else:
            build, final = stages[0], stages[-1]
            if ("COPY", ". .") not in build:
                r.err(
                    "images",
                    f"{where}: the build stage does not copy the whole workspace (COPY . .)",
                )
            users = [a for i, a in final if i == "USER"]
            if not users or users[-1].split(":")[0] in ("root", "0"):
                r.err("images", f"{where}: the runtime stage does not switch to a non-root USER")
            exposed = [int(p.split("/")[0]) for i, a in final if i == "EXPOSE" for p in a.split()]
            if svc in eff and eff[svc]["port"] is not None:
                r.eq(
                    "images",
                    f"{svc} port",
                    f"{where} EXPOSE",
                    exposed,
                    "infra APP_PORT",
                    [eff[svc]["port"]],
                )
    ignore = repo.root / ".dockerignore"
    if not ignore.is_file():
        r.err("images", ".dockerignore not found (the build context is the repository root)")
    else:
        lines = {
            ln.strip().rstrip("/")
            for ln in ignore.read_text().splitlines()
            if ln.strip() and not ln.startswith("#")
        }
        for needed, alts in (
            ("target/", {"target", "**/target", "/target"}),
            (".git", {".git", "/.git"}),
            ("logs", {"*.log", "**/*.log"}),
        ):
            if not lines & alts:
                r.err("images", f".dockerignore does not exclude {needed}")


def readme_port_plan(repo: Repo) -> dict[str, tuple[int | None, int]]:
    """The README's port plan table: service -> (app port or None, Dapr HTTP port)."""
    readme = repo.root / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    section = text.split("### Port plan", 1)[1] if "### Port plan" in text else ""
    plan = {}
    for line in section.splitlines():
        m_ = re.match(r"^\| `([a-z-]+)` \| (\d+)?[^|]*\| (\d+) \|", line)
        if m_:
            plan[m_.group(1)] = (int(m_.group(2)) if m_.group(2) else None, int(m_.group(3)))
        elif plan and not line.startswith("|"):
            break
    return plan


def check_local(repo: Repo, r: Report, code: dict) -> None:
    run = repo.root / "dapr.yaml"
    local_env: dict[str, dict] = {}
    if not run.is_file():
        r.err("local", "dapr.yaml not found (the multi-app run file with the four apps)")
    else:
        doc = m.load_yaml(run) or {}
        if doc.get("version") != 1:
            r.err("local", f"dapr.yaml version = {doc.get('version')!r}, expected 1")
        apps = doc.get("apps") or []
        common = doc.get("common") or {}
        ids = [a.get("appID") for a in apps]
        plan = readme_port_plan(repo)
        if sorted(map(str, ids)) != sorted(SERVICES):
            r.err("local", f"dapr.yaml appIDs {ids} != services {SERVICES}")
        ports, http_ports = {}, {}
        for a in apps:
            aid = a.get("appID")
            env = {**(common.get("env") or {}), **(a.get("env") or {})}
            local_env[str(aid)] = {k: str(v) for k, v in env.items()}
            adir = a.get("appDirPath")
            if not adir or not (repo.root / adir).is_dir():
                r.err("local", f"dapr.yaml {aid}: appDirPath {adir!r} does not exist")
            cmd = a.get("command") or []
            if not isinstance(cmd, list) or not cmd:
                r.err("local", f"dapr.yaml {aid}: command must be a non-empty list")
            else:
                pk = m.cargo_args(" ".join(map(str, cmd)))["packages"]
                if pk and pk != [aid]:
                    r.err("local", f"dapr.yaml {aid}: command runs package {pk}, not {aid!r}")
            hp = a.get("daprHTTPPort")
            if hp is None:
                r.err("local", f"dapr.yaml {aid}: no daprHTTPPort")
            elif hp in http_ports:
                r.err("local", f"dapr.yaml: daprHTTPPort {hp} used by {http_ports[hp]} and {aid}")
            else:
                http_ports[hp] = aid
            if aid not in CONTRACT:
                continue
            # `dapr run` sets APP_PORT from appPort, so what must agree is the run file and the
            # port plan the README documents (and an explicit APP_PORT, if the run file sets one).
            ap = a.get("appPort")
            if aid in plan:
                plan_app, plan_http = plan[aid]
                r.eq("local", f"{aid} port", "dapr.yaml appPort", ap, "README port plan", plan_app)
                r.eq(
                    "local",
                    f"{aid} Dapr HTTP port",
                    "dapr.yaml daprHTTPPort",
                    hp,
                    "README port plan",
                    plan_http,
                )
            else:
                r.err("local", f"README port plan has no row for {aid}")
            if "APP_PORT" in env:
                r.eq(
                    "local",
                    f"{aid} port",
                    "dapr.yaml appPort",
                    ap,
                    "dapr.yaml env APP_PORT",
                    str(env["APP_PORT"]) and int(env["APP_PORT"]),
                )
            if ap is not None and common.get(
                "appHealthCheckPath", a.get("appHealthCheckPath")
            ) not in (None, "/healthz"):
                r.err("local", f"dapr.yaml {aid}: app health checks must use /healthz")
            if ap in ports:
                r.err("local", f"dapr.yaml: appPort {ap} used by {ports[ap]} and {aid} (same host)")
            elif ap is not None:
                ports[ap] = aid
        paths = [*(common.get("resourcesPaths") or []), common.get("resourcesPath")]
        paths += [p for a in apps for p in (a.get("resourcesPaths") or [])]
        if not any(p and Path(str(p)).name == "components" for p in paths):
            r.err("local", "dapr.yaml does not load ./components (resourcesPaths)")
    comp_dir = repo.root / "components"
    docs = []
    if not comp_dir.is_dir():
        r.err(
            "local",
            "components/ not found (local Dapr components pubsub, statestore and a Resiliency)",
        )
        return
    for p in sorted(comp_dir.glob("*.y*ml")):
        try:
            docs += [(p.name, d) for d in m.load_yaml_all(p) if isinstance(d, dict)]
        except Exception as e:  # noqa: BLE001 - an unreadable component is a finding
            r.err("local", f"components/{p.name}: {e}")
    comps = {get(d, "metadata", "name"): (f, d) for f, d in docs if d.get("kind") == "Component"}
    if not any(d.get("kind") == "Resiliency" for _, d in docs):
        r.err("local", "components/ has no Resiliency resource")
    for f, d in docs:
        if d.get("kind") == "Resiliency":
            for target in get(d, "spec", "targets", "components") or {}:
                if target not in comps:
                    r.err(
                        "local",
                        f"components/{f}: Resiliency targets component {target!r}, which is not defined",
                    )
            for target in get(d, "spec", "targets", "apps") or {}:
                if target not in SERVICES:
                    r.err(
                        "local",
                        f"components/{f}: Resiliency targets app {target!r}, which is not an app id",
                    )
    for svc, kind, prefix in (
        ("order-service", "pubsub", "pubsub."),
        ("inventory-service", "pubsub", "pubsub."),
        ("inventory-service", "state", "state."),
    ):
        env_name = ENV_OVERRIDES[kind]
        used = local_env.get(svc, {}).get(env_name, code.get(svc, {}).get(kind))
        if used is None:
            continue
        if used not in comps:
            r.err(
                "local",
                f"{svc} uses Dapr component {used!r} locally, components/ defines {sorted(map(str, comps))}",
            )
            continue
        f, d = comps[used]
        if not str(get(d, "spec", "type", default="")).startswith(prefix):
            r.err(
                "local",
                f"components/{f}: {used!r} is {get(d, 'spec', 'type')}, {svc} uses it as {kind}",
            )
        scopes = d.get("scopes")
        if scopes and svc not in scopes:
            r.err("local", f"components/{f}: {used!r} is not scoped to {svc} (scopes {scopes})")
    for name, (f, d) in comps.items():
        for s in d.get("scopes") or []:
            if s not in SERVICES:
                r.err("local", f"components/{f}: {name!r} scope {s!r} is not an app id")


def check_skips(repo: Repo, r: Report) -> None:
    files = [
        repo.root / "infra" / "main.bicep",
        *sorted((repo.root / "infra" / "modules").glob("*.bicep")),
    ]
    files += [repo.root / s / "Dockerfile" for s in SERVICES]
    for p in files:
        if not p.is_file():
            continue
        for n, line in enumerate(p.read_text().splitlines(), 1):
            mm = re.search(r"checkov:skip=([A-Z0-9_]+)(?::\s*(.*))?", line)
            if mm and len((mm[2] or "").strip()) < 30:
                r.err(
                    "checkov",
                    f"{p.relative_to(repo.root)}:{n}: skip of {mm[1]} without a real justification",
                )


def run(root: Path) -> list[str]:
    r = Report()
    repo = Repo(root, r)
    steps = [
        ("azure.yaml", lambda: check_azure_yaml(repo, r)),
        ("main.bicep", lambda: check_main(repo, r)),
        ("template conventions", lambda: check_template_conventions(repo, r)),
        ("checkov skips", lambda: check_skips(repo, r)),
    ]
    code: dict = {}
    eff: dict = {}
    try:
        code = read_code(repo, r)
        eff = check_apps(repo, r, code)
        check_components(repo, r, code, eff)
        check_resiliency(repo, r, eff)
        check_outcome_ttl(repo, r, eff)
        check_shutdown_delay(repo, r, eff)
        check_telemetry(repo, r, eff)
        check_dockerfiles(repo, r, eff)
        check_local(repo, r, code)
    except Exception:  # noqa: BLE001 - a crash is a failure with its reason, never a pass
        r.err("internal", "check crashed:\n" + traceback.format_exc())
    for name, step in steps:
        try:
            step()
        except Exception:  # noqa: BLE001 - as above
            r.err("internal", f"{name} check crashed:\n" + traceback.format_exc())
    return r.errors


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[2]))
    args = ap.parse_args()
    errors = run(Path(args.repo).resolve())
    for e in errors:
        print(e)
    print(f"consistency: {len(errors)} problem(s)" if errors else "consistency: OK")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
