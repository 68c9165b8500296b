//! Environment variable names the services share, and typed parsing that names the variable on
//! failure.
//!
//! Every service reads its configuration once at start-up through [`Vars`]; a bad value stops the
//! process with a message such as `invalid APP_PORT="abc": expected a port number (1-65535)`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Port the app listens on. `dapr run --app-port` and Azure Container Apps set it.
pub const APP_PORT: &str = "APP_PORT";
/// HTTP port of the app's own Dapr sidecar. `dapr run` sets it (a random port unless
/// `--dapr-http-port` is given); the default is Dapr's 3500.
pub const DAPR_HTTP_PORT: &str = "DAPR_HTTP_PORT";
/// Full base URL of the sidecar's HTTP API (`http://host:port`); wins over `DAPR_HTTP_PORT`.
pub const DAPR_HTTP_ENDPOINT: &str = "DAPR_HTTP_ENDPOINT";
/// Token the app sends to its sidecar as `dapr-api-token`; must match the sidecar's own.
pub const DAPR_API_TOKEN: &str = "DAPR_API_TOKEN";
/// Token the sidecar sends to the app as `dapr-api-token`; when set, the app's sidecar-only
/// routes (service invocation, `/dapr/subscribe`, event deliveries) refuse calls without it.
/// Public routes never ask for it (see [`crate::http`]).
pub const APP_API_TOKEN: &str = "APP_API_TOKEN";
/// `true` or `false` (default): whether start-up fails when `APP_API_TOKEN` is unset or empty.
/// A deployment whose sidecar-only routes are reachable from outside (Azure Container Apps
/// ingress sends traffic straight to the app port) sets it, so a missing token can never leave
/// those routes open.
pub const APP_API_TOKEN_REQUIRED: &str = "APP_API_TOKEN_REQUIRED";
/// Seconds a server keeps serving after SIGTERM before it stops accepting connections (default
/// 0). Azure Container Apps stops the Dapr sidecar 5 s after the app, and the sidecar keeps
/// delivering events until then: an app that stopped listening first fails those deliveries.
pub const SHUTDOWN_DELAY_SECONDS: &str = "SHUTDOWN_DELAY_SECONDS";
/// Timeout of every call to the sidecar, in seconds (the name the Dapr Python SDK uses).
pub const DAPR_HTTP_TIMEOUT_SECONDS: &str = "DAPR_HTTP_TIMEOUT_SECONDS";
/// How long to wait for the sidecar to become ready at start-up, in seconds (the name the Dapr
/// Python SDK uses).
pub const DAPR_HEALTH_TIMEOUT: &str = "DAPR_HEALTH_TIMEOUT";
/// Name of the Dapr pub/sub component a service publishes to or subscribes through.
pub const PUBSUB_NAME: &str = "PUBSUB_NAME";
/// Name of the Dapr state store component.
pub const STATE_STORE_NAME: &str = "STATE_STORE_NAME";
/// `text` (default, for people) or `json` (one object per line, for log pipelines).
pub const LOG_FORMAT: &str = "LOG_FORMAT";
/// Standard `tracing` filter directives, e.g. `info` or `order_processor=debug`.
pub const RUST_LOG: &str = "RUST_LOG";
/// Unset: the service runs on one thread. A number: a multi-threaded runtime with that many
/// workers (tokio's own name for the setting).
pub const TOKIO_WORKER_THREADS: &str = "TOKIO_WORKER_THREADS";
/// The Dapr app id; the Dapr CLI sets it for the app it runs.
pub const APP_ID: &str = "APP_ID";
/// OpenTelemetry's switch-off: `true` exports nothing.
pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// Which span exporter: `otlp` (the default), `zipkin` or `none`.
pub const OTEL_TRACES_EXPORTER: &str = "OTEL_TRACES_EXPORTER";
/// The OTLP/HTTP base URL; spans go to `<it>/v1/traces`.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The OTLP/HTTP URL for spans, used as it is; wins over `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The OTLP transport; only `http/protobuf` (the default here) is built in.
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// The same, for spans only; wins over `OTEL_EXPORTER_OTLP_PROTOCOL`.
pub const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// Where the Zipkin exporter sends spans (default `http://localhost:9411/api/v2/spans`).
pub const OTEL_EXPORTER_ZIPKIN_ENDPOINT: &str = "OTEL_EXPORTER_ZIPKIN_ENDPOINT";
/// The `service.name` of the exported spans; the Dapr app id by default.
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";

/// A configuration value that could not be used, naming the variable it came from.
#[derive(Debug, thiserror::Error)]
#[error("invalid {name}={value:?}: {problem}")]
pub struct ConfigError {
    /// The environment variable.
    pub name: &'static str,
    /// The value as found.
    pub value: String,
    /// What is wrong with it.
    pub problem: String,
}

impl ConfigError {
    /// An error for `name`, whose `value` is wrong because of `problem`.
    pub fn new(name: &'static str, value: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            name,
            value: value.into(),
            problem: problem.into(),
        }
    }
}

