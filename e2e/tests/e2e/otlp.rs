//! Spans over OTLP/HTTP, the services' default exporter, into a real OTLP receiver: Jaeger v2
//! (an OpenTelemetry Collector build with an in-memory trace store and a query API), built from
//! its Go module by `scripts/lib.sh` `ensure_jaeger`. All four services run as `dapr.yaml` runs
//! them, once with only `OTEL_EXPORTER_OTLP_ENDPOINT` set and once with no `OTEL_*` variable at
//! all; the sidecars send their spans to the same receiver through a Dapr Configuration
//! (`tracing.otel`, protocol http), so each order is one trace there.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::{Env, Proc, readme, repo_root, require_free_port, shell_output, wait_for_port};
use serde_json::Value;

use crate::support::{START, get_json, post_with, trace_id_of};
use crate::system::{
    APP_PORTS, SIDECAR_PORTS, assert_ports_freed, check_checkout_trace, check_order_trace,
    checkout_trace_complete, order_trace_complete, wait_for_system,
};
use crate::zipkin::{Span, Trace};

/// Jaeger's OTLP/HTTP receiver, on the port the OTLP specification makes the default: a service
/// that sent spans without being told where would send them here.
const OTLP_PORT: u16 = 4318;
/// Jaeger's OTLP/gRPC receiver, opened when asked for: the protocol Azure Container Apps'
/// OpenTelemetry agent takes (the ACA-parity tests stand Jaeger in for it).
pub(crate) const OTLP_GRPC_PORT: u16 = 4317;
/// Jaeger's query API (HTTP) and its gRPC twin, which it always opens.
const QUERY_PORT: u16 = 16686;
const QUERY_GRPC_PORT: u16 = 16685;
/// The Jaeger release `scripts/lib.sh` builds (`JAEGER_VERSION`).
const JAEGER_VERSION: &str = "1.76.0";

/// The services' instrumentation scope; the sidecars' spans have Dapr's.
const APP_SCOPE: &str = "service-kit";

/// The Jaeger binary: `JAEGER_BIN` (which `scripts/test.sh` sets), else where `ensure_jaeger`
/// caches it. Fails, never skips, when it is missing.
fn jaeger_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("JAEGER_BIN").filter(|v| !v.is_empty()) {
        return PathBuf::from(bin);
    }
    let cache = std::env::var_os("DAPR_RUST_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache")
                })
                .join("dapr-rust-tutorials")
        });
    let bin = cache.join(format!("jaeger-{JAEGER_VERSION}/bin/jaeger"));
    assert!(
        bin.is_file(),
        "the OTLP test needs a real OTLP receiver, Jaeger {JAEGER_VERSION}, and {} is missing: \
         run scripts/test.sh, which builds it from its Go module (scripts/lib.sh ensure_jaeger), \
         or set JAEGER_BIN",
        bin.display()
    );
    bin
}

