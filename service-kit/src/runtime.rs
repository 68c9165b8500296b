//! The tokio runtime every service runs on: one thread, unless `TOKIO_WORKER_THREADS` asks for a
//! multi-threaded one.
//!
//! A service's requests spend their time waiting on the sidecar, and in a container with a
//! fraction of a core a second worker thread only adds cross-thread wake-ups. On the 2-core
//! benchmark machine, one thread cut the services' own CPU per order end to end by 13-28%
//! (bench/README.md). A replica with several cores to itself can ask for workers instead.

use std::future::Future;
use std::num::NonZeroUsize;
use std::process::ExitCode;
use std::str::FromStr;

use crate::env::{self, ConfigError, Vars};

/// How many threads run a service's tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Threads {
    /// A current-thread runtime (the default).
    #[default]
    One,
    /// A multi-threaded runtime with this many workers.
    Workers(NonZeroUsize),
}

impl FromStr for Threads {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<NonZeroUsize>()
            .map(Self::Workers)
            .map_err(|_| "expected a whole number of worker threads, 1 or more".to_owned())
    }
}

impl Threads {
    /// Reads `TOKIO_WORKER_THREADS`; unset means [`Threads::One`].
    pub fn from_vars(vars: &Vars) -> Result<Self, ConfigError> {
        vars.parse_or(env::TOKIO_WORKER_THREADS, Self::One)
    }
}

/// Builds the runtime `threads` describes and runs `main` on it to completion.
pub fn block_on(threads: Threads, main: impl Future<Output = ExitCode>) -> ExitCode {
    let built = match threads {
        Threads::One => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Threads::Workers(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.get())
            .enable_all()
            .build(),
    };
    match built {
        Ok(runtime) => runtime.block_on(main),
        Err(e) => {
            tracing::error!("could not start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_unless_workers_are_asked_for_by_a_count_of_1_or_more() {
        let threads = |pairs: &[_]| Threads::from_vars(&Vars::from_pairs(pairs));
        assert_eq!(threads(&[]).unwrap(), Threads::One);
        assert_eq!(
            threads(&[(env::TOKIO_WORKER_THREADS, "4")]).unwrap(),
            Threads::Workers(NonZeroUsize::new(4).unwrap())
        );
        for bad in ["0", "-1", "two", "1.5"] {
            let err = threads(&[(env::TOKIO_WORKER_THREADS, bad)]).unwrap_err();
            assert_eq!(err.name, env::TOKIO_WORKER_THREADS, "{bad}");
        }
    }

    #[test]
    fn both_runtimes_run_the_future() {
        for threads in [Threads::One, Threads::Workers(NonZeroUsize::MIN)] {
            let code = block_on(threads, async {
                tokio::task::yield_now().await;
                ExitCode::from(7)
            });
            assert_eq!(code, ExitCode::from(7));
        }
    }
}
