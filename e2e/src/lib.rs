//! Harness for the end-to-end tests: the real Dapr CLI and runtime, a real `redis-server`, and
//! the services started the way the README says.
//!
//! Every process runs in its own process group with its output captured line by line (and
//! copied to `target/e2e-logs/<test>/`), so a test can wait for a log line, count lines, signal
//! or kill the whole group, and show the tail of the output when something does not happen.
//! Nothing here imitates Dapr: if `dapr`, `daprd` or `redis-server` is missing the tests fail and
//! say how to get them (`scripts/test.sh` installs them).

// A test harness reports a broken precondition by failing the test that needed it.
#![allow(
    clippy::expect_used,
    clippy::panic,
    clippy::unwrap_used,
    clippy::print_stderr,
    missing_debug_implementations
)]

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, OnceLock};
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;
use nix::sys::signal::killpg;
use nix::unistd::Pid;

pub mod aca;
pub mod readme;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives in the workspace")
        .to_path_buf()
}

/// The Dapr install directory the CLI uses: `$DAPR_RUNTIME_PATH/.dapr` or `~/.dapr`.
pub fn dapr_home() -> PathBuf {
    match std::env::var_os("DAPR_RUNTIME_PATH").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p).join(".dapr"),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".dapr"),
    }
}

/// `PATH` with the Dapr install's `bin` folder in front, as `scripts/test.sh` sets it.
fn search_path() -> String {
    let mut path = dapr_home().join("bin").display().to_string();
    if let Some(existing) = std::env::var_os("PATH") {
        path.push(':');
        path.push_str(&existing.to_string_lossy());
    }
    path
}

fn which(program: &str) -> Option<PathBuf> {
    search_path()
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// Fails the test, clearly, unless the real tools are installed. Never skips.
pub fn require_tools() {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECKED.get_or_init(|| {
        let mut missing = Vec::new();
        for tool in ["dapr", "redis-server", "redis-cli"] {
            if which(tool).is_none() {
                missing.push(tool.to_owned());
            }
        }
        if !dapr_home().join("bin/daprd").is_file() {
            missing.push(format!("daprd (looked in {})", dapr_home().join("bin").display()));
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the end-to-end tests run the real Dapr runtime and Redis, and these are missing: {}. \
                 Run scripts/test.sh, which builds Dapr from its Go modules and installs redis-server.",
                missing.join(", ")
            ))
        }
    });
    if let Err(message) = result {
        panic!("{message}");
    }
}

/// The four services, as crate names.
pub const SERVICES: [&str; 4] = [
    "checkout",
    "order-processor",
    "order-service",
    "inventory-service",
];

/// Builds every service once per test run, so `cargo run -p <service>` in the README commands
/// starts at once instead of compiling while a test waits for it. Each is built on its own,
/// exactly as `cargo run -p` builds it: a workspace-wide build unifies dependency features
/// across all members and would leave `cargo run -p` something to recompile.
pub fn build_services() {
    static BUILT: Once = Once::new();
    BUILT.call_once(|| {
        for service in SERVICES {
            let status = Command::new(env!("CARGO"))
                .args(["build", "--locked", "--quiet", "-p", service])
                .current_dir(repo_root())
                .status()
                .expect("cargo runs");
            assert!(status.success(), "cargo build -p {service} failed");
        }
    });
}

/// Serialises the end-to-end tests: they use the tutorial's fixed ports (3500, 3501, 5001,
/// 5002, Redis on 6379), as a user following the README would.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Where this test's process logs go.
pub fn log_dir(test: &str) -> PathBuf {
    let dir = repo_root().join("target/e2e-logs").join(test);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("log dir can be created");
    dir
}

#[derive(Default)]
struct Output {
    lines: Mutex<Vec<String>>,
    changed: Condvar,
}

/// A running process group whose output is captured.
pub struct Proc {
    name: String,
    child: Child,
    output: Arc<Output>,
}

impl std::fmt::Debug for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Proc({}, pid {})", self.name, self.child.id())
    }
}

impl Proc {
    /// Runs `command` through `bash -c` in `dir`, as a user would type it.
    pub fn shell(
        name: &str,
        command: &str,
        dir: &Path,
        envs: &[(&str, &str)],
        logs: &Path,
    ) -> Self {
        let mut cmd = Command::new("bash");
        cmd.args(["-c", command]);
        Self::spawn(name, cmd, dir, envs, logs)
    }

