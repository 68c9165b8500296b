//! The middleware stack every service's router gets, the health endpoint, the API-token check,
//! and binding and serving the listener.
//!
//! # Who may call a route
//! Each service hands [`finish`] two routers: its **public** API, which anyone who reaches the
//! app may call, and its **sidecar-only** routes, which only its own Dapr sidecar calls
//! (service invocation, `/dapr/subscribe`, event deliveries). When `APP_API_TOKEN` is set, the
//! sidecar-only routes refuse requests without the sidecar's `dapr-api-token`; public routes
//! never ask for it. The split exists because Azure Container Apps sets `APP_API_TOKEN` on every
//! Dapr-enabled app but sends external ingress traffic straight to the app port, past the
//! sidecar: a token on every route would refuse every public caller there.

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
use tower_http::trace::{DefaultOnResponse, OnResponse as _, TraceLayer};

use crate::dapr::DAPR_API_TOKEN_HEADER;
use crate::env::{self, ConfigError, Secret, Vars};
use crate::error::ApiError;
use crate::trace;

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
    /// When set, requests to sidecar-only routes must carry it as `dapr-api-token`.
    pub app_api_token: Option<Secret>,
}

impl HttpConfig {
    /// Reads `APP_API_TOKEN`, and `APP_API_TOKEN_REQUIRED` (default false): when that is true,
    /// a missing or empty `APP_API_TOKEN` is a configuration error, so that a deployment that
    /// counts on the token can never start with its sidecar-only routes open.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let app_api_token = vars.secret(env::APP_API_TOKEN);
        let required = vars.bool_or(env::APP_API_TOKEN_REQUIRED, false)?;
        if required && app_api_token.is_none() {
            let token = env::APP_API_TOKEN;
            return Err(ConfigError::new(
                env::APP_API_TOKEN_REQUIRED,
                "true",
                format!(
                    "{token} is unset or empty, so the routes only the Dapr sidecar may call \
                     would be open to anyone; set {token} (Dapr and Azure Container Apps set it \
                     for the sidecar) or set {}=false",
                    env::APP_API_TOKEN_REQUIRED
                ),
            ));
        }
        Ok(Self { app_api_token })
    }
}