/// A secret from the environment; its `Debug` output never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where configuration comes from: the process environment, or a fixed map in tests (so tests
/// never have to mutate the process environment, which is `unsafe` in edition 2024).
pub struct Vars {
    lookup: Lookup,
}

type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl fmt::Debug for Vars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vars")
    }
}

impl Vars {
    /// Reads the process environment.
    pub fn process() -> Self {
        Self {
            lookup: Box::new(|name| std::env::var(name).ok()),
        }
    }

    /// Reads only the given pairs.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self {
            lookup: Box::new(move |name| map.get(name).cloned()),
        }
    }

    /// The trimmed value of `name`; unset and empty both count as absent, because launchers
    /// (the Dapr CLI's run files among them) export empty strings for unset settings.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// `name` parsed as `T`, or `default` when absent.
    pub fn parse_or<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e: T::Err| ConfigError::new(name, raw, e.to_string())),
        }
    }

    /// `true` or `false` (any case), or `default` when absent.
    pub fn bool_or(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) if raw.eq_ignore_ascii_case("true") => Ok(true),
            Some(raw) if raw.eq_ignore_ascii_case("false") => Ok(false),
            Some(raw) => Err(ConfigError::new(name, raw, "expected true or false")),
        }
    }

    /// A TCP port, or `default` when absent.
    pub fn port_or(&self, name: &'static str, default: u16) -> Result<u16, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => match raw.parse::<u16>() {
                Ok(port) if port > 0 => Ok(port),
                _ => Err(ConfigError::new(
                    name,
                    raw,
                    "expected a port number (1-65535)",
                )),
            },
        }
    }

    /// A duration given in whole seconds, or `default` when absent.
    pub fn seconds_or(
        &self,
        name: &'static str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        self.duration_or(name, default, Duration::from_secs, "seconds")
    }

    /// A duration given in whole milliseconds, or `default` when absent.
    pub fn millis_or(
        &self,
        name: &'static str,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        self.duration_or(name, default, Duration::from_millis, "milliseconds")
    }

    fn duration_or(
        &self,
        name: &'static str,
        default: Duration,
        unit: fn(u64) -> Duration,
        unit_name: &str,
    ) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw.parse::<u64>().map(unit).map_err(|_| {
                ConfigError::new(name, raw, format!("expected a whole number of {unit_name}"))
            }),
        }
    }

    /// An identifier (an app id or a component name), or `default` when absent; checked with
    /// [`crate::input::check_identifier`].
    pub fn identifier_or(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        let value = self.get(name).unwrap_or_else(|| default.to_owned());
        crate::input::check_identifier(name, &value)
            .map_err(|e| ConfigError::new(name, &value, e.message()))?;
        Ok(value)
    }

    /// A secret, if set.
    pub fn secret(&self, name: &str) -> Option<Secret> {
        self.get(name).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_is_1_to_65535_and_an_empty_value_counts_as_unset() {
        let port = |value| Vars::from_pairs(&[(APP_PORT, value)]).port_or(APP_PORT, 5001);
        assert_eq!(port("  ").unwrap(), 5001);
        assert_eq!(
            port("abc").unwrap_err().to_string(),
            r#"invalid APP_PORT="abc": expected a port number (1-65535)"#
        );
        assert!(port("0").is_err());
    }

    #[test]
    fn booleans_are_true_or_false_in_any_case() {
        let vars = Vars::from_pairs(&[("A", "TRUE"), ("B", "false"), ("C", "1")]);
        assert!(vars.bool_or("A", false).unwrap());
        assert!(!vars.bool_or("B", true).unwrap());
        assert!(vars.bool_or("D", true).unwrap());
        assert_eq!(
            vars.bool_or("C", false).unwrap_err().to_string(),
            r#"invalid C="1": expected true or false"#
        );
    }

    #[test]
    fn durations_are_parsed_in_their_unit() {
        let vars = Vars::from_pairs(&[("A", "3"), ("B", "250"), ("C", "1.5")]);
        assert_eq!(
            vars.seconds_or("A", Duration::ZERO).unwrap(),
            Duration::from_secs(3)
        );
        assert_eq!(
            vars.millis_or("B", Duration::ZERO).unwrap(),
            Duration::from_millis(250)
        );
        let err = vars.seconds_or("C", Duration::ZERO).unwrap_err();
        assert_eq!(err.name, "C");
    }

    #[test]
    fn identifiers_have_a_default_and_are_checked() {
        let vars = Vars::from_pairs(&[("A", "pubsub-inventory"), ("B", "a b")]);
        assert_eq!(
            vars.identifier_or("A", "pubsub").unwrap(),
            "pubsub-inventory"
        );
        assert_eq!(vars.identifier_or("C", "pubsub").unwrap(), "pubsub");
        let err = vars.identifier_or("B", "x").unwrap_err();
        assert_eq!(err.name, "B");
        assert!(err.problem.contains("may contain only"), "{err}");
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let vars = Vars::from_pairs(&[(APP_API_TOKEN, "hunter2")]);
        let secret = vars.secret(APP_API_TOKEN).unwrap();
        assert_eq!(format!("{secret:?}"), "Secret(***)");
        assert_eq!(secret.expose(), "hunter2");
    }
}