    /// Runs `program` with `args` in `dir`.
    pub fn program(
        name: &str,
        program: &str,
        args: &[&str],
        dir: &Path,
        envs: &[(&str, &str)],
        logs: &Path,
    ) -> Self {
        let mut cmd = Command::new(which(program).unwrap_or_else(|| PathBuf::from(program)));
        cmd.args(args);
        Self::spawn(name, cmd, dir, envs, logs)
    }

    fn spawn(name: &str, mut cmd: Command, dir: &Path, envs: &[(&str, &str)], logs: &Path) -> Self {
        use std::os::unix::process::CommandExt;
        cmd.current_dir(dir)
            .env("PATH", search_path())
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let output = Arc::new(Output::default());
        let file = Arc::new(Mutex::new(
            File::create(logs.join(format!("{name}.log"))).expect("log file can be created"),
        ));
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        spawn_reader(stdout, Arc::clone(&output), Arc::clone(&file));
        spawn_reader(stderr, Arc::clone(&output), file);
        Self {
            name: name.to_owned(),
            child,
            output,
        }
    }

    /// All lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.output.lines.lock().expect("output lock").clone()
    }

    /// The lines so far that contain `needle`.
    pub fn lines_containing(&self, needle: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.contains(needle))
            .collect()
    }

    /// The last `n` lines, for failure messages.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        let start = lines.len().saturating_sub(n);
        lines[start..].join("\n")
    }

    /// Waits until at least `count` lines contain `needle`; panics with the output's tail if
    /// that does not happen within `timeout`.
    pub fn wait_for_count(&self, needle: &str, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut lines = self.output.lines.lock().expect("output lock");
        loop {
            if lines.iter().filter(|l| l.contains(needle)).count() >= count {
                return;
            }
            let now = Instant::now();
            if now >= deadline {
                drop(lines);
                panic!(
                    "{}: fewer than {count} lines with {needle:?} after {timeout:?}; last output:\n{}",
                    self.name,
                    self.tail(60)
                );
            }
            lines = self
                .output
                .changed
                .wait_timeout(lines, deadline - now)
                .expect("output lock")
                .0;
        }
    }

    /// Waits for one line containing `needle`.
    pub fn wait_for(&self, needle: &str, timeout: Duration) {
        self.wait_for_count(needle, 1, timeout);
    }

    /// Sends `signal` to the whole process group, as Ctrl-C in a terminal does.
    pub fn signal(&self, signal: Signal) {
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            // The group may already be gone; that is fine.
            let _ = killpg(Pid::from_raw(pgid), signal);
        }
    }

    /// Sends `signal` to the processes in this group whose executable is called `name` (the
    /// app under `dapr run`, say), as a container runtime signals the app alone. Returns how
    /// many were signalled.
    pub fn signal_member(&self, name: &str, signal: Signal) -> usize {
        let group = self.child.id().to_string();
        // The kernel keeps the first 15 bytes of a command name.
        let comm_name = &name[..name.len().min(15)];
        let mut signalled = 0;
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Fields after the parenthesised command: state, ppid, pgrp, ...
            let Some((comm, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") "))
            else {
                continue;
            };
            let pgrp = rest.split_whitespace().nth(2);
            let pid = entry.file_name().to_str().and_then(|p| p.parse().ok());
            if let Some(pid) = pid
                && comm == comm_name
                && pgrp == Some(group.as_str())
                && nix::sys::signal::kill(Pid::from_raw(pid), signal).is_ok()
            {
                signalled += 1;
            }
        }
        signalled
    }

    /// Waits for the process to exit; `None` if it is still running after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the leader has exited (it may not have been reaped yet).
    pub fn has_exited(&self) -> bool {
        match fs::read_to_string(format!("/proc/{}/stat", self.child.id())) {
            Ok(stat) => stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z')),
            Err(_) => true,
        }
    }

    /// The process id of the group leader.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // `dapr run -f` moves itself into a process group of its own, so the groups of all
        // descendants are collected before anything exits (an orphan loses its ancestry).
        let groups = self.descendant_groups();
        let signal_all = |signal| {
            for pgid in &groups {
                let _ = killpg(Pid::from_raw(*pgid), signal);
            }
        };
        if let Ok(None) = self.child.try_wait() {
            signal_all(Signal::SIGTERM);
            if self.wait_exit(Duration::from_secs(5)).is_none() {
                signal_all(Signal::SIGKILL);
                let _ = self.child.wait();
            }
        }
        // Whatever outlived the leader (a sidecar, say) goes too.
        signal_all(Signal::SIGKILL);
    }
}

