//! Helpers shared by the benchmark binaries: command-line flags and percentiles.
//!
//! The binaries are `bench-axum` (the bare-axum reference server, the ceiling for an HTTP
//! service on the machine) and `bench-probe` (start-up timing and the open-loop
//! publish-to-applied probe). `scripts/bench.sh` builds and runs them; see `bench/README.md`.

use std::collections::BTreeMap;
use std::str::FromStr;

/// `--name value` flags, and everything after `--` as a command.
#[derive(Debug, Default)]
pub struct Flags {
    values: BTreeMap<String, Vec<String>>,
    /// Words after `--`.
    pub rest: Vec<String>,
}

impl Flags {
    /// Parses `args` (without the program name and subcommand).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut flags = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--" {
                flags.rest = args.collect();
                break;
            }
            let Some(name) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            let value = args
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?;
            flags.values.entry(name.to_owned()).or_default().push(value);
        }
        Ok(flags)
    }

    /// The last value of `--name`, parsed; `default` when absent.
    pub fn get_or<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.values.get(name).and_then(|v| v.last()) {
            Some(raw) => raw
                .parse()
                .map_err(|_| format!("--{name}: cannot parse {raw:?}")),
            None => Ok(default),
        }
    }

    /// The last value of `--name`; an error when absent.
    pub fn required(&self, name: &str) -> Result<String, String> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .cloned()
            .ok_or_else(|| format!("--{name} is required"))
    }

    /// Every value of a repeatable `--name`.
    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }
}

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of `sorted`, which must be sorted; 0 when
/// empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    // Nearest rank: ceil(p/100 * n), clamped to 1..=n. The float is at most n, so it fits.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    // The epsilon keeps float error (0.999 * 1000 = 999.0000000000001) from adding a rank.
    let rank = ((p / 100.0) * n as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&v, 50.0), 500);
        assert_eq!(percentile(&v, 99.0), 990);
        assert_eq!(percentile(&v, 99.9), 999);
        assert_eq!(percentile(&v, 100.0), 1000);
        assert_eq!(percentile(&[7], 99.9), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }

    #[test]
    fn flags_and_rest() {
        let args = [
            "--port", "1", "--env", "A=1", "--env", "B=2", "--", "prog", "--x",
        ];
        let f = Flags::parse(args.map(str::to_owned)).unwrap();
        assert_eq!(f.get_or("port", 0u16).unwrap(), 1);
        assert_eq!(f.get_or("runs", 5u32).unwrap(), 5);
        assert_eq!(f.all("env"), ["A=1", "B=2"]);
        assert_eq!(f.rest, ["prog", "--x"]);
        assert!(f.required("missing").is_err());
        assert!(Flags::parse(["oops".to_owned()]).is_err());
    }
}
