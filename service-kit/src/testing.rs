//! Test helpers for the services (feature `test-util`): capturing what a service logs, so a
//! test can check its exact log lines.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

/// Log output captured for the current thread.
#[derive(Debug, Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything logged so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// For each line containing `marker`, the line from `marker` on (without the timestamp and
    /// level in front).
    pub fn lines_from(&self, marker: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter_map(|line| line.find(marker).map(|i| line[i..].to_owned()))
            .collect()
    }
}

impl io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Captures the logs of the current thread, in the services' text format, until the guard is
/// dropped. Use it in a test on Tokio's current-thread runtime, so all the work logs here.
pub fn capture_logs() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_target(false)
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}