impl Proc {
    /// The process groups of this process and all its descendants.
    fn descendant_groups(&self) -> Vec<i32> {
        let mut parents: HashMap<i32, Vec<(i32, i32)>> = HashMap::new();
        for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                continue;
            };
            let mut fields = rest.split_whitespace().skip(1);
            let (Some(ppid), Some(pgrp)) = (fields.next(), fields.next()) else {
                continue;
            };
            if let (Ok(ppid), Ok(pgrp)) = (ppid.parse(), pgrp.parse()) {
                parents.entry(ppid).or_default().push((pid, pgrp));
            }
        }
        let Ok(root) = i32::try_from(self.child.id()) else {
            return Vec::new();
        };
        let mut groups = vec![root];
        let mut queue = vec![root];
        while let Some(pid) = queue.pop() {
            for (child, pgrp) in parents.get(&pid).into_iter().flatten() {
                queue.push(*child);
                if !groups.contains(pgrp) {
                    groups.push(*pgrp);
                }
            }
        }
        groups
    }
}

fn spawn_reader(
    stream: impl std::io::Read + Send + 'static,
    output: Arc<Output>,
    file: Arc<Mutex<File>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut f) = file.lock() {
                let _ = writeln!(f, "{line}");
            }
            output.lines.lock().expect("output lock").push(line);
            output.changed.notify_all();
        }
    });
}

/// Whether nothing listens on `port` on localhost.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// Fails unless `port` on localhost is free.
pub fn require_free_port(port: u16, what: &str) {
    if !port_is_free(port) {
        panic!(
            "port {port} is in use, but the tests need it for {what}: stop whatever listens there \
             (an earlier `dapr run`, or Redis from `dapr init`) and run the tests again"
        );
    }
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A private `redis-server`, by default on port 6379 where `components/` and `dapr init`
/// expect Redis, with its data in a temporary folder.
pub struct Redis {
    proc: Option<Proc>,
    dir: tempfile::TempDir,
    logs: PathBuf,
    port: u16,
    persistent: bool,
    starts: usize,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redis(port {}, {:?})", self.port, self.proc)
    }
}

/// Redis's port in the tests and in `components/`.
pub const REDIS_PORT: u16 = 6379;

impl Redis {
    /// Starts Redis on 6379 without persistence and waits until it accepts connections.
    pub fn start(logs: &Path) -> Self {
        Self::start_on(logs, REDIS_PORT, false)
    }

    /// Starts Redis on `port`; when `persistent`, every write is in its append-only file, so a
    /// restart keeps the data (a store that was unavailable, not one that was wiped).
    pub fn start_on(logs: &Path, port: u16, persistent: bool) -> Self {
        let mut redis = Self {
            proc: None,
            dir: tempfile::tempdir().expect("temp dir"),
            logs: logs.to_path_buf(),
            port,
            persistent,
            starts: 0,
        };
        redis.start_again();
        redis
    }

    /// Starts Redis again after [`Redis::stop`].
    pub fn start_again(&mut self) {
        require_free_port(self.port, "Redis");
        self.starts += 1;
        let port = self.port.to_string();
        let mut args = vec!["--port", &port, "--bind", "127.0.0.1", "--save", ""];
        if self.persistent {
            args.extend(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            args.extend(["--appendonly", "no"]);
        }
        let proc = Proc::program(
            &format!("redis-{}-{}", self.port, self.starts),
            "redis-server",
            &args,
            self.dir.path(),
            &[],
            &self.logs,
        );
        proc.wait_for("Ready to accept connections", Duration::from_secs(10));
        self.proc = Some(proc);
    }

    /// Stops Redis at once (SIGKILL): whatever uses it finds it unavailable.
    pub fn stop(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            proc.signal(Signal::SIGKILL);
            let _ = proc.wait_exit(Duration::from_secs(5));
        }
    }

