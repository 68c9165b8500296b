//! Test helpers for the services: calling an app the way
//! `app().oneshot(...)` tests do, a client for a `wiremock` stand-in for the sidecar, and
//! capturing what a service logs, so a test can check its exact log lines; [`spans`]: the
//! spans a service exports, as an OTLP receiver gets them.

pub mod spans;

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use tracing_subscriber::prelude::*;

use service_kit::DaprClient;
use service_kit::dapr::DaprConfig;
use service_kit::telemetry::{self, LogFormat};

/// Sends `request` to `app` and returns the status and the body as text.
///
/// # Panics
/// When the app fails to answer or the body cannot be read: a failed test.
#[allow(clippy::unwrap_used)]
pub async fn call_text(app: Router, request: Request<Body>) -> (StatusCode, String) {
    let resp = app.oneshot(request).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// Sends `request` to `app` and returns the status and the body as JSON (`null` when the body
/// is not JSON).
pub async fn call(app: Router, request: Request<Body>) -> (StatusCode, Value) {
    let (status, text) = call_text(app, request).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A client for the stand-in sidecar `sidecar`, with default timeouts.
pub fn client(sidecar: &MockServer) -> DaprClient {
    client_for(&sidecar.uri(), |_| {})
}

/// A client for the sidecar at `url`, with the default configuration changed by `change`.
///
/// # Panics
/// When the client cannot be built: a failed test.
#[allow(clippy::unwrap_used)]
pub fn client_for(url: &str, change: impl FnOnce(&mut DaprConfig)) -> DaprClient {
    let mut config = DaprConfig::for_url(url);
    change(&mut config);
    DaprClient::new(&config).unwrap()
}

/// The URL of a port nothing listens on (a dropped `MockServer` would keep listening: it is
/// pooled).
///
/// # Panics
/// When no port can be bound: a failed test.
#[allow(clippy::unwrap_used)]
pub fn unreachable_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// A stand-in sidecar that is ready (`GET /v1.0/healthz/outbound` answers 204).
pub async fn ready_sidecar() -> MockServer {
    sidecar_with_health(204).await
}

/// A stand-in sidecar whose `GET /v1.0/healthz/outbound` answers `status`.
pub async fn sidecar_with_health(status: u16) -> MockServer {
    let sidecar = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1.0/healthz/outbound"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&sidecar)
        .await;
    sidecar
}

/// The JSON bodies of the POSTs `sidecar` received on `at`, in order.
///
/// # Panics
/// When a body is not JSON: a failed test.
#[allow(clippy::unwrap_used)]
pub async fn posted(sidecar: &MockServer, at: &str) -> Vec<Value> {
    sidecar
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == at)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// Log output captured for the current thread.
#[derive(Debug, Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// For each line containing `marker`, the line from `marker` on (without the timestamp and
    /// level in front).
    pub fn lines_from(&self, marker: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter_map(|line| line.find(marker).map(|i| line[i..].to_owned()))
            .collect()
    }
}

impl io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Captures the logs of the current thread, in the services' text format, until the guard is
/// dropped. Use it in a test on Tokio's current-thread runtime, so all the work logs here.
pub fn capture_logs() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::INFO)
        .with(telemetry::layer(
            LogFormat::Text,
            move || writer.clone(),
            false,
        ));
    (logs, tracing::subscriber::set_default(subscriber))
}
