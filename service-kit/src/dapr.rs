//! A typed client for the Dapr sidecar's HTTP API, over one shared `reqwest::Client`.
//!
//! Every call has a timeout, carries `dapr-api-token` when `DAPR_API_TOKEN` is set and the
//! caller's W3C trace context when there is one, and fails with a [`DaprError`] that says whether
//! the sidecar was unreachable, too slow, or answered with an error status (and what it said).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderValue, Method, StatusCode};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, PercentEncode, utf8_percent_encode};
use reqwest::header::{CONTENT_TYPE, ETAG};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::Instrument as _;

use crate::env::{self, ConfigError, Secret, Vars};
use crate::trace::TraceContext;

/// Dapr's default sidecar HTTP port.
pub const DEFAULT_DAPR_HTTP_PORT: u16 = 3500;
/// Default timeout of one sidecar call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default wait for the sidecar at start-up (the Dapr SDKs' default).
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Header that routes a proxied call to an app, and header that carries the API token.
pub const DAPR_APP_ID: &str = "dapr-app-id";
/// Header that carries the API token, both ways.
pub const DAPR_API_TOKEN_HEADER: &str = "dapr-api-token";
/// How much of an error body is kept in a [`DaprError`].
const MAX_ERROR_BODY: usize = 512;

/// Where the sidecar is and how to talk to it.
#[derive(Clone, Debug)]
pub struct DaprConfig {
    /// Base URL of the sidecar's HTTP API, without a trailing slash.
    pub base_url: String,
    /// Sent as `dapr-api-token` when set.
    pub api_token: Option<Secret>,
    /// Timeout of each call.
    pub timeout: Duration,
    /// How long [`DaprClient::wait_until_ready`] waits.
    pub ready_timeout: Duration,
}

impl DaprConfig {
    /// Reads `DAPR_HTTP_ENDPOINT` (else `http://127.0.0.1:$DAPR_HTTP_PORT`, port 3500 by
    /// default), `DAPR_API_TOKEN`, `DAPR_HTTP_TIMEOUT_SECONDS` and `DAPR_HEALTH_TIMEOUT`.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        let base_url = match vars.get(env::DAPR_HTTP_ENDPOINT) {
            Some(endpoint) => parse_endpoint(&endpoint)?,
            None => {
                let port = vars.port_or(env::DAPR_HTTP_PORT, DEFAULT_DAPR_HTTP_PORT)?;
                format!("http://127.0.0.1:{port}")
            }
        };
        let timeout = vars.seconds_or(env::DAPR_HTTP_TIMEOUT_SECONDS, DEFAULT_TIMEOUT)?;
        if timeout.is_zero() {
            return Err(ConfigError::new(
                env::DAPR_HTTP_TIMEOUT_SECONDS,
                "0",
                "must be at least 1 second",
            ));
        }
        Ok(Self {
            base_url,
            api_token: vars.secret(env::DAPR_API_TOKEN),
            timeout,
            ready_timeout: vars.seconds_or(env::DAPR_HEALTH_TIMEOUT, DEFAULT_READY_TIMEOUT)?,
        })
    }

    /// A configuration for a sidecar at `base_url` with default timeouts (for tests).
    pub fn for_url(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            api_token: None,
            timeout: DEFAULT_TIMEOUT,
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }
}

