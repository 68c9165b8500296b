//! The Azure Container Apps parity run: the deployment's own configuration, read from `infra/`,
//! run on this machine with the real `daprd` under the rules Container Apps runs it by.
//!
//! `infra/tests/aca_model.py` reads the Bicep into a model (apps, their env vars, ports, Dapr
//! settings and ingress; the Dapr components with their names, scopes and metadata; the
//! resiliency policies). From that model, and nothing else:
//! - each Dapr-enabled app runs its real binary with exactly the env vars its Bicep gives it,
//!   plus what the platform injects: a random `APP_API_TOKEN` per app (given to its sidecar too)
//!   and `DAPR_HTTP_PORT` / `DAPR_GRPC_PORT` (3500 / 50001 on Azure, where every replica has its
//!   own localhost; distinct ports here, where all apps share one); and, when the environment's
//!   managed OpenTelemetry agent sends traces somewhere, the agent's [`agent_env`]
//!   (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`), pointed here at the
//!   OTLP/gRPC receiver the caller runs (the e2e tests run a real one, Jaeger);
//! - its sidecar gets the app id, app port, protocol, app-health settings, log level and API
//!   logging of its Bicep, and no Dapr `Configuration` (Container Apps does not apply one);
//! - external ingress is the app's target port reached directly, without the sidecar and without
//!   a token ([`AcaRun::ingress_url`]); an app with internal or no ingress has no URL here and is
//!   reached only through Dapr;
//! - the components keep their Azure names, scopes and consumer settings but are backed by Redis
//!   (Service Bus → `pubsub.redis`, Cosmos DB → `state.redis`); see [`translate_component`] for
//!   exactly what carries over;
//! - the component resiliency policies deployed in Bicep (`daprComponents/resiliencyPolicies`)
//!   become the local `Resiliency` spec, and nothing else does: a policy missing in Bicep is
//!   missing here too. An app's `containerApps/resiliencyPolicies` is not applied to Dapr
//!   service invocation on Azure, so it is not applied here either;
//! - [`AcaRun::stop_app`] stops a replica as Container Apps does: SIGTERM to the app, and the
//!   sidecar stopped 5 s later (microsoft/azure-container-apps#1510).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::{Proc, Signal, dapr_home, repo_root, wait_for_port};

/// `daprd --version` of the runtime the run uses.
pub fn daprd_version() -> String {
    Command::new(dapr_home().join("bin/daprd"))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// What the environment's managed OpenTelemetry agent injects into every app when the Bicep
/// sends traces to a destination (learn.microsoft.com/azure/container-apps/opentelemetry-agents,
/// "Environment variables": the agent's base endpoint, port 4317 on Azure, and `grpc`, the only
/// protocol it takes), with `endpoint` standing in for the agent; nothing without such a
/// destination. The per-signal `CONTAINERAPP_OTEL_*` variables it also injects are read by no
/// app here, so they are left out.
pub fn agent_env(model: &Value, endpoint: &str) -> Vec<(String, String)> {
    let traced = model
        .pointer("/environment/openTelemetry/tracesDestinations")
        .and_then(Value::as_array)
        .is_some_and(|d| !d.is_empty());
    if !traced {
        return Vec::new();
    }
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint.to_owned()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "grpc".into()),
    ]
}

/// How long Container Apps lets the app drain before it stops the sidecar.
pub const SIDECAR_STOP_DELAY: Duration = Duration::from_secs(5);

/// The deployment model printed by `infra/tests/aca_model.py`.
pub fn model() -> Value {
    let root = repo_root();
    let python = infra_python();
    let out = Command::new(&python)
        .arg(root.join("infra/tests/aca_model.py"))
        .current_dir(&root)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} infra/tests/aca_model.py: {e}",
                python.display()
            )
        });
    assert!(
        out.status.success(),
        "infra/tests/aca_model.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("aca_model.py prints JSON")
}

/// The Python of the offline checks' venv (which has PyYAML), as `scripts/test.sh` prepares it;
/// `INFRA_PYTHON` overrides it.
fn infra_python() -> PathBuf {
    if let Some(p) = std::env::var_os("INFRA_PYTHON").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("DAPR_RUST_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME").map(|c| PathBuf::from(c).join("dapr-rust-tutorials"))
        })
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/dapr-rust-tutorials")
        });
    let venv = cache.join("infra-venv/bin/python");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

