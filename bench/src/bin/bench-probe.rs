//! Probes `scripts/bench.sh` runs where a load generator does not fit.
//!
//! - `startup`: time from spawning a service until its port accepts TCP connections, over
//!   repeated runs, and its resident memory once it is up.
//! - `publish`: the open-loop probe of the end-to-end pub/sub path. It sends `POST /order` to
//!   `order-service` at a fixed rate, whatever the answers take (so a slow answer cannot hold
//!   back the next send and hide latency), and records the wall-clock send time of every orderId.
//!   `bench/bench.py` matches those times with the `Processed OrderPlaced event` lines of
//!   `inventory-service` (same machine, same clock) to get publish-to-applied latency.
//!
//! Both print one JSON object on stdout.

// This is a measuring tool: its result is the JSON it prints on stdout.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bench::{Flags, percentile};
use serde_json::{Value, json};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let sub = args.next().unwrap_or_default();
    let result = Flags::parse(args).and_then(|flags| match sub.as_str() {
        "startup" => startup(&flags),
        "publish" => publish(&flags),
        _ => Err("usage: bench-probe startup|publish [--flag value]... [-- command]".to_owned()),
    });
    match result {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-probe {sub}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `startup --port P --runs N [--timeout-ms T] [--settle-ms S] [--env K=V]... [--log FILE] --
/// program args...`
fn startup(flags: &Flags) -> Result<Value, String> {
    let port: u16 = flags.get_or("port", 0)?;
    let runs: usize = flags.get_or("runs", 10)?;
    let timeout = Duration::from_millis(flags.get_or("timeout-ms", 5000)?);
    let settle = Duration::from_millis(flags.get_or("settle-ms", 500)?);
    let log: Option<String> = flags
        .get_or("log", String::new())
        .map(|l| Some(l).filter(|l| !l.is_empty()))?;
    let (program, program_args) = flags
        .rest
        .split_first()
        .ok_or("the command to start goes after --")?;
    let envs: Vec<(&str, &str)> = flags
        .all("env")
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .ok_or(format!("--env {kv}: expected K=V"))
        })
        .collect::<Result<_, _>>()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    if port == 0 || runs == 0 {
        return Err("--port and --runs must be positive".to_owned());
    }

    let mut ready_us = Vec::with_capacity(runs);
    let mut rss_ready_kb = Vec::with_capacity(runs);
    let mut idle = json!(null);
    for run in 0..runs {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Err(format!("port {port} is already in use before run {run}"));
        }
        let (stdout, stderr) = match &log {
            Some(path) => {
                let file = File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("{path}: {e}"))?;
                let copy = file.try_clone().map_err(|e| e.to_string())?;
                (Stdio::from(file), Stdio::from(copy))
            }
            None => (Stdio::null(), Stdio::null()),
        };
        let started = Instant::now();
        let mut child = Command::new(program)
            .args(program_args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let outcome = loop {
            if TcpStream::connect(addr).is_ok() {
                break Ok(started.elapsed());
            }
            if let Ok(Some(status)) = child.try_wait() {
                break Err(format!(
                    "{program} exited with {status} before listening on {port}"
                ));
            }
            if started.elapsed() > timeout {
                break Err(format!(
                    "{program} did not listen on {port} within {timeout:?}"
                ));
            }
            std::thread::sleep(Duration::from_micros(100));
        };
        let pid = child.id();
        let measured = outcome.map(|ready| {
            ready_us.push(micros(ready));
            rss_ready_kb.push(status_kb(pid, "VmRSS").unwrap_or(0));
            if run + 1 == runs {
                std::thread::sleep(settle);
                idle = json!({
                    "settle_ms": millis(settle),
                    "rss_kb": status_kb(pid, "VmRSS"),
                    "hwm_kb": status_kb(pid, "VmHWM"),
                    "threads": status_kb(pid, "Threads"),
                });
            }
        });
        let _ = child.kill();
        let _ = child.wait();
        measured?;
    }
    let mut sorted = ready_us.clone();
    sorted.sort_unstable();
    Ok(json!({
        "program": program,
        "runs": runs,
        "ready_us": ready_us,
        "median_us": percentile(&sorted, 50.0),
        "min_us": sorted.first(),
        "max_us": sorted.last(),
        "rss_ready_kb": rss_ready_kb,
        "idle": idle,
    }))
}

