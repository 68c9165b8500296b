//! Log setup: `RUST_LOG` filters, text for people by default, JSON lines with `LOG_FORMAT=json`.
//!
//! Each line is written to stdout (one `write(2)`) before the code that logged it goes on, so a
//! line logged before an answer is out of the process when the answer is: a SIGKILL right after
//! `inventory-service` acknowledges an order cannot take that order's line with it, as it could
//! from a background writer's queue.
//!
//! A request's trace id is a field of its span ([`request_span`]), recorded once, and printed
//! on every line logged inside it as if the event had it as its first field after the message:
//! text ends `… trace_id=<32 hex> status=422`, JSON has a top-level `"trace_id"`.
//! tracing-subscriber's own formats would print it as a `request{trace_id=…}:` prefix or
//! under `"span"`, hence [`Lines`]: the stock `Full` and flattened-JSON lines plus that field.

use std::fmt::Debug;
use std::io::IsTerminal;
use std::str::FromStr;

use nu_ansi_term::{Color, Style};
use opentelemetry_sdk::trace::Tracer;
use serde::ser::{SerializeMap, Serializer as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::field::VisitOutput;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::format::{DefaultVisitor, Writer, debug_fn};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{
    self, FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter,
};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

use crate::env::{self, ConfigError, Vars};
use crate::trace::TraceContext;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One readable line per event (the default).
    #[default]
    Text,
    /// One JSON object per line, for log collectors such as Azure Monitor.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("expected `text` or `json`".to_owned()),
        }
    }
}

impl LogFormat {
    /// Reads `LOG_FORMAT`.
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        vars.parse_or(env::LOG_FORMAT, Self::Text)
    }
}

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is unset or invalid.
/// With a `tracer` ([`crate::otel::Export`]), this crate's spans are also OpenTelemetry spans
/// sent to it; `RUST_LOG` filters only the log lines, never which spans are exported.
pub fn init(format: LogFormat, default_filter: &str, tracer: Option<Tracer>) {
    let filter =
        EnvFilter::try_from_env(env::RUST_LOG).unwrap_or_else(|_| EnvFilter::new(default_filter));
    // The fmt layer writes a formatted line with one `write_all`; stdout is line-buffered, so
    // that is one `write(2)`, done before the event returns.
    let writer = std::io::stdout;
    let ansi = std::io::stdout().is_terminal();
    match tracer {
        // Without export, the subscriber is the one from before spans existed: one filter for
        // everything, and no per-layer filtering to pay for on each event.
        None => tracing_subscriber::registry()
            .with(filter)
            .with(layer(format, writer, ansi))
            .init(),
        Some(tracer) => tracing_subscriber::registry()
            .with(layer(format, writer, ansi).with_filter(filter))
            .with(span_layer(tracer))
            .init(),
    }
}

/// The span field that holds a request's trace id.
const TRACE_ID: &str = "trace_id";

/// The span of one request (or one order `checkout` sends), carrying its trace id, if any, for
/// every line logged inside it. ERROR level, so that no `RUST_LOG` showing a line hides it.
pub fn request_span(trace: &TraceContext) -> tracing::Span {
    let trace_id = trace.trace_id().map(tracing::field::display);
    tracing::error_span!("request", trace_id)
}

/// The layer that turns this crate's spans ([`crate::trace`], and the log spans) into
/// OpenTelemetry spans of `tracer`. Log lines are not added to them as span events: they stay
/// in the logs, and would cost an allocation each.
pub fn span_layer<S>(tracer: Tracer) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_target(false)
        .with_filter(filter_fn(|meta| {
            meta.is_span() && meta.target().starts_with("service_kit")
        }))
}

/// The log layer writing lines of `format` to `writer`; `ansi` colours text as on a terminal.
pub fn layer<S, W>(format: LogFormat, writer: W, ansi: bool) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    // A span's formatted fields are only its trace id: [`Lines`] reads them back.
    let trace_id_only = debug_fn(|w: &mut Writer<'_>, field: &Field, value: &dyn Debug| {
        if field.name() == TRACE_ID {
            write!(w, "{value:?}")
        } else {
            Ok(())
        }
    });
    fmt::layer()
        .event_format(Lines(format))
        .fmt_fields(trace_id_only)
        .with_ansi(ansi)
        .with_writer(writer)
}