/// A string value of the model, or `None` for an absent value or an unresolved Bicep expression.
fn literal(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The local component for an Azure one: same name, scopes and consumer settings, backed by the
/// Redis at `redis`. Carried over: `consumerID` (the Service Bus subscription; the Redis consumer
/// group), `maxConcurrentHandlers` (Redis `concurrency`), the subscription's `lockDuration`
/// (Redis `processingTimeout`: a message whose handler has not finished by then is delivered
/// again). Not carried over, because Redis has no equivalent: Service Bus sessions, prefetch,
/// lock renewal, `maxDeliveryCount` and its own dead-letter queue; Cosmos DB partitioning,
/// consistency levels and request-unit throttling (429).
pub fn translate_component(
    component: &Value,
    lock_duration: Option<Duration>,
    redis: &str,
) -> String {
    let name = component["name"].as_str().expect("component name");
    let kind = component["componentType"].as_str().expect("componentType");
    let metadata = &component["metadata"];
    let mut meta: Vec<(String, String)> = vec![
        ("redisHost".into(), redis.into()),
        ("redisPassword".into(), String::new()),
    ];
    let local_type = match kind {
        "pubsub.azure.servicebus.topics" | "pubsub.azure.servicebus" => {
            if let Some(c) = metadata.get("consumerID").and_then(literal) {
                meta.push(("consumerID".into(), c));
            }
            if let Some(c) = metadata.get("maxConcurrentHandlers").and_then(literal) {
                meta.push(("concurrency".into(), c));
            }
            if let Some(lock) = lock_duration {
                meta.push(("processingTimeout".into(), format!("{}s", lock.as_secs())));
                meta.push(("redeliverInterval".into(), "5s".into()));
            }
            "pubsub.redis"
        }
        "state.azure.cosmosdb" => "state.redis",
        other => panic!("the parity run has no local stand-in for component type {other}"),
    };
    let mut yaml = format!(
        "# {name}: {kind} on Azure, {local_type} here (generated from infra/ by the parity run)\n\
         apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  \
         type: {local_type}\n  version: v1\n  metadata:\n"
    );
    for (k, v) in meta {
        let _ = writeln!(
            yaml,
            "    - name: {k}\n      value: {}",
            serde_json::json!(v)
        );
    }
    let scopes: Vec<&str> = component["scopes"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !scopes.is_empty() {
        yaml.push_str("scopes:\n");
        for s in scopes {
            let _ = writeln!(yaml, "  - {s}");
        }
    }
    yaml
}

/// Translates one Container Apps component policy (its inbound or outbound half) into Dapr
/// Resiliency policies named `<prefix>-retry` / `-timeout` / `-cb`, and
/// returns the target entry that uses them.
fn translate_policy(
    prefix: &str,
    policy: &Value,
    retries: &mut String,
    timeouts: &mut String,
    breakers: &mut String,
) -> Vec<(&'static str, String)> {
    let mut target = Vec::new();
    if let Some(retry) = policy.get("httpRetryPolicy").filter(|v| v.is_object()) {
        let max = retry["maxRetries"].as_i64().unwrap_or(0);
        let backoff = &retry["retryBackOff"];
        let initial = backoff["initialDelayInMilliseconds"].as_u64();
        let _ = writeln!(retries, "      {prefix}-retry:");
        match backoff["maxIntervalInMilliseconds"].as_u64() {
            // Equal delays: a constant policy says the same in Dapr's terms.
            Some(max_ms) if initial == Some(max_ms) => {
                let _ = writeln!(
                    retries,
                    "        policy: constant\n        duration: {max_ms}ms"
                );
            }
            // Dapr's exponential policy starts at 500 ms; Container Apps' initial delay is noted.
            Some(max_ms) => {
                let _ = writeln!(
                    retries,
                    "        # initialDelayInMilliseconds on Azure: {}\n        policy: exponential\n        maxInterval: {max_ms}ms",
                    backoff["initialDelayInMilliseconds"]
                );
            }
            None => {
                let delay = initial.unwrap_or(1000);
                let _ = writeln!(
                    retries,
                    "        policy: constant\n        duration: {delay}ms"
                );
            }
        }
        let _ = writeln!(retries, "        maxRetries: {max}");
        target.push(("retry", format!("{prefix}-retry")));
    }
    if let Some(secs) = policy
        .pointer("/timeoutPolicy/responseTimeoutInSeconds")
        .and_then(Value::as_u64)
    {
        let _ = writeln!(timeouts, "      {prefix}-timeout: {secs}s");
        target.push(("timeout", format!("{prefix}-timeout")));
    }
    if let Some(cb) = policy.get("circuitBreakerPolicy").filter(|v| v.is_object()) {
        let errors = cb["consecutiveErrors"].as_u64().unwrap_or(5);
        let timeout = cb["timeoutInSeconds"]
            .as_u64()
            .or_else(|| cb["intervalInSeconds"].as_u64())
            .unwrap_or(10);
        let _ = writeln!(
            breakers,
            "      {prefix}-cb:\n        maxRequests: 1\n        timeout: {timeout}s\n        trip: consecutiveFailures >= {errors}"
        );
        target.push(("circuitBreaker", format!("{prefix}-cb")));
    }
    target
}

/// The Dapr `Resiliency` spec equivalent to the policies in the model, or `None` when the
/// Bicep deploys none.
pub fn translate_resiliency(model: &Value) -> Option<String> {
    let (mut retries, mut timeouts, mut breakers) = (String::new(), String::new(), String::new());
    let mut components = String::new();
    // An app's policy (`containerApps/resiliencyPolicies`) is not translated: Container Apps
    // applies it to calls through the environment's service discovery (ingress), and "resiliency
    // policies can't be applied to requests made using the Dapr Service Invocation API"
    // (learn.microsoft.com/azure/container-apps/service-discovery-resiliency). Dapr invocation
    // on Azure gets Dapr's built-in retries only, and so it does here.
    for component in model["components"].as_array().into_iter().flatten() {
        let policy = &component["resiliency"];
        if !policy.is_object() {
            continue;
        }
        let name = component["name"].as_str().expect("component name");
        let mut entry = String::new();
        for (direction, key) in [("inbound", "inboundPolicy"), ("outbound", "outboundPolicy")] {
            if let Some(p) = policy.get(key).filter(|v| v.is_object()) {
                let body = translate_policy(
                    &format!("{name}-{direction}"),
                    p,
                    &mut retries,
                    &mut timeouts,
                    &mut breakers,
                );
                if !body.is_empty() {
                    let _ = writeln!(entry, "        {direction}:");
                    for (key, policy) in body {
                        let _ = writeln!(entry, "          {key}: {policy}");
                    }
                }
            }
        }
        if !entry.is_empty() {
            let _ = write!(components, "      {name}:\n{entry}");
        }
    }
    if components.is_empty() {
        return None;
    }
    let mut yaml = String::from(
        "# Generated by the parity run from the resiliency policies in infra/ (and nothing else).\n\
         apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: aca-resiliency\nspec:\n  policies:\n",
    );
    for (section, body) in [
        ("retries", &retries),
        ("timeouts", &timeouts),
        ("circuitBreakers", &breakers),
    ] {
        if !body.is_empty() {
            let _ = write!(yaml, "    {section}:\n{body}");
        }
    }
    let _ = write!(yaml, "  targets:\n    components:\n{components}");
    Some(yaml)
}

/// One app of the deployment, running with its sidecar.
pub struct Replica {
    /// The container app's name.
    pub name: String,
    /// The Dapr app id.
    pub app_id: String,
    /// The token the platform injected.
    pub token: String,
    /// The sidecar's HTTP port here (3500 on Azure).
    pub dapr_http_port: u16,
    app: Option<Proc>,
    sidecar: Option<Proc>,
    app_port: Option<u16>,
    ingress: Option<(bool, u16)>,
    program: PathBuf,
    app_env: Vec<(String, String)>,
    sidecar_args: Vec<String>,
    starts: usize,
    stopped_logs: Vec<Vec<String>>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Replica({})", self.name)
    }
}

/// The deployment running here.
#[derive(Debug)]
pub struct AcaRun {
    /// The model it was started from.
    pub model: Value,
    /// The apps by container app name.
    pub replicas: BTreeMap<String, Replica>,
    /// The generated resources folder (components and resiliency).
    pub resources: PathBuf,
    logs: PathBuf,
    _dir: tempfile::TempDir,
}

fn random_token() -> String {
    let mut bytes = [0u8; 24];
    let read = fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    read.expect("/dev/urandom is readable");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn service_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let path = target.join("debug").join(name);
    assert!(
        path.is_file(),
        "{} is not built (crate::build_services builds it)",
        path.display()
    );
    path
}

impl AcaRun {
    /// Starts every Dapr-enabled app of `model` with its sidecar: Redis at `pubsub_redis`
    /// (`host:port`) stands in for Service Bus, Redis at `state_redis` for Cosmos DB, and the
    /// OTLP/gRPC collector at `agent` (`http://host:port`) for the OpenTelemetry agent.
    pub fn start(
        model: Value,
        pubsub_redis: &str,
        state_redis: &str,
        agent: &str,
        logs: &Path,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let resources = dir.path().join("resources");
        fs::create_dir_all(&resources).expect("resources dir");
        let lock = model
            .pointer("/serviceBus/subscriptions")
            .and_then(Value::as_array)
            .and_then(|subs| {
                subs.iter()
                    .find_map(|s| s["lockDuration"].as_str().and_then(iso_duration))
            });
        for component in model["components"].as_array().expect("components") {
            let name = component["name"].as_str().expect("component name");
            let redis = if component["componentType"]
                .as_str()
                .is_some_and(|t| t.starts_with("state."))
            {
                state_redis
            } else {
                pubsub_redis
            };
            fs::write(
                resources.join(format!("{name}.yaml")),
                translate_component(component, lock, redis),
            )
            .expect("component written");
        }
        if let Some(yaml) = translate_resiliency(&model) {
            fs::write(resources.join("resiliency.yaml"), yaml).expect("resiliency written");
        }
        fs::write(logs.join("aca-resources.txt"), dump_dir(&resources)).expect("resources logged");

        let daprd = dapr_home().join("bin/daprd");
        let mut replicas = BTreeMap::new();
        let apps: Vec<&Value> = model["apps"]
            .as_array()
            .expect("apps")
            .iter()
            .filter(|a| a["dapr"]["enabled"].as_bool() == Some(true))
            .collect();
        for (i, app) in apps.into_iter().enumerate() {
            let i = u16::try_from(i).expect("few apps");
            let name = app["name"].as_str().expect("app name").to_owned();
            let dapr = &app["dapr"];
            let app_id = dapr["appId"].as_str().expect("appId").to_owned();
            let token = random_token();
            // All below Linux's ephemeral range (32768-60999): a port in it can be taken at any
            // moment as the local end of some outgoing connection, and daprd then fails to bind.
            let (http, grpc, internal, metrics) = (3600 + i, 31101 + i, 31201 + i, 31301 + i);
            let mut env: Vec<(String, String)> = Vec::new();
            for (k, v) in app["env"].as_object().into_iter().flatten() {
                match literal(v) {
                    Some(v) => env.push((k.clone(), v)),
                    None => panic!(
                        "{name}: env {k} is a Bicep expression ({v}); the parity run cannot resolve it"
                    ),
                }
            }
            env.push(("APP_API_TOKEN".into(), token.clone()));
            env.push(("DAPR_HTTP_PORT".into(), http.to_string()));
            env.push(("DAPR_GRPC_PORT".into(), grpc.to_string()));
            // The agent's values yield to the app's own, as on Azure.
            for (k, v) in agent_env(&model, agent) {
                if !env.iter().any(|(name, _)| *name == k) {
                    env.push((k, v));
                }
            }
            let app_port = dapr["appPort"]
                .as_u64()
                .map(|p| u16::try_from(p).expect("port"));
            let mut args: Vec<String> = vec![
                format!("--app-id={app_id}"),
                format!("--dapr-http-port={http}"),
                format!("--dapr-grpc-port={grpc}"),
                format!("--dapr-internal-grpc-port={internal}"),
                format!("--metrics-port={metrics}"),
                format!("--resources-path={}", resources.display()),
                "--placement-host-address=localhost:50005".into(),
                "--scheduler-host-address=localhost:50006".into(),
                format!(
                    "--log-level={}",
                    dapr["logLevel"].as_str().unwrap_or("info")
                ),
                format!(
                    "--enable-api-logging={}",
                    dapr["enableApiLogging"].as_bool().unwrap_or(false)
                ),
            ];
            if let Some(port) = app_port {
                args.push(format!("--app-port={port}"));
                args.push(format!(
                    "--app-protocol={}",
                    dapr["appProtocol"].as_str().unwrap_or("http")
                ));
            }
            if let Some(size) = dapr["httpMaxRequestSize"].as_u64() {
                args.push(format!("--max-body-size={size}Mi"));
            }
            if let Some(size) = dapr["httpReadBufferSize"].as_u64() {
                args.push(format!("--read-buffer-size={size}Ki"));
            }
            let health = &dapr["appHealth"];
            if health["enabled"].as_bool() == Some(true) {
                args.push("--enable-app-health-check".into());
                args.push(format!(
                    "--app-health-check-path={}",
                    health["path"].as_str().unwrap_or("/healthz")
                ));
                if let Some(v) = health["probeIntervalSeconds"].as_u64() {
                    args.push(format!("--app-health-probe-interval={v}"));
                }
                if let Some(v) = health["probeTimeoutMilliseconds"].as_u64() {
                    args.push(format!("--app-health-probe-timeout={v}"));
                }
                if let Some(v) = health["threshold"].as_u64() {
                    args.push(format!("--app-health-threshold={v}"));
                }
            }
            let ingress = app["ingress"].as_object().map(|ing| {
                (
                    ing.get("external")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    ing.get("targetPort")
                        .and_then(Value::as_u64)
                        .map(|p| u16::try_from(p).expect("port"))
                        .expect("ingress targetPort"),
                )
            });
            let program = service_binary(&name);
            let mut replica = Replica {
                name: name.clone(),
                app_id,
                token,
                dapr_http_port: http,
                app: None,
                sidecar: None,
                app_port,
                ingress,
                program,
                app_env: env,
                sidecar_args: args,
                starts: 0,
                stopped_logs: Vec::new(),
            };
            replica.launch(&daprd, logs);
            replicas.insert(name, replica);
        }
        let run = Self {
            model,
            replicas,
            resources,
            logs: logs.to_path_buf(),
            _dir: dir,
        };
        for replica in run.replicas.values() {
            replica.wait_ready();
        }
        run
    }

    /// The app called `name`.
    pub fn replica(&self, name: &str) -> &Replica {
        self.replicas
            .get(name)
            .unwrap_or_else(|| panic!("the deployment has no app {name}"))
    }

    /// The public URL of `name`'s external ingress (its target port, directly), or `None` when
    /// the app has internal or no ingress.
    pub fn ingress_url(&self, name: &str) -> Option<String> {
        match self.replica(name).ingress {
            Some((true, port)) => Some(format!("http://127.0.0.1:{port}")),
            _ => None,
        }
    }

    /// Stops `name` as Container Apps stops a replica: SIGTERM to the app, then, 5 s later,
    /// SIGTERM to its sidecar; waits for both to exit.
    pub fn stop_app(&mut self, name: &str) {
        let replica = self.replicas.get_mut(name).expect("app");
        let (Some(app), Some(sidecar)) = (replica.app.as_mut(), replica.sidecar.as_mut()) else {
            panic!("{name} is not running");
        };
        app.signal(Signal::SIGTERM);
        std::thread::sleep(SIDECAR_STOP_DELAY);
        sidecar.signal(Signal::SIGTERM);
        assert!(
            app.wait_exit(Duration::from_secs(20)).is_some(),
            "{name} did not exit after SIGTERM"
        );
        assert!(
            sidecar.wait_exit(Duration::from_secs(30)).is_some(),
            "{name}'s sidecar did not exit after SIGTERM"
        );
    }

    /// Starts `name` again (a new replica) with the same settings and token, and waits for it.
    pub fn start_app(&mut self, name: &str) {
        let daprd = dapr_home().join("bin/daprd");
        let logs = self.logs.clone();
        let replica = self.replicas.get_mut(name).expect("app");
        replica.launch(&daprd, &logs);
        replica.wait_ready();
    }
}

impl Replica {
    fn launch(&mut self, daprd: &Path, logs: &Path) {
        if let Some(previous) = &self.app {
            self.stopped_logs.push(previous.lines());
        }
        self.starts += 1;
        let args: Vec<&str> = self.sidecar_args.iter().map(String::as_str).collect();
        let token = [("APP_API_TOKEN", self.token.as_str())];
        self.sidecar = Some(Proc::program(
            &format!("{}-daprd-{}", self.name, self.starts),
            &daprd.display().to_string(),
            &args,
            &repo_root(),
            &token,
            logs,
        ));
        let env: Vec<(&str, &str)> = self
            .app_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.app = Some(Proc::program(
            &format!("{}-{}", self.name, self.starts),
            &self.program.display().to_string(),
            &[],
            &repo_root(),
            &env,
            logs,
        ));
    }

    /// The app process.
    pub fn app(&self) -> &Proc {
        self.app.as_ref().expect("the app was started")
    }

    /// The `daprd` process.
    pub fn sidecar(&self) -> &Proc {
        self.sidecar.as_ref().expect("the sidecar was started")
    }

    fn wait_ready(&self) {
        if let Some(port) = self.app_port {
            assert!(
                wait_for_port(port, Duration::from_secs(60)),
                "{} did not listen on {port}:\n{}",
                self.name,
                self.app().tail(30)
            );
        }
        self.sidecar()
            .wait_for("dapr initialized", Duration::from_secs(90));
    }

    /// The log lines of each start of the app, oldest first (the current one last).
    pub fn logs_of_every_start(&self) -> Vec<Vec<String>> {
        let mut all = self.stopped_logs.clone();
        all.push(self.app().lines());
        all
    }

    /// The sidecar's base URL (`http://127.0.0.1:<port>`).
    pub fn sidecar_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.dapr_http_port)
    }
}

