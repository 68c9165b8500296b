//! Span export, configured by the standard `OTEL_*` environment: where a service's spans go, or
//! that they go nowhere.
//!
//! Nothing is exported, and no span is made, unless an exporter is configured: the OTLP
//! exporter (the default of `OTEL_TRACES_EXPORTER`) needs `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; `OTEL_TRACES_EXPORTER=zipkin` sends Zipkin's format to
//! `OTEL_EXPORTER_ZIPKIN_ENDPOINT` (the Zipkin server `scripts/run.sh` starts takes only that);
//! `none` or `OTEL_SDK_DISABLED=true` switch export off. OTLP goes over HTTP with protobuf
//! bodies unless `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL` says `grpc`,
//! which is what Azure Container Apps' managed OpenTelemetry agent injects, with
//! `OTEL_EXPORTER_OTLP_ENDPOINT` naming the agent (port 4317). Another protocol (`http/json`) is
//! not built in: the service starts, logs that it exports nothing, and runs. Spans are batched
//! and sent from the SDK's own thread, so a request never waits on the exporter;
//! [`Export::shutdown`] flushes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};

use crate::env::{self, ConfigError, Vars};

/// Where spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exporter {
    /// Nowhere: no span is made.
    None,
    /// OTLP over HTTP with protobuf bodies, to this URL (ending `/v1/traces`).
    Otlp(String),
    /// OTLP over gRPC, to this endpoint (`http://host:port`; gRPC adds no path).
    OtlpGrpc(String),
    /// Zipkin's JSON format, to this URL (ending `/api/v2/spans`).
    Zipkin(String),
    /// An exporter these services do not have (OTLP with JSON bodies): nothing is exported, and
    /// the service says so when it starts, rather than not starting. A platform may inject the
    /// variables, and spans are a diagnostic: an order must not fail for them.
    Unusable(String),
}

/// The export settings of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtelConfig {
    /// Where spans go.
    pub exporter: Exporter,
    /// `service.name` of the spans.
    pub service_name: String,
}

/// The Zipkin exporter's default endpoint (the OpenTelemetry specification's).
pub const DEFAULT_ZIPKIN_ENDPOINT: &str = "http://localhost:9411/api/v2/spans";

impl OtelConfig {
    /// Reads the `OTEL_*` variables; `service` names the spans when neither
    /// `OTEL_SERVICE_NAME` nor `APP_ID` (the Dapr app id) is set.
    pub fn from_vars(vars: &Vars, service: &str) -> Result<Self, ConfigError> {
        let service_name = vars
            .get(env::OTEL_SERVICE_NAME)
            .or_else(|| vars.get(env::APP_ID))
            .unwrap_or_else(|| service.to_owned());
        let disabled = vars.bool_or(env::OTEL_SDK_DISABLED, false)?;
        let kind = vars
            .get(env::OTEL_TRACES_EXPORTER)
            .unwrap_or_else(|| "otlp".to_owned());
        let exporter = match kind.to_ascii_lowercase().as_str() {
            _ if disabled => Exporter::None,
            "none" => Exporter::None,
            "otlp" => {
                let protocol = [
                    env::OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
                    env::OTEL_EXPORTER_OTLP_PROTOCOL,
                ]
                .into_iter()
                .find_map(|name| vars.get(name).map(|value| (name, value)));
                let endpoints = (
                    vars.get(env::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT),
                    vars.get(env::OTEL_EXPORTER_OTLP_ENDPOINT),
                );
                match protocol {
                    None => otlp_http(endpoints),
                    Some((_, value)) if value == "http/protobuf" => otlp_http(endpoints),
                    // gRPC has no per-signal path: both variables name the collector itself.
                    Some((_, value)) if value == "grpc" => match endpoints {
                        (Some(url), _) | (None, Some(url)) => Exporter::OtlpGrpc(url),
                        (None, None) => Exporter::None,
                    },
                    Some((name, value)) => Exporter::Unusable(format!(
                        "{name}={value:?}: only http/protobuf and grpc are built in"
                    )),
                }
            }
            "zipkin" => Exporter::Zipkin(
                vars.get(env::OTEL_EXPORTER_ZIPKIN_ENDPOINT)
                    .unwrap_or_else(|| DEFAULT_ZIPKIN_ENDPOINT.to_owned()),
            ),
            _ => {
                return Err(ConfigError::new(
                    env::OTEL_TRACES_EXPORTER,
                    kind,
                    "expected otlp, zipkin or none",
                ));
            }
        };
        Ok(Self {
            exporter,
            service_name,
        })
    }
}