/// tracing-subscriber's `Full` text line (without the target) or flattened JSON line, with the
/// trace id of the innermost span that has one right after the message.
struct Lines(LogFormat);

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let trace = ctx.event_scope().into_iter().flatten().find_map(|span| {
            let field = span.fields().field(TRACE_ID)?;
            let extensions = span.extensions();
            // A second record appends (`a b`): the last one counts.
            let id = extensions
                .get::<FormattedFields<N>>()?
                .rsplit(' ')
                .next()?
                .to_owned();
            (!id.is_empty()).then_some((field, id))
        });
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        let fields = |visitor: &mut dyn Visit| {
            event.record(&mut Only {
                visitor: &mut *visitor,
                message: true,
            });
            if let Some((field, id)) = &trace {
                visitor.record_debug(field, &format_args!("{id}"));
            }
            event.record(&mut Only {
                visitor: &mut *visitor,
                message: false,
            });
        };
        match self.0 {
            LogFormat::Text => {
                let ansi = writer.has_ansi_escapes();
                let dimmed = if ansi {
                    Style::new().dimmed()
                } else {
                    Style::new()
                };
                write!(writer, "{}", dimmed.prefix())?;
                if SystemTime.format_time(&mut writer).is_err() {
                    writer.write_str("<unknown time>")?;
                }
                write!(writer, "{} ", dimmed.suffix())?;
                let level = match *meta.level() {
                    Level::TRACE => (Color::Purple, "TRACE"),
                    Level::DEBUG => (Color::Blue, "DEBUG"),
                    Level::INFO => (Color::Green, " INFO"),
                    Level::WARN => (Color::Yellow, " WARN"),
                    Level::ERROR => (Color::Red, "ERROR"),
                };
                match ansi {
                    true => write!(writer, "{} ", level.0.paint(level.1))?,
                    false => write!(writer, "{} ", level.1)?,
                }
                let mut visitor = DefaultVisitor::new(writer.by_ref(), true);
                fields(&mut visitor);
                visitor.finish()?;
            }
            LogFormat::Json => {
                let mut timestamp = String::new();
                SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
                let mut line = Vec::new();
                let mut serializer = serde_json::Serializer::new(&mut line);
                let mut json = || {
                    let mut map = serializer.serialize_map(None)?;
                    map.serialize_entry("timestamp", &timestamp)?;
                    map.serialize_entry("level", meta.level().as_str())?;
                    let mut visitor = tracing_serde::SerdeMapVisitor::new(map);
                    fields(&mut visitor);
                    let mut map = visitor.take_serializer()?;
                    map.serialize_entry("target", meta.target())?;
                    map.end()
                };
                json().map_err(|_| std::fmt::Error)?;
                writer.write_str(std::str::from_utf8(&line).map_err(|_| std::fmt::Error)?)?;
            }
        }
        writeln!(writer)
    }
}

/// Passes on to `visitor` only the message (`message: true`) or only the other fields.
struct Only<'a> {
    visitor: &'a mut dyn Visit,
    message: bool,
}

/// Each `record_*` method passes the field on if it is wanted.
macro_rules! forward {
    ($($record:ident: $value:ty),*) => {$(
        fn $record(&mut self, field: &Field, value: $value) {
            if (field.name() == "message") == self.message {
                self.visitor.$record(field, value);
            }
        }
    )*};
}

impl Visit for Only<'_> {
    forward!(record_f64: f64, record_i64: i64, record_u64: u64, record_i128: i128,
        record_u128: u128, record_bool: bool, record_str: &str, record_bytes: &[u8],
        record_error: &(dyn std::error::Error + 'static), record_debug: &dyn Debug);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_is_parsed_case_insensitively_and_named_on_error() {
        let json = Vars::from_pairs(&[(env::LOG_FORMAT, "JSON")]);
        assert_eq!(LogFormat::from_vars(&json).unwrap(), LogFormat::Json);
        assert_eq!(
            LogFormat::from_vars(&Vars::from_pairs(&[])).unwrap(),
            LogFormat::Text
        );
        let err = LogFormat::from_vars(&Vars::from_pairs(&[(env::LOG_FORMAT, "xml")])).unwrap_err();
        assert_eq!(err.name, env::LOG_FORMAT);
    }
}