fn parse_endpoint(raw: &str) -> Result<String, ConfigError> {
    let bad = |problem: &str| ConfigError::new(env::DAPR_HTTP_ENDPOINT, raw, problem);
    let url = reqwest::Url::parse(raw)
        .map_err(|e| bad(&format!("not a URL ({e}); expected http://host:port")))?;
    if url.scheme() != "http" {
        return Err(bad(
            "only http:// is supported: the sidecar runs beside the app, and these \
             services are built without a TLS stack",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Why a call to the sidecar failed.
#[derive(Debug, thiserror::Error)]
pub enum DaprError {
    /// The HTTP client could not be built.
    #[error("building the HTTP client failed: {0}")]
    Client(#[source] reqwest::Error),
    /// No connection, or the connection broke before an answer came.
    #[error("the Dapr sidecar at {url} is unreachable: {source}")]
    Unreachable {
        /// The URL called.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// No answer within the configured timeout.
    #[error("the Dapr sidecar did not answer {url} within {after:?}")]
    Timeout {
        /// The URL called.
        url: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// The sidecar (or, for invocation, the called app) answered with a non-2xx status.
    #[error("{url} answered {status}{}: {body}", error_code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Status {
        /// The URL called.
        url: String,
        /// The status.
        status: StatusCode,
        /// Dapr's `errorCode`, when the body is a Dapr error.
        error_code: Option<String>,
        /// The start of the body.
        body: String,
    },
    /// A bulk read answered, but not for this key.
    #[error("{url} could not read {key}: {error}")]
    BulkItem {
        /// The URL called.
        url: String,
        /// The key.
        key: String,
        /// What the store said, or that the key was missing from the answer.
        error: String,
    },
    /// The sidecar did not become ready in time.
    #[error("the Dapr sidecar at {url} was not ready after {waited:?} (last answer: {last})")]
    NotReady {
        /// The base URL.
        url: String,
        /// How long we waited.
        waited: Duration,
        /// What the last probe saw.
        last: String,
    },
    /// A 2xx answer whose body could not be decoded.
    #[error("unexpected answer from {url}: {source}")]
    Decode {
        /// The URL called.
        url: String,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
}

impl DaprError {
    /// The HTTP status, when the sidecar answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// An optimistic-concurrency conflict (409: the ETag no longer matches).
    pub fn is_conflict(&self) -> bool {
        self.status() == Some(StatusCode::CONFLICT)
    }
}

/// An answer from an invoked app, passed through the sidecar unchanged.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The app's status.
    pub status: StatusCode,
    /// The app's body.
    pub body: Bytes,
}

/// A value read from a state store.
#[derive(Debug, Clone)]
pub struct StateEntry<T> {
    /// The stored value.
    pub value: T,
    /// Its ETag; pass it back on save for optimistic concurrency.
    pub etag: Option<String>,
}

/// Optimistic concurrency mode of a state write.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum Concurrency {
    /// The write fails when the ETag does not match; without an ETag it only creates.
    #[serde(rename = "first-write")]
    FirstWrite,
    /// The write wins.
    #[serde(rename = "last-write")]
    LastWrite,
}

/// One item of a state save. The value is anything that serializes to JSON (a
/// [`serde_json::Value`] by default); it is written straight into the request body, without
/// building a `Value` tree first.
#[derive(Debug, Clone, Serialize)]
pub struct StateWrite<'a, V = Value> {
    /// The key.
    pub key: &'a str,
    /// The value.
    pub value: V,
    /// The expected ETag, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<&'a str>,
    /// Concurrency options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<WriteOptions>,
    /// Component metadata (for example `partitionKey`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<&'a str, &'a str>,
}

/// The `options` object of a state write.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WriteOptions {
    /// The concurrency mode.
    pub concurrency: Concurrency,
}

/// A client for one sidecar. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct DaprClient {
    http: reqwest::Client,
    base_url: String,
    api_token: Option<HeaderValue>,
    timeout: Duration,
    ready_timeout: Duration,
}

impl DaprClient {
    /// A client for the sidecar described by `config`.
    pub fn new(config: &DaprConfig) -> Result<Self, DaprError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(2)))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(DaprError::Client)?;
        let api_token = config
            .api_token
            .as_ref()
            .and_then(|t| HeaderValue::from_str(t.expose()).ok())
            .map(|mut v| {
                v.set_sensitive(true);
                v
            });
        Ok(Self {
            http,
            base_url: config.base_url.clone(),
            api_token,
            timeout: config.timeout,
            ready_timeout: config.ready_timeout,
        })
    }

    /// The sidecar's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Waits until the sidecar answers `GET /v1.0/healthz/outbound` with 204, polling every
    /// 200 ms for at most the configured ready timeout.
    ///
    /// The outbound endpoint, not `/v1.0/healthz`, is the right one before the app listens:
    /// the sidecar reports full health only after it has reached the app's port, so an app
    /// that waited on that before listening would wait forever.
    pub async fn wait_until_ready(&self) -> Result<(), DaprError> {
        let url = format!("{}/v1.0/healthz/outbound", self.base_url);
        let started = Instant::now();
        loop {
            let last = match self.http.get(&url).send().await {
                Ok(resp) if resp.status().is_success() => return Ok(()),
                Ok(resp) => format!("status {}", resp.status()),
                Err(e) if e.is_connect() => "connection refused".to_owned(),
                Err(e) => e.to_string(),
            };
            if started.elapsed() >= self.ready_timeout {
                return Err(DaprError::NotReady {
                    url: self.base_url.clone(),
                    waited: started.elapsed(),
                    last,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Invokes `path` on app `app_id` by HTTP proxying: the request goes to the sidecar at the
    /// app's own path with a `dapr-app-id` header, as a plain HTTP client would call the app.
    /// A non-2xx answer from the app is an error carrying its status and body.
    pub async fn invoke_via_proxy(
        &self,
        method: Method,
        app_id: &str,
        path: &str,
        json_body: Option<&Value>,
        trace: &TraceContext,
    ) -> Result<Reply, DaprError> {
        let url = format!("{}/{}", self.base_url, path.trim_start_matches('/'));
        let request = self.http.request(method, &url).header(DAPR_APP_ID, app_id);
        let template = format!("/{}", path.trim_start_matches('/'));
        self.exchange(
            request,
            &template,
            url,
            json_body.map(Value::to_string),
            trace,
        )
        .await
    }

    /// Invokes `path` on app `app_id` through `/v1.0/invoke/{app_id}/method/{path}`.
    pub async fn invoke(
        &self,
        method: Method,
        app_id: &str,
        path: &str,
        json_body: Option<&Value>,
        trace: &TraceContext,
    ) -> Result<Reply, DaprError> {
        let url = format!(
            "{}/v1.0/invoke/{}/method/{}",
            self.base_url,
            encode_segment(app_id),
            path.trim_start_matches('/')
        );
        let request = self.http.request(method, &url);
        let template = format!("/v1.0/invoke/{app_id}/method/{{method}}");
        self.exchange(
            request,
            &template,
            url,
            json_body.map(Value::to_string),
            trace,
        )
        .await
    }

    /// Publishes `event` as JSON to `topic` on pub/sub component `pubsub`. Dapr wraps it in a
    /// CloudEvent whose `data` is the event and whose `traceparent` continues `trace`.
    pub async fn publish(
        &self,
        pubsub: &str,
        topic: &str,
        event: &impl Serialize,
        trace: &TraceContext,
    ) -> Result<(), DaprError> {
        let url = format!(
            "{}/v1.0/publish/{}/{}",
            self.base_url,
            encode_segment(pubsub),
            encode_segment(topic)
        );
        let template = format!("/v1.0/publish/{pubsub}/{topic}");
        self.post_json(url, &template, event, trace).await.map(drop)
    }

    /// Reads `key` from state store `store`; `None` when the key does not exist.
    pub async fn get_state<T: DeserializeOwned>(
        &self,
        store: &str,
        key: &str,
        metadata: &[(&str, &str)],
        trace: &TraceContext,
    ) -> Result<Option<StateEntry<T>>, DaprError> {
        let mut url = format!(
            "{}/v1.0/state/{}/{}",
            self.base_url,
            encode_segment(store),
            encode_segment(key)
        );
        append_metadata_query(&mut url, metadata);
        let template = format!("/v1.0/state/{store}/{{key}}");
        let resp = self
            .send(self.http.get(&url), &template, &url, trace)
            .await?;
        let status = resp.status();
        let etag = resp
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = self.read_body(resp, &url).await?;
        match status {
            // Dapr answers 204, which has no body, for a key that does not exist.
            s if s.is_success() && body.is_empty() => Ok(None),
            s if s.is_success() => {
                let value = serde_json::from_slice(&body).map_err(|source| DaprError::Decode {
                    url: url.clone(),
                    source,
                })?;
                Ok(Some(StateEntry { value, etag }))
            }
            s => Err(status_error(url, s, &body)),
        }
    }

    /// Reads `keys` from state store `store` in one call (`POST /v1.0/state/{store}/bulk`), in
    /// the order given; `None` for a key that does not exist. The store may read the keys in
    /// any order, and in parallel: nothing orders one read before another.
    pub async fn get_bulk_state<T: DeserializeOwned>(
        &self,
        store: &str,
        keys: &[&str],
        metadata: &[(&str, &str)],
        trace: &TraceContext,
    ) -> Result<Vec<Option<StateEntry<T>>>, DaprError> {
        #[derive(Deserialize)]
        struct Item<T> {
            key: String,
            data: Option<T>,
            etag: Option<String>,
            #[serde(default)]
            error: String,
        }
        let mut url = format!(
            "{}/v1.0/state/{}/bulk",
            self.base_url,
            encode_segment(store)
        );
        append_metadata_query(&mut url, metadata);
        let template = format!("/v1.0/state/{store}/bulk");
        let body = self
            .post_json(url.clone(), &template, &json!({ "keys": keys }), trace)
            .await?;
        let mut items: Vec<Item<T>> =
            serde_json::from_slice(&body).map_err(|source| DaprError::Decode {
                url: url.clone(),
                source,
            })?;
        keys.iter()
            .map(|key| {
                let at = items.iter().position(|i| i.key == *key).ok_or_else(|| {
                    DaprError::BulkItem {
                        url: url.clone(),
                        key: (*key).to_owned(),
                        error: "missing from the answer".to_owned(),
                    }
                })?;
                let item = items.swap_remove(at);
                if !item.error.is_empty() {
                    return Err(DaprError::BulkItem {
                        url: url.clone(),
                        key: item.key,
                        error: item.error,
                    });
                }
                Ok(item.data.map(|value| StateEntry {
                    value,
                    etag: item.etag,
                }))
            })
            .collect()
    }

    /// Saves `items` to state store `store`. An ETag mismatch is a [`DaprError::Status`] with
    /// status 409 (see [`DaprError::is_conflict`]).
    pub async fn save_state<V: Serialize>(
        &self,
        store: &str,
        items: &[StateWrite<'_, V>],
        trace: &TraceContext,
    ) -> Result<(), DaprError> {
        let url = format!("{}/v1.0/state/{}", self.base_url, encode_segment(store));
        let template = format!("/v1.0/state/{store}");
        self.post_json(url, &template, items, trace).await.map(drop)
    }

    /// Upserts `items` to state store `store` in one state transaction, with request-level
    /// `metadata` (`partitionKey`: Cosmos DB runs a transaction in one partition, named there).
    /// A store may cap the operations of one transaction (Cosmos DB at 100); more are refused.
    pub async fn save_state_transaction<V: Serialize>(
        &self,
        store: &str,
        items: &[StateWrite<'_, V>],
        metadata: &[(&str, &str)],
        trace: &TraceContext,
    ) -> Result<(), DaprError> {
        #[derive(Serialize)]
        struct Upsert<'a, W> {
            operation: &'static str,
            request: &'a W,
        }
        #[derive(Serialize)]
        struct Transaction<'a, W> {
            operations: Vec<Upsert<'a, W>>,
            metadata: BTreeMap<&'a str, &'a str>,
        }
        let body = Transaction {
            operations: items
                .iter()
                .map(|request| Upsert {
                    operation: "upsert",
                    request,
                })
                .collect(),
            metadata: metadata.iter().copied().collect(),
        };
        let url = format!(
            "{}/v1.0/state/{}/transaction",
            self.base_url,
            encode_segment(store)
        );
        let template = format!("/v1.0/state/{store}/transaction");
        self.post_json(url, &template, &body, trace).await.map(drop)
    }

    /// POSTs `body` as JSON to `url` and returns the answer's body; a non-2xx answer is an error
    /// carrying its status and body.
    async fn post_json(
        &self,
        url: String,
        template: &str,
        body: &(impl Serialize + ?Sized),
        trace: &TraceContext,
    ) -> Result<Bytes, DaprError> {
        let body = serde_json::to_vec(body).map_err(|source| DaprError::Decode {
            url: url.clone(),
            source,
        })?;
        let request = self.http.post(&url);
        let reply = self
            .exchange(request, template, url, Some(body), trace)
            .await?;
        Ok(reply.body)
    }

    /// Sends `request`, with `json` as its JSON body when given, and reads the whole answer; a
    /// non-2xx answer is an error carrying its status and body.
    async fn exchange(
        &self,
        mut request: reqwest::RequestBuilder,
        template: &str,
        url: String,
        json: Option<impl Into<reqwest::Body>>,
        trace: &TraceContext,
    ) -> Result<Reply, DaprError> {
        if let Some(body) = json {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let resp = self.send(request, template, &url, trace).await?;
        let status = resp.status();
        let body = self.read_body(resp, &url).await?;
        if status.is_success() {
            Ok(Reply { status, body })
        } else {
            Err(status_error(url, status, &body))
        }
    }

    /// Sends `request` in a client span named after `template` (with spans exported), whose
    /// id is the parent in the `traceparent` the sidecar receives; without export, `trace` is
    /// passed on as it came.
    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
        template: &str,
        url: &str,
        trace: &TraceContext,
    ) -> Result<reqwest::Response, DaprError> {
        if let Some(token) = &self.api_token {
            request = request.header(DAPR_API_TOKEN_HEADER, token.clone());
        }
        let mut request = request.build().map_err(|e| self.transport_error(url, e))?;
        let span = crate::trace::client_span(request.method(), template, request.url(), trace);
        let sent = TraceContext::of_span(&span);
        let sent = if sent.is_valid() { &sent } else { trace };
        sent.inject(request.headers_mut());
        let result = self
            .http
            .execute(request)
            .instrument(span.clone())
            .await
            .map_err(|e| self.transport_error(url, e));
        if !span.is_none() {
            let outcome = match &result {
                Ok(resp) => Ok(resp.status()),
                Err(DaprError::Timeout { .. }) => Err("timeout"),
                Err(_) => Err("unreachable"),
            };
            crate::trace::record_call(&span, outcome);
        }
        result
    }

    async fn read_body(&self, resp: reqwest::Response, url: &str) -> Result<Bytes, DaprError> {
        resp.bytes().await.map_err(|e| self.transport_error(url, e))
    }

    fn transport_error(&self, url: &str, source: reqwest::Error) -> DaprError {
        if source.is_timeout() {
            DaprError::Timeout {
                url: url.to_owned(),
                after: self.timeout,
            }
        } else {
            DaprError::Unreachable {
                url: url.to_owned(),
                source,
            }
        }
    }
}

fn status_error(url: String, status: StatusCode, body: &[u8]) -> DaprError {
    let error_code = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        v.get("errorCode")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let text = String::from_utf8_lossy(body);
    let body = match text.char_indices().nth(MAX_ERROR_BODY) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    };
    DaprError::Status {
        url,
        status,
        error_code,
        body,
    }
}

/// Everything but RFC 3986's unreserved characters, so an encoded value is one path segment.
/// Dapr decodes segments with Go's `QueryUnescape`, where a raw `+` would turn into a space.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode_segment(raw: &str) -> PercentEncode<'_> {
    utf8_percent_encode(raw, SEGMENT)
}

fn append_metadata_query(url: &mut String, metadata: &[(&str, &str)]) {
    for (i, (k, v)) in metadata.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        let _ = write!(url, "metadata.{}={}", encode_segment(k), encode_segment(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Vars;

    #[test]
    fn base_url_is_the_endpoint_else_the_local_port_else_3500() {
        for (pairs, want) in [
            (&[][..], "http://127.0.0.1:3500"),
            (
                &[(env::DAPR_HTTP_PORT, "3501")][..],
                "http://127.0.0.1:3501",
            ),
            // The endpoint wins over the port and loses its trailing slash.
            (
                &[
                    (env::DAPR_HTTP_PORT, "3501"),
                    (env::DAPR_HTTP_ENDPOINT, "http://sidecar:3600/"),
                ][..],
                "http://sidecar:3600",
            ),
        ] {
            let cfg = DaprConfig::from_vars(&Vars::from_pairs(pairs)).unwrap();
            assert_eq!(cfg.base_url, want);
            assert_eq!(cfg.timeout, DEFAULT_TIMEOUT);
            assert!(cfg.api_token.is_none());
        }
    }

    #[test]
    fn a_bad_endpoint_or_a_zero_timeout_is_refused_by_name() {
        for (name, bad) in [
            (env::DAPR_HTTP_ENDPOINT, "not a url"),
            (env::DAPR_HTTP_ENDPOINT, "https://sidecar:3500"),
            (env::DAPR_HTTP_ENDPOINT, "http://x:1/?a=b"),
            (env::DAPR_HTTP_TIMEOUT_SECONDS, "0"),
        ] {
            let err = DaprConfig::from_vars(&Vars::from_pairs(&[(name, bad)])).unwrap_err();
            assert_eq!(err.name, name, "{bad}");
        }
    }

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(
            encode_segment("item:a+b/c d").to_string(),
            "item%3Aa%2Bb%2Fc%20d"
        );
        assert_eq!(encode_segment("Order-1_x.y~").to_string(), "Order-1_x.y~");
    }

    #[test]
    fn status_errors_keep_dapr_error_codes_and_cut_long_bodies() {
        let err = status_error(
            "u".to_owned(),
            StatusCode::NOT_FOUND,
            br#"{"errorCode":"ERR_PUBSUB_NOT_FOUND","message":"pubsub x is not found"}"#,
        );
        assert!(err.to_string().contains("(ERR_PUBSUB_NOT_FOUND)"), "{err}");
        let long = "x".repeat(2000);
        let DaprError::Status { body, .. } =
            status_error("u".to_owned(), StatusCode::BAD_GATEWAY, long.as_bytes())
        else {
            unreachable!()
        };
        assert_eq!(body.chars().count(), MAX_ERROR_BODY + 1);
    }
}