/// A Jaeger v2 that keeps traces in memory: empty each time it starts.
pub(crate) struct Jaeger {
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Jaeger {
    /// Jaeger taking OTLP over HTTP only.
    fn start(logs: &Path, name: &str) -> Self {
        Self::start_with(logs, name, false)
    }

    /// Jaeger taking OTLP over HTTP and, with `grpc`, over gRPC on [`OTLP_GRPC_PORT`] too.
    pub(crate) fn start_with(logs: &Path, name: &str, grpc: bool) -> Self {
        let mut ports = vec![
            (OTLP_PORT, "Jaeger's OTLP/HTTP receiver"),
            (QUERY_PORT, "Jaeger's query API"),
            (QUERY_GRPC_PORT, "Jaeger's gRPC query API"),
        ];
        if grpc {
            ports.push((OTLP_GRPC_PORT, "Jaeger's OTLP/gRPC receiver"));
        }
        for &(port, what) in &ports {
            require_free_port(port, what);
        }
        let grpc_receiver = if grpc {
            format!("\n      grpc:\n        endpoint: 127.0.0.1:{OTLP_GRPC_PORT}")
        } else {
            String::new()
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("jaeger.yaml");
        // Only OTLP comes in; every port is on loopback; no metrics endpoint.
        fs::write(
            &config,
            format!(
                "service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{QUERY_PORT}
    grpc:
      endpoint: 127.0.0.1:{QUERY_GRPC_PORT}
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{OTLP_PORT}{grpc_receiver}
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"
            ),
        )
        .expect("writable temp dir");
        let config_arg = format!("--config={}", config.display());
        let proc = Proc::program(
            name,
            &jaeger_bin().display().to_string(),
            &[&config_arg],
            dir.path(),
            &[],
            logs,
        );
        for port in ports
            .iter()
            .map(|&(port, _)| port)
            .filter(|&p| p != QUERY_GRPC_PORT)
        {
            assert!(
                wait_for_port(port, Duration::from_secs(30)),
                "Jaeger did not listen on {port}:\n{}",
                proc.tail(40)
            );
        }
        Self {
            _proc: proc,
            _dir: dir,
        }
    }

    /// Trace `id` as the receiver stored it (`query.raw_traces`: no adjustments); empty when
    /// it has no span of it.
    fn trace(&self, id: &str) -> Trace {
        let (status, body) = get_json(&format!(
            "http://127.0.0.1:{QUERY_PORT}/api/v3/traces/{id}?query.raw_traces=true"
        ));
        let spans = match status {
            200 => spans(&body),
            404 => Vec::new(),
            _ => panic!("Jaeger answered {status} for trace {id}: {body}"),
        };
        for span in &spans {
            assert_eq!(span.tags["trace_id"], id, "{span}");
        }
        Trace {
            id: id.to_owned(),
            spans,
        }
    }

    /// Trace `id`, once `complete` holds for it: spans come in batches, seconds apart. Panics
    /// with what arrived after 30 s.
    fn fetch(&self, id: &str, complete: impl Fn(&Trace) -> bool) -> Trace {
        let mut trace = self.trace(id);
        let done = e2e::wait_until(Duration::from_secs(30), || {
            trace = self.trace(id);
            complete(&trace)
        });
        assert!(
            done,
            "trace {id} is incomplete in Jaeger:\n{}",
            trace.tree()
        );
        trace
    }

    /// The service names of all the spans stored.
    fn services(&self) -> Vec<String> {
        let (status, body) = get_json(&format!("http://127.0.0.1:{QUERY_PORT}/api/v3/services"));
        assert_eq!(status, 200, "Jaeger's services: {body}");
        body["services"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    }

    /// Every stored span of the traces in which `service` has a span.
    pub(crate) fn traces_of(&self, service: &str) -> Vec<Span> {
        // The store is this test's alone, so the window can be all of time; Jaeger wants a
        // search depth below the store's max_traces.
        let (status, body) = get_json(&format!(
            "http://127.0.0.1:{QUERY_PORT}/api/v3/traces?query.service_name={service}\
             &query.start_time_min=2000-01-01T00:00:00Z&query.start_time_max=2100-01-01T00:00:00Z\
             &query.num_traces=1000&query.raw_traces=true"
        ));
        match status {
            200 => spans(&body),
            404 => Vec::new(),
            _ => panic!("Jaeger answered {status} for the traces of {service}: {body}"),
        }
    }
}

/// The spans of an OTLP `TracesData` in JSON (Jaeger's `/api/v3` answer, `{"result": …}`), in
/// the shape `zipkin.rs` reads Zipkin's into, so the same trace checks apply: names lower-cased
/// as Zipkin stores them, kinds as Zipkin names them, attributes as text tags (with the trace
/// id under `trace_id`), and `app` for spans of the services' scope.
fn spans(body: &Value) -> Vec<Span> {
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for resource in list(&body["result"]["resourceSpans"]) {
        let resource_tags = attributes(&resource["resource"]["attributes"]);
        let service = resource_tags
            .get("service.name")
            .cloned()
            .unwrap_or_default();
        for scope in list(&resource["scopeSpans"]) {
            let scope_name = scope["scope"]["name"].as_str().unwrap_or_default();
            for span in list(&scope["spans"]) {
                let text = |key: &str| span[key].as_str().unwrap_or_default().to_owned();
                // The resource's attributes (telemetry.sdk.language, say) under the span's.
                let mut tags = resource_tags.clone();
                tags.extend(attributes(&span["attributes"]));
                tags.insert("trace_id".to_owned(), text("traceId"));
                tags.insert("otel.scope.name".to_owned(), scope_name.to_owned());
                let parent = Some(text("parentSpanId")).filter(|p| !p.is_empty());
                out.push(Span {
                    id: text("spanId"),
                    parent,
                    name: text("name").to_lowercase(),
                    service: service.clone(),
                    kind: kind(&span["kind"]),
                    app: scope_name == APP_SCOPE,
                    tags,
                });
            }
        }
    }
    out
}

/// OTLP attributes (`[{"key", "value": {"stringValue" | "intValue" | …}}]`) as text.
fn attributes(list: &Value) -> std::collections::HashMap<String, String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|attr| {
            let key = attr["key"].as_str()?.to_owned();
            let value = attr["value"].as_object()?.values().next()?;
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            Some((key, text))
        })
        .collect()
}

/// An OTLP span kind, by name (`SPAN_KIND_SERVER`) or number (2), as Zipkin names it.
fn kind(kind: &Value) -> String {
    match kind {
        Value::String(name) => name.trim_start_matches("SPAN_KIND_").to_owned(),
        Value::Number(n) => match n.as_u64() {
            Some(1) => "INTERNAL",
            Some(2) => "SERVER",
            Some(3) => "CLIENT",
            Some(4) => "PRODUCER",
            Some(5) => "CONSUMER",
            _ => "UNSPECIFIED",
        }
        .to_owned(),
        _ => "UNSPECIFIED".to_owned(),
    }
}

/// `dapr.yaml` with absolute paths, the sidecars' tracing pointed at Jaeger, and the services'
/// `env` replaced by `env` (none when `None`), written into `dir`.
fn run_file(dir: &Path, env: Option<&str>) -> PathBuf {
    let root = repo_root().display().to_string();
    let original = fs::read_to_string(repo_root().join("dapr.yaml")).expect("dapr.yaml");
    let mut text = original.clone();
    let zipkin_env = "  env:
    OTEL_TRACES_EXPORTER: zipkin
    OTEL_EXPORTER_ZIPKIN_ENDPOINT: http://127.0.0.1:9411/api/v2/spans
";
    let config = dir.join("tracing.yaml");
    for (from, to) in [
        (zipkin_env.to_owned(), env.unwrap_or_default().to_owned()),
        (
            "configFilePath: ./config/tracing.yaml".to_owned(),
            format!("configFilePath: {}", config.display()),
        ),
        (
            r#"resourcesPaths: ["./components"]"#.to_owned(),
            format!(r#"resourcesPaths: ["{root}/components"]"#),
        ),
        ("appDirPath: ./".to_owned(), format!("appDirPath: {root}/")),
    ] {
        assert!(
            text.contains(&from),
            "dapr.yaml no longer has {from:?}:\n{original}"
        );
        text = text.replace(&from, &to);
    }
    // The OTLP exporter of daprd (Go's otlptracehttp) takes host:port and adds /v1/traces.
    fs::write(
        &config,
        format!(
            "apiVersion: dapr.io/v1alpha1
kind: Configuration
metadata:
  name: tracing
spec:
  tracing:
    samplingRate: \"1\"
    otel:
      endpointAddress: 127.0.0.1:{OTLP_PORT}
      isSecure: false
      protocol: http
"
        ),
    )
    .expect("writable temp dir");
    let file = dir.join("dapr.yaml");
    fs::write(&file, text).expect("writable temp dir");
    file
}

/// Starts `dapr run -f` on `file` with no `OTEL_*` variable from the test's own environment:
/// the run file alone decides what the services get.
fn run_all(env: &Env, name: &str, file: &Path) -> Proc {
    let run = env.run(
        name,
        &format!("unset ${{!OTEL_@}}; exec dapr run -f {}", file.display()),
        &[],
    );
    wait_for_system(&run, None);
    run
}

/// Stops the run as the README does (`dapr stop -f`) and waits until its ports are free.
fn stop_all(mut run: Proc, file: &Path) {
    shell_output(&format!("dapr stop -f {}", file.display()));
    assert!(
        run.wait_exit(Duration::from_secs(60)).is_some(),
        "{}",
        run.tail(30)
    );
    let mut ports = APP_PORTS.to_vec();
    ports.extend(SIDECAR_PORTS);
    assert_ports_freed(&ports, &run);
}

/// Places `order` through order-service's sidecar, as the README does, and returns the trace
/// id inventory-service logs processing it under.
fn place_order(run: &Proc, order_id: &str) -> String {
    let order = serde_json::json!({"orderId": order_id, "itemId": "item1", "quantity": 10});
    let (status, body) = post_with(
        "http://localhost:3502/v1.0/invoke/order-service/method/order",
        &order,
        None,
    );
    assert_eq!(status, 200, "{body}");
    let processed = format!("Processed OrderPlaced event. orderId={order_id},");
    run.wait_for(&processed, Duration::from_secs(30));
    trace_id_of(run, &processed)
}

#[test]
fn with_only_the_otlp_endpoint_set_each_service_exports_its_spans_and_without_it_none() {
    let env = Env::new("otlp_export");
    let dir = tempfile::tempdir().expect("temp dir");

    // 1. The standard variable alone: OTEL_EXPORTER_OTLP_ENDPOINT, the receiver's base URL.
    let jaeger = Jaeger::start(&env.logs, "jaeger-exporting");
    let file = run_file(
        dir.path(),
        Some(&format!(
            "  env:\n    OTEL_EXPORTER_OTLP_ENDPOINT: http://127.0.0.1:{OTLP_PORT}\n"
        )),
    );
    let run = run_all(&env, "run-otlp", &file);
    run.wait_for(r#"Order passed: {"orderId":1} "#, START);
    let checkout = trace_id_of(&run, r#"Order passed: {"orderId":1}"#);
    readme::matches_output(
        "all-set-stock",
        &shell_output(&readme::command("all-set-stock")),
    )
    .unwrap();
    let order = place_order(&run, "order-2001");

    // Each of the six processes sends its spans in batches of its own, seconds apart: a trace
    // is whole once each has sent the span it ends last.
    let is_app = |service: &'static str| move |s: &Span| s.app && s.service == service;
    let is_sidecar = |service: &'static str| move |s: &Span| !s.app && s.service == service;
    let checkout_trace = jaeger.fetch(&checkout, checkout_trace_complete);
    check_checkout_trace(&checkout_trace, "Jaeger (OTLP/HTTP)");
    let order_trace = jaeger.fetch(&order, |t| {
        // order-service's sidecar: the invocation and the publish; inventory-service's: one
        // span under each state call, and the delivery.
        let state_calls = t.all(|s| is_app("inventory-service")(s) && s.kind == "CLIENT");
        order_trace_complete(t)
            && t.all(is_sidecar("order-service")).len() >= 2
            && t.all(is_sidecar("inventory-service")).len() > state_calls.len()
    });
    check_order_trace(&order_trace, "Jaeger (OTLP/HTTP)");
    // Each service's own spans, named by its Dapr app id, of the kind its part in the order
    // makes (checkout's order is internal; order-processor's and order-service's requests are
    // servers; inventory-service's event is a consumer).
    for (trace, service, kinds) in [
        (&checkout_trace, "checkout", &["INTERNAL", "CLIENT"][..]),
        (&checkout_trace, "order-processor", &["SERVER"][..]),
        (&order_trace, "order-service", &["SERVER", "CLIENT"][..]),
        (
            &order_trace,
            "inventory-service",
            &["SERVER", "CONSUMER", "CLIENT"][..],
        ),
    ] {
        let spans = trace.all(is_app(service));
        for kind in kinds {
            assert!(
                spans.iter().any(|s| s.kind == *kind),
                "no {kind} span of {service} in trace {}:\n{}",
                trace.id,
                trace.tree()
            );
        }
    }
    stop_all(run, &file);
    drop(jaeger);

    // 2. No OTEL_* variable: the sidecars still send theirs to the same receiver, listening
    // where the OTLP default points, and the services send nothing.
    let jaeger = Jaeger::start(&env.logs, "jaeger-silent");
    let quiet = tempfile::tempdir().expect("temp dir");
    let file = run_file(quiet.path(), None);
    assert!(
        !fs::read_to_string(&file).unwrap().contains("OTEL_"),
        "the run file still names an OTEL_ variable"
    );
    let run = run_all(&env, "run-no-otel", &file);
    run.wait_for(r#"Order passed: {"orderId":1} "#, START);
    let order = place_order(&run, "order-2002");
    // Once the sidecars' batches with this order are in, every process has had at least one
    // batch interval (5 s, the SDKs' default) to send what it made, health checks included.
    jaeger.fetch(&order, |t| {
        ["order-service", "inventory-service"]
            .iter()
            .all(|service| t.all(|s| !s.app && s.service == *service).len() >= 2)
    });
    stop_all(run, &file);
    // Whatever name a span came under (the four app ids are what the sidecars send theirs as).
    let services = jaeger.services();
    for service in e2e::SERVICES {
        assert!(
            services.iter().any(|s| s == service),
            "Jaeger has no span of {service}'s sidecar, only of {services:?}: the receiver got nothing"
        );
    }
    for service in &services {
        // The services' scope, or the Rust SDK: the sidecars' spans come from Go.
        let from_app: Vec<String> = jaeger
            .traces_of(service)
            .iter()
            .filter(|s| {
                s.app || s.tags.get("telemetry.sdk.language").map(String::as_str) == Some("rust")
            })
            .map(ToString::to_string)
            .collect();
        assert!(
            from_app.is_empty(),
            "with no OTEL_* variable set, spans came from a service: {from_app:?}"
        );
    }
    e2e::record_scenario(&format!(
        "with no OTEL_* variable, Jaeger got {} sidecar spans of order-2002's trace and none from a service",
        jaeger.trace(&order).spans.len()
    ));
}