/// Joins a service's `public` routes (anyone may call them) and its `sidecar_only` routes (with
/// `APP_API_TOKEN` set, only a caller with the sidecar's `dapr-api-token` may), and adds
/// `/healthz` (always open: Dapr's and the platform's health probes carry no token), JSON
/// answers for unknown paths and methods, and request tracing. One path may have public and
/// sidecar-only methods (say `GET` public, `POST` sidecar-only); a method on both panics.
pub fn finish(public: Router, sidecar_only: Router, config: &HttpConfig) -> Router {
    let sidecar_only = match &config.app_api_token {
        // `route_layer`, not `layer`: a request that matches no sidecar-only route must go on
        // to its public route or the JSON 404/405, never to a 401.
        Some(token) if sidecar_only.has_routes() => sidecar_only.route_layer(
            middleware::from_fn_with_state(Arc::new(token.clone()), require_api_token),
        ),
        _ => sidecar_only,
    };
    public
        .merge(sidecar_only)
        .route(HEALTH_PATH, get(healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(trace::server_span)
                .on_response(
                    |response: &Response, latency: Duration, span: &tracing::Span| {
                        trace::record_response(span, response.status());
                        DefaultOnResponse::default().on_response(response, latency, span);
                    },
                ),
        )
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
/// the token to everything it sends the app (invocations, deliveries, `/dapr/subscribe`).
async fn require_api_token(
    State(expected): State<Arc<Secret>>,
    request: Request,
    next: Next,
) -> Response {
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

/// Serves `router` on `listener` until `shutdown` completes, then lets in-flight requests end,
/// for at most `grace` (the services pass [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "listening");
    }
    let (stopping, mut stopped) = tokio::sync::watch::channel(false);
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = stopping.send(true);
    });
    let after_grace = async move {
        let _ = stopped.wait_for(|s| *s).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        result = server => result,
        () = after_grace => {
            tracing::warn!("requests still in flight {grace:?} after the stop signal; stopping anyway");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::post;

    use test_kit::{call, call_text as text};

    /// `GET /items` and `GET /items/{id}` public; `POST /items/{id}` (same path as a public
    /// route) and `POST /orders` sidecar-only.
    fn app(token: Option<&str>) -> Router {
        let public = Router::new()
            .route("/items", get(|| async { "public list" }))
            .route("/items/{id}", get(|| async { "public read" }));
        let sidecar_only = Router::new()
            .route("/items/{id}", post(|| async { "sidecar write" }))
            .route("/orders", post(|| async { "sidecar delivery" }));
        finish(
            public,
            sidecar_only,
            &HttpConfig {
                app_api_token: token.map(Secret::new),
            },
        )
    }

    fn request(method: Method, uri: &str, token: Option<&str>) -> Request<Body> {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header(DAPR_API_TOKEN_HEADER, t);
        }
        req.body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_get_json_errors_with_or_without_a_token_configured() {
        for token in [None, Some("s3cret")] {
            let (status, body) = call(app(token), request(Method::GET, "/nope", None)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{token:?}");
            assert_eq!(body["error"], "not_found");
            // A path with only sidecar-only methods, and one with both kinds.
            for (method, uri, message) in [
                (Method::GET, "/orders", "GET is not allowed on /orders"),
                (Method::PUT, "/items/a", "PUT is not allowed on /items/a"),
            ] {
                let (status, body) = call(app(token), request(method, uri, None)).await;
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{token:?}");
                assert_eq!(body["message"], message);
            }
        }
    }

    #[tokio::test]
    async fn without_a_token_configured_every_route_is_open() {
        for (method, uri) in [
            (Method::GET, "/items/a"),
            (Method::POST, "/items/a"),
            (Method::POST, "/orders"),
        ] {
            let (status, _) = text(app(None), request(method.clone(), uri, None)).await;
            assert_eq!(status, StatusCode::OK, "{method} {uri}");
        }
    }

    #[tokio::test]
    async fn with_a_token_configured_sidecar_only_routes_refuse_a_missing_or_wrong_token() {
        for (method, uri) in [(Method::POST, "/items/a"), (Method::POST, "/orders")] {
            for header in [None, Some("wrong"), Some("s3cret-but-longer"), Some("")] {
                let (status, body) =
                    call(app(Some("s3cret")), request(method.clone(), uri, header)).await;
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {uri} {header:?}"
                );
                assert_eq!(body["error"], "unauthorized");
                assert_eq!(body["message"], "missing or invalid dapr-api-token header");
            }
        }
    }

    #[tokio::test]
    async fn with_a_token_configured_sidecar_only_routes_accept_the_right_one() {
        for (uri, expected) in [
            ("/items/a", "sidecar write"),
            ("/orders", "sidecar delivery"),
        ] {
            let req = request(Method::POST, uri, Some("s3cret"));
            let (status, body) = text(app(Some("s3cret")), req).await;
            assert_eq!((status, body.as_str()), (StatusCode::OK, expected), "{uri}");
        }
    }

    #[tokio::test]
    async fn with_a_token_configured_public_routes_and_health_need_none() {
        for (uri, expected) in [("/items", "public list"), ("/items/a", "public read")] {
            for header in [None, Some("wrong"), Some("s3cret")] {
                let (status, body) =
                    text(app(Some("s3cret")), request(Method::GET, uri, header)).await;
                assert_eq!(
                    (status, body.as_str()),
                    (StatusCode::OK, expected),
                    "{uri} {header:?}"
                );
            }
        }
        for token in [None, Some("s3cret")] {
            let (status, body) = call(app(token), request(Method::GET, "/healthz", None)).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body["status"], "ok");
        }
    }

    #[tokio::test]
    async fn a_service_without_sidecar_only_routes_works_with_a_token_configured() {
        let public = Router::new().route("/order", post(|| async { "placed" }));
        let config = HttpConfig {
            app_api_token: Some(Secret::new("s3cret")),
        };
        let (status, body) = text(
            finish(public, Router::new(), &config),
            request(Method::POST, "/order", None),
        )
        .await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "placed"));
    }

    #[test]
    fn the_token_can_be_required_and_then_must_be_set() {
        let config = |pairs: &[_]| HttpConfig::from_vars(&Vars::from_pairs(pairs));
        let required = (env::APP_API_TOKEN_REQUIRED, "true");
        assert!(config(&[]).unwrap().app_api_token.is_none());
        let not_required = config(&[(env::APP_API_TOKEN_REQUIRED, "false")]).unwrap();
        assert!(not_required.app_api_token.is_none());
        let token = config(&[required, (env::APP_API_TOKEN, "t")])
            .unwrap()
            .app_api_token;
        assert_eq!(token.unwrap().expose(), "t");
        for pairs in [&[required][..], &[required, (env::APP_API_TOKEN, "  ")]] {
            let err = config(pairs).unwrap_err().to_string();
            let want = r#"invalid APP_API_TOKEN_REQUIRED="true": APP_API_TOKEN is unset or empty"#;
            assert!(err.starts_with(want), "{err}");
        }
        let err = config(&[(env::APP_API_TOKEN_REQUIRED, "yes")]).unwrap_err();
        assert_eq!(err.name, env::APP_API_TOKEN_REQUIRED);
    }

    #[tokio::test]
    async fn serve_returns_after_the_grace_even_with_a_request_that_never_ends() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let started = Arc::new(tokio::sync::Notify::new());
        let handler_started = started.clone();
        let router = Router::new().route(
            "/hang",
            get(move || async move {
                handler_started.notify_one();
                std::future::pending::<()>().await;
            }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let grace = Duration::from_millis(100);
        let server = tokio::spawn(serve(
            listener,
            router,
            async { drop(stopped.await) },
            grace,
        ));
        let _client = tokio::spawn(reqwest::get(format!("http://{addr}/hang")));
        started.notified().await;
        stop.send(()).unwrap();
        let ended = tokio::time::timeout(Duration::from_secs(5), server).await;
        assert!(ended.is_ok(), "serve still waits on the stuck request");
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