/// A subset of ISO 8601 durations as Azure writes them (`PT1M`, `PT30S`, `P14D`).
fn iso_duration(s: &str) -> Option<Duration> {
    let rest = s.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut secs = 0u64;
    if let Some(d) = days.strip_suffix('D') {
        secs += d.parse::<u64>().ok()? * 86_400;
    }
    let mut num = String::new();
    for c in time.chars() {
        match c {
            '0'..='9' => num.push(c),
            'H' | 'M' | 'S' => {
                let n: u64 = num.parse().ok()?;
                secs += n * match c {
                    'H' => 3600,
                    'M' => 60,
                    _ => 1,
                };
                num.clear();
            }
            _ => return None,
        }
    }
    Some(Duration::from_secs(secs))
}

fn dump_dir(dir: &Path) -> String {
    let mut out = String::new();
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("dir")
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(fs::DirEntry::path);
    for entry in entries {
        let _ = writeln!(
            out,
            "--- {}\n{}",
            entry.file_name().to_string_lossy(),
            fs::read_to_string(entry.path()).unwrap_or_default()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_durations() {
        assert_eq!(iso_duration("PT1M"), Some(Duration::from_secs(60)));
        assert_eq!(iso_duration("P14D"), Some(Duration::from_secs(14 * 86_400)));
        assert_eq!(iso_duration("PT1H30S"), Some(Duration::from_secs(3630)));
        assert_eq!(iso_duration("1M"), None);
    }

    #[test]
    fn a_component_policy_becomes_a_dapr_inbound_target() {
        let model = serde_json::json!({
            "apps": [],
            "components": [{
                "name": "pubsub-inventory",
                "resiliency": {"inboundPolicy": {
                    "httpRetryPolicy": {"maxRetries": 7, "retryBackOff": {"initialDelayInMilliseconds": 500, "maxIntervalInMilliseconds": 10000}},
                    "timeoutPolicy": {"responseTimeoutInSeconds": 15}
                }}
            }]
        });
        let yaml = translate_resiliency(&model).unwrap();
        assert!(yaml.contains("pubsub-inventory-inbound-retry:\n"), "{yaml}");
        assert!(yaml.contains("maxRetries: 7"), "{yaml}");
        assert!(yaml.contains("maxInterval: 10000ms"), "{yaml}");
        assert!(
            yaml.contains("pubsub-inventory-inbound-timeout: 15s"),
            "{yaml}"
        );
        assert!(
            yaml.contains("    components:\n      pubsub-inventory:\n        inbound:\n          retry: pubsub-inventory-inbound-retry\n          timeout: pubsub-inventory-inbound-timeout\n"),
            "{yaml}"
        );
    }

    #[test]
    fn the_agent_injects_its_grpc_endpoint_only_when_traces_have_a_destination() {
        let model = |otel: Value| serde_json::json!({"environment": {"openTelemetry": otel}});
        let traced =
            model(serde_json::json!({"tracesDestinations": ["appInsights"], "includeDapr": true}));
        assert_eq!(
            agent_env(&traced, "http://127.0.0.1:4317"),
            vec![
                (
                    "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
                    "http://127.0.0.1:4317".to_owned()
                ),
                ("OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(), "grpc".to_owned()),
            ]
        );
        for untraced in [
            model(Value::Null),
            model(serde_json::json!({"tracesDestinations": [], "includeDapr": true})),
            model(serde_json::json!({"tracesDestinations": null, "includeDapr": null})),
        ] {
            assert_eq!(agent_env(&untraced, "http://x:1"), Vec::new(), "{untraced}");
        }
    }

    #[test]
    fn no_policy_in_bicep_means_no_resiliency_here() {
        let model = serde_json::json!({"apps": [{"name": "a", "resiliency": null}], "components": [{"name": "c", "resiliency": null}]});
        assert!(translate_resiliency(&model).is_none());
    }
}
