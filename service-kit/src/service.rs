//! What every service reads from the environment, and the one start-up path they share: read
//! the configuration (a bad value exits with status 2 before anything runs), set up logging
//! and the runtime, then run.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;

use crate::dapr::DaprConfig;
use crate::env::{self, ConfigError, Vars};
use crate::http::{self, HttpConfig};
use crate::otel::{Export, OtelConfig};
use crate::runtime::{self, Threads};
use crate::telemetry::{self, LogFormat};

/// An error that ends a service, logged as `{service} failed: {error}`.
pub type BoxError = Box<dyn std::error::Error>;

/// The settings all four services read.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// `APP_PORT`, else the service's default; `None` for a service without a default port
    /// (`checkout`) when `APP_PORT` is unset.
    pub port: Option<u16>,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `TOKIO_WORKER_THREADS`: one thread unless set.
    pub threads: Threads,
    /// `APP_API_TOKEN`, `APP_API_TOKEN_REQUIRED`.
    pub http: HttpConfig,
    /// Where the sidecar is.
    pub dapr: DaprConfig,
    /// `SHUTDOWN_DELAY_SECONDS`: how long an HTTP service keeps serving after SIGINT or
    /// SIGTERM before its graceful shutdown starts (none unless set).
    pub shutdown_delay: Duration,
}

impl ServiceConfig {
    /// Reads the shared settings from `vars`.
    pub fn from_vars(vars: &Vars, default_port: Option<u16>) -> Result<Self, ConfigError> {
        let port = match (vars.get(env::APP_PORT), default_port) {
            (None, None) => None,
            (_, default) => Some(vars.port_or(env::APP_PORT, default.unwrap_or(0))?),
        };
        Ok(Self {
            port,
            log_format: LogFormat::from_vars(vars)?,
            threads: Threads::from_vars(vars)?,
            http: HttpConfig::from_vars(vars)?,
            dapr: DaprConfig::from_vars(vars)?,
            shutdown_delay: vars.seconds_or(env::SHUTDOWN_DELAY_SECONDS, Duration::ZERO)?,
        })
    }
}

/// Starts an HTTP service: reads the shared configuration with `default_port`, hands it to
/// `build` with the environment (to read the service's own settings), sets up logging and the
/// runtime, awaits the router `build` returned (which may first do start-up work, such as
/// seeding state, before the app listens), listens on `APP_PORT`, and serves until SIGINT or
/// SIGTERM (and `SHUTDOWN_DELAY_SECONDS` after it), letting in-flight requests end.
pub fn start<F, Fut>(service: &'static str, default_port: u16, build: F) -> ExitCode
where
    F: FnOnce(ServiceConfig, &Vars) -> Result<Fut, ConfigError>,
    Fut: Future<Output = Result<Router, BoxError>>,
{
    launch(service, Some(default_port), |common, vars| {
        let port = common.port.unwrap_or(default_port);
        let delay = common.shutdown_delay;
        let router = build(common, vars)?;
        Ok(async move {
            let router = router.await?;
            let listener = http::bind(port, env::APP_PORT).await?;
            let stop = crate::shutdown::shutdown_signal_then(delay);
            http::serve(listener, router, stop, http::SHUTDOWN_GRACE).await?;
            Ok(ExitCode::SUCCESS)
        })
    })
}

/// Starts any service: like [`start`], but `main` decides what runs and with what exit status.
pub fn launch<F, Fut>(service: &'static str, default_port: Option<u16>, main: F) -> ExitCode
where
    F: FnOnce(ServiceConfig, &Vars) -> Result<Fut, ConfigError>,
    Fut: Future<Output = Result<ExitCode, BoxError>>,
{
    let vars = Vars::process();
    let read = OtelConfig::from_vars(&vars, service).and_then(|otel| {
        let common = ServiceConfig::from_vars(&vars, default_port)?;
        Ok((
            otel,
            common.log_format,
            common.threads,
            main(common, &vars)?,
        ))
    });
    let (otel, log_format, threads, main) = match read {
        Ok(read) => read,
        Err(e) => return exit_with_config_error(service, &e),
    };
    let (export, tracer, export_failed) = match Export::start(&otel) {
        Ok(Some((export, tracer))) => (Some(export), Some(tracer), None),
        Ok(None) => (None, None, None),
        Err(e) => (None, None, Some(e)),
    };
    telemetry::init(log_format, "info", tracer);
    if let Some(e) = export_failed {
        tracing::warn!("{service} runs without exporting spans: {e}");
    }
    let code = runtime::block_on(threads, async {
        main.await.unwrap_or_else(|e| {
            tracing::error!("{service} failed: {e}");
            ExitCode::FAILURE
        })
    });
    // Outside the runtime: the exporters' blocking HTTP client must not run on it.
    if let Some(export) = export {
        export.shutdown();
    }
    code
}

/// Reports a configuration error on stderr (logging is not set up yet, because the log format
/// is itself configuration) and returns exit code 2, the usual code for a usage error.
#[allow(clippy::print_stderr)]
fn exit_with_config_error(service: &str, error: &ConfigError) -> ExitCode {
    eprintln!("{service}: {error}");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_app_port_else_the_default_else_none() {
        let read = |pairs: &[(&str, &str)], default| {
            ServiceConfig::from_vars(&Vars::from_pairs(pairs), default).map(|c| c.port)
        };
        assert_eq!(read(&[], Some(5001)).unwrap(), Some(5001));
        assert_eq!(read(&[], None).unwrap(), None);
        assert_eq!(read(&[(env::APP_PORT, "6000")], None).unwrap(), Some(6000));
        let err = read(&[(env::APP_PORT, "70000")], None).unwrap_err();
        assert_eq!(err.name, env::APP_PORT);
    }

    #[test]
    fn a_required_token_must_be_set() {
        let read = |pairs: &[_]| ServiceConfig::from_vars(&Vars::from_pairs(pairs), Some(5001));
        let required = (env::APP_API_TOKEN_REQUIRED, "true");
        let err = read(&[required]).unwrap_err();
        assert_eq!(err.name, env::APP_API_TOKEN_REQUIRED);
        let message = err.to_string();
        assert!(message.contains("APP_API_TOKEN is unset or empty"), "{err}");
        let config = read(&[required, (env::APP_API_TOKEN, "t")]).unwrap();
        assert!(config.http.app_api_token.is_some());
    }

    #[test]
    fn the_shutdown_delay_is_none_unless_set() {
        let read = |pairs: &[_]| {
            ServiceConfig::from_vars(&Vars::from_pairs(pairs), Some(5001)).map(|c| c.shutdown_delay)
        };
        assert_eq!(read(&[]).unwrap(), Duration::ZERO);
        let set = (env::SHUTDOWN_DELAY_SECONDS, "10");
        assert_eq!(read(&[set]).unwrap(), Duration::from_secs(10));
        let err = read(&[(env::SHUTDOWN_DELAY_SECONDS, "soon")]).unwrap_err();
        assert_eq!(err.name, env::SHUTDOWN_DELAY_SECONDS);
    }
}