/// The OTLP/HTTP exporter of `(traces endpoint, base endpoint)`: the traces endpoint as it is,
/// else the base with `/v1/traces`, as the specification builds it.
fn otlp_http(endpoints: (Option<String>, Option<String>)) -> Exporter {
    match endpoints {
        (Some(url), _) => Exporter::Otlp(url),
        (None, Some(base)) => Exporter::Otlp(format!("{}/v1/traces", base.trim_end_matches('/'))),
        (None, None) => Exporter::None,
    }
}

/// Whether spans are made: true once [`Export::start`] set up an exporter.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// True when this process exports spans; when false, the services make none and pass the
/// trace context they received on unchanged, as they did before spans existed.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// The running export: the tracer provider whose batch thread sends the spans, and for OTLP over
/// gRPC the runtime the gRPC connection runs on.
#[derive(Debug)]
pub struct Export {
    provider: SdkTracerProvider,
    grpc_runtime: Option<tokio::runtime::Runtime>,
}

/// How long a clean shutdown waits for the last spans to be sent.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a clean shutdown then waits for the gRPC connection's tasks to end.
const GRPC_RUNTIME_STOP: Duration = Duration::from_secs(1);

impl Export {
    /// Builds the exporter `config` names; `None` when it names none. The caller reports an
    /// exporter that cannot be built and runs without it: spans are a diagnostic, and a
    /// collector that is down must not stop an order. Call it outside an async runtime: the
    /// exporters' blocking HTTP clients must not be dropped on one.
    pub fn start(config: &OtelConfig) -> Result<Option<(Self, Tracer)>, String> {
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .build();
        let builder = SdkTracerProvider::builder().with_resource(resource);
        let mut grpc_runtime = None;
        let builder = match &config.exporter {
            Exporter::None => return Ok(None),
            Exporter::Unusable(why) => return Err(why.clone()),
            Exporter::Otlp(url) => builder.with_batch_exporter(
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpBinary)
                    .with_endpoint(url)
                    .build()
                    .map_err(|e| format!("building the OTLP exporter for {url} failed: {e}"))?,
            ),
            Exporter::OtlpGrpc(url) => {
                // The gRPC client needs a Tokio runtime for its connection, and the service's
                // own runtime starts later and may have one thread: one small runtime of the
                // export's own, kept until shutdown.
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("otlp-grpc")
                    .enable_all()
                    .build()
                    .map_err(|e| format!("the OTLP/gRPC exporter's runtime: {e}"))?;
                let exporter = {
                    let _entered = runtime.enter();
                    opentelemetry_otlp::SpanExporter::builder()
                        .with_tonic()
                        .with_endpoint(url)
                        .build()
                        .map_err(|e| {
                            format!("building the OTLP/gRPC exporter for {url} failed: {e}")
                        })?
                };
                grpc_runtime = Some(runtime);
                builder.with_batch_exporter(exporter)
            }
            // Deprecated upstream in favour of Zipkin's own OTLP intake, the zipkin-module-otel
            // collector, which Maven Central does not serve here: this is the only way into
            // the Zipkin server that scripts/run.sh starts.
            #[allow(deprecated)]
            Exporter::Zipkin(url) => builder.with_batch_exporter(
                opentelemetry_zipkin::ZipkinExporter::builder()
                    .with_http_client(Named::new(&config.service_name)?)
                    .with_collector_endpoint(url)
                    .build()
                    .map_err(|e| format!("building the Zipkin exporter for {url} failed: {e}"))?,
            ),
        };
        let provider = builder.build();
        let tracer = provider.tracer("service-kit");
        EXPORTING.store(true, Ordering::Relaxed);
        Ok(Some((
            Self {
                provider,
                grpc_runtime,
            },
            tracer,
        )))
    }

    /// Sends what is still buffered, waiting at most 5 s, and stops the export thread.
    pub fn shutdown(self) {
        EXPORTING.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
            tracing::warn!("sending the last spans failed: {e}");
        }
        // After the flush, which needs it; a connection still open must not hold up the exit.
        if let Some(runtime) = self.grpc_runtime {
            runtime.shutdown_timeout(GRPC_RUNTIME_STOP);
        }
    }
}