    /// Runs `redis-cli` with `args` and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(which("redis-cli").unwrap_or_else(|| PathBuf::from("redis-cli")))
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Dapr's placement and scheduler services on their default ports (50005, 50006), as
/// `dapr init` runs them, so sidecars start without connection errors. Nothing is started when
/// something already listens there.
#[derive(Debug)]
pub struct ControlPlane {
    _procs: Vec<Proc>,
    _dir: tempfile::TempDir,
}

impl ControlPlane {
    /// Starts placement and scheduler from the Dapr install's `bin` folder.
    pub fn start(logs: &Path) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dapr_home().join("bin");
        let mut procs = Vec::new();
        let services: [(&str, u16, Vec<String>); 2] = [
            (
                "placement",
                50005,
                vec![
                    "--port=50005".into(),
                    "--healthz-port=58080".into(),
                    "--metrics-port=59090".into(),
                ],
            ),
            (
                "scheduler",
                50006,
                vec![
                    "--port=50006".into(),
                    "--healthz-port=58081".into(),
                    "--metrics-port=59091".into(),
                    format!("--etcd-data-dir={}", dir.path().join("etcd").display()),
                ],
            ),
        ];
        for (name, port, args) in services {
            let program = bin.join(name);
            if !program.is_file() || !port_is_free(port) {
                continue;
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let proc = Proc::program(
                name,
                &program.display().to_string(),
                &args,
                dir.path(),
                &[],
                logs,
            );
            assert!(
                wait_for_port(port, Duration::from_secs(20)),
                "{name} did not listen on {port}:\n{}",
                proc.tail(30)
            );
            procs.push(proc);
        }
        Self {
            _procs: procs,
            _dir: dir,
        }
    }
}

/// What most tests need: serialised access, built services, Redis and the control plane.
pub struct Env {
    /// This test's log folder.
    pub logs: PathBuf,
    /// Redis for pub/sub and state.
    pub redis: Redis,
    _control_plane: ControlPlane,
    _serial: MutexGuard<'static, ()>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Env({})", self.logs.display())
    }
}

impl Env {
    /// Sets up a test called `test`.
    pub fn new(test: &str) -> Self {
        let serial = serial();
        require_tools();
        build_services();
        let logs = log_dir(test);
        let control_plane = ControlPlane::start(&logs);
        let redis = Redis::start(&logs);
        Self {
            logs,
            redis,
            _control_plane: control_plane,
            _serial: serial,
        }
    }

    /// Runs `command` from the repository root.
    pub fn run(&self, name: &str, command: &str, envs: &[(&str, &str)]) -> Proc {
        Proc::shell(name, command, &repo_root(), envs, &self.logs)
    }
}

/// Copies `components/` to a temporary folder, applying `edit` to each file's text; for fault
/// tests that need a component to point somewhere else.
pub fn components_with(edit: impl Fn(&str, String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for entry in fs::read_dir(repo_root().join("components")).expect("components/ exists") {
        let path = entry.expect("readable entry").path();
        let name = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let text = fs::read_to_string(&path).expect("readable component");
        fs::write(dir.path().join(&name), edit(&name, text)).expect("writable temp dir");
    }
    dir
}

/// Runs a shell command from the repository root (a README `curl`, say) and returns what it
/// printed on stdout.
pub fn shell_output(command: &str) -> String {
    shell_output_with(command, &[])
}

/// [`shell_output`] with extra environment variables.
pub fn shell_output_with(command: &str, envs: &[(&str, &str)]) -> String {
    let out = Command::new("bash")
        .args(["-c", command])
        .current_dir(repo_root())
        .env("PATH", search_path())
        .envs(envs.iter().copied())
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{command} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a shell command from the repository root and returns whether it succeeded, its stdout
/// and its stderr; for a command the README shows failing (a refused `dapr invoke`, say).
pub fn shell_run(command: &str) -> (bool, String, String) {
    let out = Command::new("bash")
        .args(["-c", command])
        .current_dir(repo_root())
        .env("PATH", search_path())
        .output()
        .expect("bash runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `command` from the repository root as a user typing it in a new terminal: a login shell
/// with a clean environment (only `HOME`, `USER` and `TERM`), so `PATH` is what the system's
/// profile gives, not what the tests or `scripts/test.sh` added. Returns stdout.
pub fn new_terminal_output(command: &str) -> String {
    let mut cmd = Command::new("bash");
    cmd.args(["-lc", command])
        .current_dir(repo_root())
        .env_clear();
    for var in ["HOME", "USER", "TERM"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    let out = cmd.output().expect("bash runs");
    assert!(
        out.status.success(),
        "in a new terminal, {command} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` every 100 ms until it is true or `timeout` passes; returns the last result.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Appends a line to `target/e2e-logs/scenarios.md`, the numbers each fault scenario measured.
pub fn record_scenario(line: &str) {
    eprintln!("SCENARIO {line}");
    let path = repo_root().join("target/e2e-logs/scenarios.md");
    if let Ok(mut f) = fs::OpenOptions::new().create(true).append(true).open(path) {
        let _ = writeln!(f, "{line}");
    }
}

/// Counts of each distinct value, for assertions on many results.
pub fn tally<T: std::hash::Hash + Eq>(items: impl IntoIterator<Item = T>) -> HashMap<T, usize> {
    let mut counts = HashMap::new();
    for item in items {
        *counts.entry(item).or_insert(0) += 1;
    }
    counts
}
