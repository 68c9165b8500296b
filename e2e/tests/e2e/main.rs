//! End-to-end tests on the real Dapr runtime (`daprd`), the real Dapr CLI and a real
//! `redis-server`, with the services started by the commands the README gives.
//!
//! They share the tutorial's fixed ports, so they run one at a time (see `e2e::serial`).

// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod aca;
mod invocation;
mod otlp;
mod pubsub;
mod support;
mod system;
mod zipkin;
