//! The middleware stack every service's router gets, the health endpoint, the API-token check,
//! and binding and serving the listener.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use crate::dapr::DAPR_API_TOKEN_HEADER;
use crate::env::{ConfigError, Secret, Vars};
use crate::error::ApiError;

/// Path of the health endpoint (Dapr's default app health check path, and the container probe).
pub const HEALTH_PATH: &str = "/healthz";
/// How long graceful shutdown waits for in-flight requests before the server stops anyway, so
/// that one stuck request cannot hold shutdown forever. (Bounding shutdown rather than every
/// request keeps a timer off the hot path: a per-request `tokio::time::Sleep` costs a timer-wheel
/// lock and usually a wake-up of the I/O driver, tokio-rs/tokio#5207. Calls to the sidecar have
/// their own timeout in `DaprClient`.)
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Settings every service's HTTP side shares.
#[derive(Debug, Clone, Default)]
pub struct HttpConfig {
    /// When set, every request but the health check must carry it as `dapr-api-token`.
    pub app_api_token: Option<Secret>,
}

impl HttpConfig {
    /// Reads `APP_API_TOKEN`.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            app_api_token: vars.secret(crate::env::APP_API_TOKEN),
        })
    }
}

/// Adds `/healthz`, JSON answers for unknown paths and methods, the API-token check (when
/// configured) and request tracing to a service's routes.
pub fn finish(routes: Router, config: &HttpConfig) -> Router {
    let mut router = routes
        .route(HEALTH_PATH, get(healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    if let Some(token) = &config.app_api_token {
        router = router.layer(middleware::from_fn_with_state(
            Arc::new(token.clone()),
            require_api_token,
        ));
    }
    router.layer(TraceLayer::new_for_http())
}

/// `GET /healthz`: 200 while the process serves requests.
pub async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}", uri.path()),
    )
}

/// Refuses requests whose `dapr-api-token` does not match `APP_API_TOKEN`. The sidecar adds
/// the token to everything it sends the app (invocations, deliveries, `/dapr/subscribe`) but
/// not to its health probes, so `GET /healthz` stays open.
async fn require_api_token(
    State(expected): State<Arc<Secret>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() == Method::GET && request.uri().path() == HEALTH_PATH {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(DAPR_API_TOKEN_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    // Constant-time, so response timing does not reveal how much of a guess was right.
    if bool::from(presented.ct_eq(expected.expose().as_bytes())) {
        next.run(request).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid dapr-api-token header",
        )
        .into_response()
    }
}

/// Why the listener could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source} (is another process using port {}? set {var} to another port)", addr.port())]
pub struct BindError {
    addr: SocketAddr,
    var: &'static str,
    #[source]
    source: std::io::Error,
}

/// Listens on all interfaces at `port`, which came from environment variable `var`.
pub async fn bind(port: u16, var: &'static str) -> Result<TcpListener, BindError> {
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, var, source })
}

/// Runs an HTTP service the way all of them run: builds its router, listens on all interfaces
/// at `port` (which came from `APP_PORT`), serves until SIGINT or SIGTERM and lets in-flight
/// requests end. A failure is logged; the result is the process's exit status.
pub async fn run(
    service: &str,
    port: u16,
    router: impl FnOnce() -> Result<Router, Box<dyn std::error::Error>>,
) -> std::process::ExitCode {
    let result = async {
        let router = router()?;
        let listener = bind(port, crate::env::APP_PORT).await?;
        serve(listener, router, crate::shutdown::shutdown_signal()).await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    };
    match result.await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{service} failed: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight requests end,
/// for at most [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "listening");
    }
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping.send(true);
    });
    let grace = async move {
        let _ = stopped.wait_for(|s| *s).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result,
        () = grace => {
            tracing::warn!("requests still in flight {SHUTDOWN_GRACE:?} after the stop signal; stopping anyway");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::post;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn app(token: Option<&str>) -> Router {
        let routes = Router::new().route("/orders", post(|| async { "ok" }));
        finish(
            routes,
            &HttpConfig {
                app_api_token: token.map(Secret::new),
            },
        )
    }

    async fn call(app: Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    #[tokio::test]
    async fn health_answers_200() {
        let req = Request::get("/healthz").body(Body::empty()).unwrap();
        let (status, body) = call(app(None), req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ok");
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_get_json_errors() {
        let (status, body) = call(
            app(None),
            Request::get("/nope").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "not_found");
        let (status, body) = call(
            app(None),
            Request::get("/orders").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["message"], "GET is not allowed on /orders");
    }

    #[tokio::test]
    async fn with_a_token_configured_calls_without_it_get_401() {
        for header in [None, Some("wrong"), Some("s3cret-but-longer")] {
            let mut req = Request::post("/orders");
            if let Some(h) = header {
                req = req.header(DAPR_API_TOKEN_HEADER, h);
            }
            let (status, body) = call(app(Some("s3cret")), req.body(Body::empty()).unwrap()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{header:?}");
            assert_eq!(body["error"], "unauthorized");
        }
    }

    #[tokio::test]
    async fn with_a_token_configured_the_right_token_passes_and_health_stays_open() {
        let req = Request::post("/orders")
            .header(DAPR_API_TOKEN_HEADER, "s3cret")
            .body(Body::empty())
            .unwrap();
        let resp = app(Some("s3cret")).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let req = Request::get("/healthz").body(Body::empty()).unwrap();
        assert_eq!(call(app(Some("s3cret")), req).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn bind_errors_name_the_port_and_the_variable() {
        let taken = TcpListener::bind("0.0.0.0:0").await.unwrap();
        let port = taken.local_addr().unwrap().port();
        let err = bind(port, "APP_PORT").await.unwrap_err().to_string();
        assert!(
            err.contains(&port.to_string()) && err.contains("APP_PORT"),
            "{err}"
        );
    }
}
