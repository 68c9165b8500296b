//! The log lines of `telemetry::layer`: a request span's trace id is written where the
//! services used to pass it on every log call, in both formats.

use service_kit::TraceContext;
use service_kit::telemetry::{LogFormat, layer, request_span};
use test_kit::CapturedLogs;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{Layer, Registry, fmt};

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The lines `log` writes under `layer`, each without its timestamp.
fn lines(layer: impl Layer<Registry> + Send + Sync, logs: &CapturedLogs, log: fn()) -> String {
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), log);
    let text = logs.text();
    let cut = |l: &str| {
        let rest = l.split_once('Z').map_or("", |(_, rest)| rest);
        rest.trim_start_matches("\",").to_owned()
    };
    text.lines().map(cut).collect::<Vec<_>>().join("\n")
}

/// Lines in request spans, and one outside any, are the ones tracing-subscriber writes for
/// events carrying `trace_id` as their first field (how the services logged before).
fn the_trace_id_is_written_as_the_first_field(format: LogFormat, expected: &str) {
    let ours = CapturedLogs::default();
    let writer = ours.clone();
    let ours = lines(layer(format, move || writer.clone(), false), &ours, || {
        tracing::info!(port = 5001, "listening");
        request_span(&TraceContext::from_traceparent(TP)).in_scope(|| {
            tracing::warn!(status = 422, "Order refused: {}", "not an integer");
        });
        request_span(&TraceContext::default()).in_scope(|| {
            TraceContext::from_traceparent(TP).record_in_span();
            tracing::info!("Published");
        });
    });
    let stock = CapturedLogs::default();
    let writer = stock.clone();
    let plain = fmt::layer()
        .with_writer(move || writer.clone())
        .with_ansi(false);
    let stock_layer = match format {
        LogFormat::Text => plain.with_target(false).boxed(),
        LogFormat::Json => plain.json().flatten_event(true).boxed(),
    };
    let stock = lines(stock_layer, &stock, || {
        let trace_id = tracing::field::display(ID);
        tracing::info!(port = 5001, "listening");
        tracing::warn!(
            trace_id,
            status = 422,
            "Order refused: {}",
            "not an integer"
        );
        tracing::info!(trace_id, "Published");
    });
    assert_eq!(ours, stock);
    assert_eq!(ours, expected);
}

#[test]
fn text_lines_end_with_the_request_spans_trace_id_and_the_other_fields() {
    the_trace_id_is_written_as_the_first_field(
        LogFormat::Text,
        &format!(
            "  INFO listening port=5001\n  WARN Order refused: not an integer trace_id={ID} status=422\n  INFO Published trace_id={ID}"
        ),
    );
}

#[test]
fn json_lines_have_the_request_spans_trace_id_at_the_top_level() {
    let target = r#""target":"telemetry"}"#;
    the_trace_id_is_written_as_the_first_field(
        LogFormat::Json,
        &format!(
            r#""level":"INFO","message":"listening","port":5001,{target}
"level":"WARN","message":"Order refused: not an integer","trace_id":"{ID}","status":422,{target}
"level":"INFO","message":"Published","trace_id":"{ID}",{target}"#
        ),
    );
}
