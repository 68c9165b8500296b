//! The Dapr sidecar client and the plumbing every service in this workspace shares.
//!
//! # Layout
//! - [`env`]: the environment variable names Dapr and the services agree on, parsed into typed
//!   values with errors that name the variable.
//! - [`dapr`]: a typed client for the sidecar's HTTP API (invocation, publish, state, health).
//! - [`trace`]: W3C trace context taken from an incoming request and passed on to the sidecar,
//!   and the server, client and consumer spans that continue it.
//! - [`otel`]: span export configured by the standard `OTEL_*` variables (off unless set).
//! - [`error`]: the one JSON error shape every endpoint answers with.
//! - [`input`]: JSON body extraction and field checks that produce those errors.
//! - [`events`]: the `OrderPlaced` event both pub/sub services agree on.
//! - [`http`]: the middleware stack, health endpoint, API-token check and listener binding.
//! - [`telemetry`]: log setup (`RUST_LOG`, text or JSON).
//! - [`runtime`]: the tokio runtime, one thread unless `TOKIO_WORKER_THREADS` says otherwise.
//! - [`service`]: the settings every service reads and the start-up they share.
//! - [`shutdown`]: the SIGINT/SIGTERM future that drives graceful shutdown.

pub mod dapr;
pub mod env;
pub mod error;
pub mod events;
pub mod http;
pub mod input;
pub mod otel;
pub mod runtime;
pub mod service;
pub mod shutdown;
pub mod telemetry;
pub mod trace;

pub use dapr::{DaprClient, DaprError};
pub use error::ApiError;
pub use service::{ServiceConfig, launch, start};
pub use trace::TraceContext;