/// How long one export to Zipkin may take (the exporter's own default).
const ZIPKIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The Zipkin exporter's HTTP client, which names the service on every span it sends:
/// opentelemetry-zipkin 0.33 writes no `localEndpoint.serviceName` (it once took one and no
/// longer reads the resource's), and Zipkin files a span without one under no service.
#[derive(Debug)]
struct Named {
    client: reqwest::blocking::Client,
    service: String,
}

impl Named {
    fn new(service: &str) -> Result<Self, String> {
        // Built on a thread of its own: reqwest's blocking client starts a runtime, which must
        // not happen on a thread that runs one.
        let client = std::thread::spawn(|| {
            reqwest::blocking::Client::builder()
                .timeout(ZIPKIN_TIMEOUT)
                .build()
        })
        .join()
        .map_err(|_| "the Zipkin exporter's HTTP client panicked".to_owned())?
        .map_err(|e| format!("the Zipkin exporter's HTTP client: {e}"))?;
        Ok(Self {
            client,
            service: service.to_owned(),
        })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Named {
    async fn send_bytes(
        &self,
        mut request: axum::http::Request<axum::body::Bytes>,
    ) -> Result<axum::http::Response<axum::body::Bytes>, opentelemetry_http::HttpError> {
        if let Ok(mut spans) = serde_json::from_slice::<Vec<serde_json::Value>>(request.body()) {
            for span in &mut spans {
                span["localEndpoint"]["serviceName"] = self.service.as_str().into();
            }
            *request.body_mut() = serde_json::to_vec(&spans)?.into();
        }
        self.client.send_bytes(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exporter_comes_from_the_standard_variables() {
        let read = |pairs: &[(&str, &str)]| {
            OtelConfig::from_vars(&Vars::from_pairs(pairs), "order-service").map(|c| c.exporter)
        };
        let otlp = (env::OTEL_EXPORTER_OTLP_ENDPOINT, "http://collector:4318/");
        for (pairs, want) in [
            (&[][..], Exporter::None),
            (
                &[otlp][..],
                Exporter::Otlp("http://collector:4318/v1/traces".to_owned()),
            ),
            (
                &[
                    otlp,
                    (env::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "http://c:1/spans"),
                ][..],
                Exporter::Otlp("http://c:1/spans".to_owned()),
            ),
            (
                &[otlp, (env::OTEL_TRACES_EXPORTER, "none")][..],
                Exporter::None,
            ),
            (
                &[otlp, (env::OTEL_SDK_DISABLED, "true")][..],
                Exporter::None,
            ),
            (
                &[(env::OTEL_TRACES_EXPORTER, "zipkin")][..],
                Exporter::Zipkin(DEFAULT_ZIPKIN_ENDPOINT.to_owned()),
            ),
            (
                &[
                    (env::OTEL_TRACES_EXPORTER, "zipkin"),
                    (
                        env::OTEL_EXPORTER_ZIPKIN_ENDPOINT,
                        "http://127.0.0.1:9411/api/v2/spans",
                    ),
                ][..],
                Exporter::Zipkin("http://127.0.0.1:9411/api/v2/spans".to_owned()),
            ),
        ] {
            assert_eq!(read(pairs).unwrap(), want, "{pairs:?}");
        }
        for (name, bad) in [
            (env::OTEL_TRACES_EXPORTER, "jaeger"),
            (env::OTEL_SDK_DISABLED, "maybe"),
        ] {
            let err = read(&[otlp, (name, bad)]).unwrap_err();
            assert_eq!(err.name, name, "{bad}");
        }
        // A protocol the services lack is no reason not to start; the variable is named.
        for name in [
            env::OTEL_EXPORTER_OTLP_PROTOCOL,
            env::OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
        ] {
            let exporter = read(&[otlp, (name, "http/json")]).unwrap();
            let want = format!(r#"{name}="http/json": only http/protobuf and grpc are built in"#);
            assert_eq!(exporter, Exporter::Unusable(want));
            assert!(
                matches!(Export::start(&OtelConfig { exporter, service_name: "s".into() }), Err(e) if e.contains(name))
            );
        }
        let kept = read(&[otlp, (env::OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf")]).unwrap();
        assert_eq!(
            kept,
            Exporter::Otlp("http://collector:4318/v1/traces".to_owned())
        );
    }

    #[test]
    fn grpc_is_what_the_container_apps_agent_injects_and_is_used_as_given() {
        let read = |pairs: &[(&str, &str)]| {
            OtelConfig::from_vars(&Vars::from_pairs(pairs), "order-service")
                .unwrap()
                .exporter
        };
        // The pair Azure Container Apps injects (its documented example value), used as is:
        // gRPC has no /v1/traces path.
        let agent = [
            (
                env::OTEL_EXPORTER_OTLP_ENDPOINT,
                "http://otel.service.k8se-apps:4317/",
            ),
            (env::OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"),
        ];
        let grpc = |url: &str| Exporter::OtlpGrpc(url.to_owned());
        assert_eq!(read(&agent), grpc("http://otel.service.k8se-apps:4317/"));
        let traces = (env::OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "http://c:4317");
        assert_eq!(read(&[agent[0], agent[1], traces]), grpc("http://c:4317"));
        // The traces protocol wins over the general one, either way round.
        let traces_http = (env::OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "http/protobuf");
        assert_eq!(
            read(&[agent[0], agent[1], traces_http]),
            Exporter::Otlp("http://otel.service.k8se-apps:4317/v1/traces".to_owned())
        );
        let traces_grpc = (env::OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "grpc");
        let http = (env::OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf");
        assert_eq!(
            read(&[agent[0], http, traces_grpc]),
            grpc("http://otel.service.k8se-apps:4317/")
        );
        // The protocol alone names no collector: nothing is exported.
        assert_eq!(read(&[agent[1]]), Exporter::None);
        assert_eq!(
            read(&[agent[0], agent[1], (env::OTEL_TRACES_EXPORTER, "none")]),
            Exporter::None
        );
    }

    #[test]
    fn an_unusable_grpc_endpoint_is_refused_when_export_starts() {
        // No TLS stack is built in (as for the sidecar): an https:// collector is reported, and
        // the service runs without export, as for any exporter that cannot be built.
        let config = OtelConfig {
            exporter: Exporter::OtlpGrpc("https://collector:4317".to_owned()),
            service_name: "s".into(),
        };
        let err = Export::start(&config).unwrap_err();
        assert!(err.contains("https://collector:4317"), "{err}");
    }

    #[test]
    fn the_service_name_is_otel_service_name_else_the_app_id_else_the_service() {
        let name = |pairs: &[(&str, &str)]| {
            OtelConfig::from_vars(&Vars::from_pairs(pairs), "checkout")
                .unwrap()
                .service_name
        };
        assert_eq!(name(&[]), "checkout");
        assert_eq!(name(&[(env::APP_ID, "checkout-2")]), "checkout-2");
        let both = [
            (env::APP_ID, "checkout-2"),
            (env::OTEL_SERVICE_NAME, "shop"),
        ];
        assert_eq!(name(&both), "shop");
    }
}
