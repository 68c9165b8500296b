//! Log setup: `RUST_LOG` filters, text for people by default, JSON lines with `LOG_FORMAT=json`.
//!
//! Log lines go through a background writer thread, so a request that logs never waits on the
//! stdout lock; the writer blocks (it does not drop lines) if the thread falls behind.

use std::io::IsTerminal;
use std::str::FromStr;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

use crate::env::{self, ConfigError, Vars};

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

/// Keeps the log writer thread alive; dropping it flushes what is buffered. Hold it in `main`.
#[must_use = "dropping the guard stops the log writer"]
#[derive(Debug)]
pub struct LogGuard(#[allow(dead_code)] WorkerGuard);

/// Lines the writer thread may lag behind before a logging request waits for it. The channel
/// is allocated (and touched) in full at start-up: tracing-appender's default of 128,000 lines
/// costs about 4 MB of resident memory and 1-2 ms of start-up; 8,192 lines cost 256 KB.
const LOG_BUFFER_LINES: usize = 8_192;

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is unset or invalid.
pub fn init(format: LogFormat, default_filter: &str) -> LogGuard {
    let filter =
        EnvFilter::try_from_env(env::RUST_LOG).unwrap_or_else(|_| EnvFilter::new(default_filter));
    // The writer thread flushes whenever it has emptied the channel, so a burst of lines costs
    // one write(2), not one per line (stdout alone is line-buffered).
    let stdout = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .finish(stdout);
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_writer(writer)
                    .with_target(false)
                    .with_ansi(std::io::stdout().is_terminal()),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(writer),
            )
            .init(),
    }
    LogGuard(guard)
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