/// A `/proc/<pid>/status` field in kB (or a plain count, such as `Threads`).
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, micros)
}

/// One send of the publish probe.
struct Sent {
    order_id: String,
    item_id: String,
    send_unix_us: u64,
    lag_us: u64,
    status: u16,
    answer_us: u64,
}

/// `publish --url URL --rate R --count N [--items K] [--prefix P] [--quantity Q] --out FILE
/// [--timeout-ms T]`
fn publish(flags: &Flags) -> Result<Value, String> {
    let url = flags.required("url")?;
    let rate: f64 = flags.get_or("rate", 200.0)?;
    let count: usize = flags.get_or("count", 1000)?;
    let items: usize = flags.get_or("items", 1)?;
    let prefix = flags.get_or("prefix", "probe".to_owned())?;
    let quantity: u64 = flags.get_or("quantity", 1)?;
    let out = flags.required("out")?;
    let timeout = Duration::from_millis(flags.get_or("timeout-ms", 10_000)?);
    if !(rate > 0.0 && rate.is_finite()) || items == 0 {
        return Err("--rate and --items must be positive".to_owned());
    }
    let period = Duration::from_secs_f64(1.0 / rate);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let sent = runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::with_capacity(count);
        for i in 0..count {
            // The schedule, not the answers, decides when each order goes out.
            let due = start + period.mul_f64(i as f64);
            tokio::time::sleep_until(due).await;
            let client = client.clone();
            let url = url.clone();
            let order_id = format!("{prefix}-{i}");
            let item_id = format!("item{}", i % items);
            tasks.push(tokio::spawn(async move {
                let body = json!({ "orderId": order_id, "itemId": item_id, "quantity": quantity });
                let lag_us = micros(tokio::time::Instant::now().saturating_duration_since(due));
                let send_unix_us = unix_micros();
                let began = Instant::now();
                let status = match client.post(&url).json(&body).send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let _ = resp.bytes().await;
                        status
                    }
                    Err(_) => 0,
                };
                Sent {
                    order_id,
                    item_id,
                    send_unix_us,
                    lag_us,
                    status,
                    answer_us: micros(began.elapsed()),
                }
            }));
        }
        let sending_s = start.elapsed().as_secs_f64();
        let mut sent = Vec::with_capacity(count);
        for task in tasks {
            sent.push(task.await.map_err(|e| e.to_string())?);
        }
        Ok::<_, String>((sent, sending_s))
    })?;
    let (sent, sending_s) = sent;

    let file = File::create(&out).map_err(|e| format!("{out}: {e}"))?;
    let mut w = BufWriter::new(file);
    let io = |e: std::io::Error| format!("{out}: {e}");
    writeln!(w, "order_id,item_id,send_unix_us,status,answer_us").map_err(io)?;
    for s in &sent {
        writeln!(
            w,
            "{},{},{},{},{}",
            s.order_id, s.item_id, s.send_unix_us, s.status, s.answer_us
        )
        .map_err(io)?;
    }
    w.flush().map_err(io)?;

    let ok = sent
        .iter()
        .filter(|s| (200..300).contains(&s.status))
        .count();
    let mut answers: Vec<u64> = sent.iter().map(|s| s.answer_us).collect();
    answers.sort_unstable();
    let mut lags: Vec<u64> = sent.iter().map(|s| s.lag_us).collect();
    lags.sort_unstable();
    Ok(json!({
        "sent": sent.len(),
        "ok": ok,
        "failed": sent.len() - ok,
        "rate_target": rate,
        "rate_achieved": if sending_s > 0.0 { sent.len() as f64 / sending_s } else { 0.0 },
        "answer_us": {
            "p50": percentile(&answers, 50.0),
            "p99": percentile(&answers, 99.0),
            "p99.9": percentile(&answers, 99.9),
            "max": answers.last(),
        },
        "send_lag_us": { "p99": percentile(&lags, 99.0), "max": lags.last() },
        "out": out,
    }))
}
