#!/usr/bin/env python3
"""Runs the benchmark suite; `scripts/bench.sh` builds the binaries and then runs this.

Stages (each one starts what it needs and stops it again):

1. start-up: exec → port accepts TCP, repeated, median; resident memory once up (bench-probe).
2. alone: the bare-axum reference server and order-processor without a sidecar, under wrk at
   fixed connection counts, with the per-order log line on (RUST_LOG=info, stdout to a file)
   and off (RUST_LOG=off), plus a few single-point variants.
3. invocation: wrk → caller daprd (`dapr-app-id`) → callee daprd → order-processor, and the same
   load straight to order-processor in the same run; then checkout's own loop through the same
   sidecars.
4. pub/sub: order-service and inventory-service with their daprd and Redis: saturated
   throughput with an exact-stock check, then the open-loop publish-to-applied probe at a fixed
   rate.

Everything runs on 127.0.0.1 with app ids prefixed `bench-` and ports 16379 and 17000-17999, so it
never meets the end-to-end tests' ids or ports. Every process is started in its own session and
killed with its process group on exit, Ctrl-C or error (and with PR_SET_PDEATHSIG if this
process dies without cleaning up).

Only the standard library is used. Results: results.json, then report.py renders results.md and
chart.svg from it.
"""

from __future__ import annotations

import argparse
import calendar
import ctypes
import datetime
import http.client as http_client
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in the work tree
import report  # noqa: E402  (bench/report.py, next to this file)

LUA = HERE / "wrk" / "bench.lua"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Ports: 16379 for Redis, 17000-17999 for apps and sidecars.
REDIS_PORT = 16379
PORT_AXUM = 17000
PORT_OP_ALONE = 17001
STARTUP_PORTS = {"bench-axum": 17010, "order-processor": 17011, "checkout": 17012,
                 "order-service": 17013, "inventory-service": 17014}
PORT_OP = 17101
PORT_CHECKOUT = 17102
PORT_ORDER_SERVICE = 17201
PORT_INVENTORY = 17202
# daprd: http, grpc, internal grpc, metrics.
SIDECARS = {
    "bench-order-processor": (17110, 17111, 17112, 17113),
    "bench-checkout": (17120, 17121, 17122, 17123),
    "bench-order-service": (17210, 17211, 17212, 17213),
    "bench-inventory-service": (17220, 17221, 17222, 17223),
}
UNUSED_PORT = 17999  # checkout's sidecar port in the start-up stage: nothing listens there

# Environment variables the services read; never inherited from the caller's shell.
SERVICE_VARS = re.compile(r"^(DAPR_|APP_|RUST_LOG$|LOG_FORMAT$|PUBSUB_NAME$|STATE_STORE_NAME$|CHECKOUT_)")

PROCESSED = re.compile(
    r"^(\S+)\s+INFO\s+Processed OrderPlaced event\. orderId=([^,\s]+), itemId=([^,\s]+), "
    r"ordered=(\d+), remaining=(\d+)")
PUBLISHED = re.compile(
    r"^(\S+)\s+INFO\s+Published OrderPlaced event\. orderId=([^,\s]+), itemId=([^,\s]+), "
    r"quantity=(\d+)")
DUPLICATE = re.compile(r"Skipped duplicate OrderPlaced event\. orderId=([^,\s]+)")
RETRIED = re.compile(r"OrderPlaced event not processed")
REJECTED = re.compile(r"Rejected OrderPlaced event")


class Settings:
    """Durations and sizes of one mode."""

    def __init__(self, smoke: bool):
        self.mode = "smoke" if smoke else "full"
        self.duration = 1 if smoke else 8            # seconds per wrk point
        self.warmup = 0 if smoke else 2              # seconds of wrk before each sweep
        self.conns = [1, 8, 32, 64]
        self.single_point_conns = 32                 # for the extra log variants
        self.startup_runs = 3 if smoke else 20
        self.settle_ms = 200 if smoke else 1000
        self.checkout_orders = 100 if smoke else 3000
        self.e2e_conns = 4 if smoke else 16
        self.e2e_duration = 2 if smoke else 15
        self.drain_timeout = 30 if smoke else 120
        self.items = 8
        self.stock = 1_000_000
        self.probe_rate = 200
        self.probe_seconds = 1.5 if smoke else 20

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# ---------------------------------------------------------------------------------------------
# Processes


def _child_setup() -> None:
    """In the child, before exec: die with the parent (PR_SET_PDEATHSIG = 1)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:  # noqa: BLE001 - best effort; the process group kill still applies
        pass


class Proc:
    def __init__(self, name: str, popen: subprocess.Popen, log: Path | None):
        self.name = name
        self.popen = popen
        self.pid = popen.pid
        self.log = log

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 20) -> str:
        if not self.log or not self.log.exists():
            return ""
        with open(self.log, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])


class Procs:
    """Every process this run started, each in its own session (process group)."""

    def __init__(self):
        self.procs: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict | None = None,
              log: Path | None = None, stdout_null: bool = False, mode: str = "ab") -> Proc:
        """Starts `argv` in its own session, output appended to `log` (or replacing it with
        mode="wb"), and tracks it so that it is stopped on exit."""
        if stdout_null:
            out = subprocess.DEVNULL
        elif log is not None:
            out = open(log, mode)
        else:
            out = subprocess.DEVNULL
        try:
            popen = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=_child_setup)
        finally:
            if out not in (subprocess.DEVNULL,):
                out.close()
        proc = Proc(name, popen, None if stdout_null else log)
        self.procs.append(proc)
        return proc

    def stop(self, *procs: Proc, grace: float = 5.0) -> None:
        for p in procs:
            if p.alive():
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)  # the group, in case it left children
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.popen.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            if p in self.procs:
                self.procs.remove(p)

    def stop_all(self) -> None:
        self.stop(*list(self.procs))


PROCS = Procs()


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


# ---------------------------------------------------------------------------------------------
# /proc readers


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (all its threads, live and exited)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)


def status_kb(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


def tcp_connections_to(port: int) -> int:
    """Established IPv4 TCP connections whose remote end is 127.0.0.1:`port`."""
    want = f"0100007F:{port:04X}"
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[2] == want and parts[3] == "01":
                n += 1
    return n


def cpu_list(spec: str) -> list[int]:
    """`0`, `1,3` or `1-3` → the CPU numbers."""
    out = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    total = sum(parts[:8])
    return total - idle, total


class CpuWindow:
    """CPU time of some processes, and of the whole machine, between start() and stop()."""

    def __init__(self, procs: dict[str, Proc]):
        self.procs = procs

    def start(self) -> "CpuWindow":
        self.t0 = time.monotonic()
        self.m0 = machine_ticks()
        self.c0 = {n: cpu_ticks(p.pid) for n, p in self.procs.items()}
        return self

    def stop(self) -> dict:
        c1 = {n: cpu_ticks(p.pid) for n, p in self.procs.items()}
        m1 = machine_ticks()
        wall = time.monotonic() - self.t0
        busy = (m1[0] - self.m0[0]) / CLK_TCK
        capacity = (m1[1] - self.m0[1]) / CLK_TCK
        per = {n: (c1[n] - self.c0[n]) / CLK_TCK for n in self.procs}
        return {"wall_s": round(wall, 3), "cpu_s": per,
                "machine_busy_s": round(busy, 2), "machine_capacity_s": round(capacity, 2)}


# ---------------------------------------------------------------------------------------------
# Helpers


def log_ts_us(ts: str) -> int:
    """`2026-11-21T06:11:47.159349Z` (tracing-subscriber's timestamp) → Unix microseconds."""
    secs = calendar.timegm((int(ts[0:4]), int(ts[5:7]), int(ts[8:10]),
                            int(ts[11:13]), int(ts[14:16]), int(ts[17:19]), 0, 0, 0))
    frac = ts[20:].rstrip("Z") if len(ts) > 20 and ts[19] == "." else ""
    return secs * 1_000_000 + int((frac + "000000")[:6] or 0)


def percentile(sorted_values: list, p: float):
    """Nearest-rank percentile of a sorted list (None when empty)."""
    if not sorted_values:
        return None
    n = len(sorted_values)
    rank = math.ceil(p / 100.0 * n - 1e-9)  # the epsilon absorbs float error (0.999 * 1000)
    return sorted_values[min(n, max(1, rank)) - 1]


def summarize(values: list) -> dict:
    s = sorted(values)
    return {"n": len(s), "p50": percentile(s, 50), "p90": percentile(s, 90),
            "p99": percentile(s, 99), "p99.9": percentile(s, 99.9),
            "max": s[-1] if s else None}


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, proc: Proc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited before listening on {port}:\n{proc.tail()}")
        time.sleep(0.02)
    raise RuntimeError(f"{proc.name} did not listen on {port} within {timeout}s:\n{proc.tail()}")


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None,
         timeout: float = 5) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e).encode()


def wait_http(url: str, want: int, proc: Proc, timeout: float = 60, method: str = "GET",
              body: dict | None = None, headers: dict | None = None) -> float:
    started = time.monotonic()
    last = (0, b"")
    while time.monotonic() - started < timeout:
        last = http(method, url, body, headers)
        if last[0] == want:
            return time.monotonic() - started
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer {want} within {timeout}s (last: {last[0]} "
                       f"{last[1][:300]!r}):\n{proc.tail()}")


def check_ports_free(ports: list[int]) -> None:
    busy = [p for p in ports if port_open(p)]
    if busy:
        raise RuntimeError(f"ports already in use: {busy}; is another benchmark running? "
                           "(the benchmark uses 16379 and 17000-17999)")


def service_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not SERVICE_VARS.match(k)}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def command_output(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"


class LogFollower:
    """Reads new complete lines of a log file since the last call."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.partial = b""

    def new_lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        return [line.decode(errors="replace") for line in lines]


# ---------------------------------------------------------------------------------------------
# The run


class Bench:
    def __init__(self, settings: Settings, bin_dir: Path, run_dir: Path):
        self.s = settings
        self.bin = bin_dir
        self.run = run_dir
        self.daprd = Path(os.environ.get("DAPRD", Path.home() / ".dapr" / "bin" / "daprd"))
        self.results: dict = {"schema": 1, "settings": settings.as_dict()}
        self.components = self.run / "components"
        self.profile_bin = bin_dir
        self.pin = True

    def say(self, msg: str) -> None:
        print(f"==> {msg}", file=sys.stderr, flush=True)

    # -- setup -----------------------------------------------------------------------------

    def machine(self) -> dict:
        cpu = "unknown"
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        mem_kb = 0
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        return {
            "cpu_model": cpu,
            "cores": os.cpu_count(),
            "ram_gib": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(),
            "os": command_output(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
            "rustc": command_output(["rustc", "-V"]),
            "daprd": command_output([str(self.daprd), "--version"]),
            "redis": command_output(["redis-server", "--version"]).split(" sha=")[0],
            "wrk": command_output(["wrk", "-v"]).splitlines()[0] if shutil.which("wrk") else "missing",
            "python": platform.python_version(),
            "git_commit": command_output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
            "git_dirty": bool(command_output(["git", "-C", str(ROOT), "status", "--porcelain",
                                              "--untracked-files=no"])),
            "loadavg_at_start": load,
        }

    def render_components(self) -> None:
        """components/ with Redis on REDIS_PORT and every app id prefixed with `bench-`."""
        self.components.mkdir(parents=True, exist_ok=True)
        ids = "order-service|inventory-service|order-processor|checkout"
        for src in sorted((ROOT / "components").glob("*.yaml")):
            text = src.read_text()
            text = text.replace("localhost:6379", f"localhost:{REDIS_PORT}")
            text = re.sub(rf"^(\s*-\s*)({ids})\s*$", r"\1bench-\2", text, flags=re.M)
            text = re.sub(rf"^(\s*)({ids}):\s*$", r"\1bench-\2:", text, flags=re.M)
            (self.components / src.name).write_text(text)
        rendered = "".join(p.read_text() for p in self.components.glob("*.yaml"))
        if ":6379" in rendered or re.search(rf"^\s*-\s*({ids})\s*$", rendered, flags=re.M):
            raise RuntimeError(f"rendering {self.components} left a non-bench id or port")

    def start_daprd(self, app_id: str, app_port: int | None) -> Proc:
        http_port, grpc, internal, metrics = SIDECARS[app_id]
        argv = [str(self.daprd), "--app-id", app_id,
                "--dapr-http-port", str(http_port), "--dapr-grpc-port", str(grpc),
                "--dapr-internal-grpc-port", str(internal), "--metrics-port", str(metrics),
                "--dapr-listen-addresses", "127.0.0.1", "--metrics-listen-address", "127.0.0.1",
                "--placement-host-address", "", "--scheduler-host-address", "",
                "--resources-path", str(self.components), "--log-level", "warn",
                "--dapr-graceful-shutdown-seconds", "1"]
        if app_port is not None:
            argv += ["--app-port", str(app_port), "--app-protocol", "http"]
        env = service_env()
        return PROCS.start(f"daprd {app_id}", argv, env, self.run / f"daprd-{app_id}.log")

    def start_service(self, name: str, port: int, log_name: str | None = None,
                      stdout_null: bool = False, cpus: str | None = None, **env) -> Proc:
        env.setdefault("RUST_LOG", "info")
        argv = [str(self.bin / name)]
        if cpus:
            argv = ["taskset", "-c", cpus, *argv]  # taskset execs the binary: same pid
        proc = PROCS.start(name, argv, service_env(APP_PORT=port, **env),
                           self.run / f"{log_name or name}.log", stdout_null=stdout_null)
        wait_port(port, proc)
        return proc

    def pinning(self) -> tuple[str | None, str | None]:
        """CPUs for the server and for wrk in the alone stage: the server on the first CPU this
        process may use, wrk on the others, so that they do not take turns on the same core.
        (None, None) when pinning is off or there is only one CPU."""
        cpus = sorted(os.sched_getaffinity(0))
        if not self.pin or len(cpus) < 2 or not shutil.which("taskset"):
            return None, None
        return str(cpus[0]), ",".join(str(c) for c in cpus[1:])

    # -- wrk -------------------------------------------------------------------------------

    def wrk(self, label: str, port: int, conns: int, duration: int, watch: dict[str, Proc],
            threads: int | None = None, cpus: str | None = None, **env) -> dict:
        threads = threads or min(conns, 2 if cpus is None else len(cpu_list(cpus)))
        out = self.run / f"wrk-{label}-c{conns}.txt"
        argv = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "5s",
                "-s", str(LUA), f"http://127.0.0.1:{port}"]
        if cpus:
            argv = ["taskset", "-c", cpus, *argv]
        wenv = dict(os.environ)
        for k in ("BENCH_PATH", "BENCH_BODY", "BENCH_APP_ID", "BENCH_UNIQUE", "BENCH_PREFIX",
                  "BENCH_ITEMS"):
            wenv.pop(k, None)
        wenv.update({k: str(v) for k, v in env.items()})
        window = CpuWindow(watch).start()
        proc = PROCS.start(f"wrk {label}", argv, wenv, out, mode="wb")
        p = proc.popen
        try:
            _, status, rusage = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
        finally:
            if proc in PROCS.procs:
                PROCS.procs.remove(proc)
        cpu = window.stop()
        text = out.read_text(errors="replace")
        line = next((ln for ln in text.splitlines() if ln.startswith("WRK_JSON ")), None)
        if p.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({p.returncode}):\n{text[-2000:]}")
        w = json.loads(line[len("WRK_JSON "):])
        secs = w["duration_us"] / 1e6
        errors = sum(w["errors"].values())
        ok = w["requests"] - w["errors"]["status"]
        result = {
            "conns": conns, "threads": threads, "duration_s": round(secs, 3),
            "requests": w["requests"], "rps": round(w["requests"] / secs, 1),
            "ok_rps": round(ok / secs, 1), "errors": w["errors"], "error_count": errors,
            "latency_us": w["latency_us"],
            "cpu_s": {n: round(v, 2) for n, v in cpu["cpu_s"].items()},
            "cpu_us_per_request": {n: round(v * 1e6 / max(1, w["requests"]), 2)
                                   for n, v in cpu["cpu_s"].items()},
            "wrk_cpu_s": round(rusage.ru_utime + rusage.ru_stime, 2),
            "wrk_cpus": cpus,
            "machine_busy_s": cpu["machine_busy_s"],
            "machine_capacity_s": cpu["machine_capacity_s"],
        }
        # CPU the machine spent on neither the watched processes nor wrk: other load (noise).
        result["other_cpu_s"] = round(max(0.0, cpu["machine_busy_s"] - sum(cpu["cpu_s"].values())
                                          - result["wrk_cpu_s"]), 2)
        lat = w["latency_us"]
        self.say(f"  {label:<28} c={conns:<3} {result['rps']:>10.0f} req/s  p50 {lat['p50']:>6} us"
                 f"  p99 {lat['p99']:>6} us  p99.9 {lat['p99.9']:>6} us  errors {errors}")
        return result

    def sweep(self, label: str, port: int, conns: list[int], watch: dict[str, Proc],
              rss_pid: int | None = None, cpus: str | None = None, **env) -> list[dict]:
        if self.s.warmup:
            self.wrk(f"{label}-warmup", port, max(conns), self.s.warmup, watch, cpus=cpus, **env)
        runs = []
        for c in conns:
            r = self.wrk(label, port, c, self.s.duration, watch, cpus=cpus, **env)
            if rss_pid is not None:
                r["hwm_kb_after"] = status_kb(rss_pid, "VmHWM")
                r["rss_kb_after"] = status_kb(rss_pid, "VmRSS")
            runs.append(r)
        return runs

    # -- stages ----------------------------------------------------------------------------

    def stage_startup(self) -> None:
        self.say("start-up time: exec until the port accepts TCP connections "
                 f"(median of {self.s.startup_runs})")
        out = {}
        for name, port in STARTUP_PORTS.items():
            env = [f"APP_PORT={port}", "RUST_LOG=info"]
            if name == "checkout":
                # checkout serves /healthz when APP_PORT is set; its sidecar is absent here,
                # so it keeps waiting for it, which is its idle state.
                env.append(f"DAPR_HTTP_PORT={UNUSED_PORT}")
            argv = [str(self.bin / "bench-probe"), "startup", "--port", str(port),
                    "--runs", str(self.s.startup_runs), "--settle-ms", str(self.s.settle_ms),
                    "--log", str(self.run / f"startup-{name}.log")]
            for e in env:
                argv += ["--env", e]
            clean = service_env()
            argv += ["--", str(self.bin / name)]
            res = subprocess.run(argv, capture_output=True, text=True, env=clean, timeout=300)
            if res.returncode != 0:
                raise RuntimeError(f"start-up probe of {name} failed: {res.stderr}")
            r = json.loads(res.stdout)
            r.pop("program", None)
            out[name] = r
            self.say(f"  {name:<18} median {r['median_us'] / 1000:6.2f} ms  "
                     f"(min {r['min_us'] / 1000:.2f}, max {r['max_us'] / 1000:.2f})  "
                     f"idle RSS {r['idle']['rss_kb']} kB")
        self.results["startup"] = out

    def stage_alone(self) -> None:
        self.say(f"alone: {self.s.duration}s per point, connections {self.s.conns}")
        variants = [
            # (key, binary, description, env, stdout to /dev/null, connection counts)
            ("axum", "bench-axum", "bare axum JSON endpoint (reference)", {}, True, self.s.conns),
            ("op_info", "order-processor", "order-processor, RUST_LOG=info (log line on, stdout to a file)",
             {"RUST_LOG": "info"}, False, self.s.conns),
            ("op_off", "order-processor", "order-processor, RUST_LOG=off (log line off)",
             {"RUST_LOG": "off"}, False, self.s.conns),
            ("op_info_null", "order-processor", "order-processor, RUST_LOG=info, stdout to /dev/null",
             {"RUST_LOG": "info"}, True, [self.s.single_point_conns]),
            ("op_json", "order-processor", "order-processor, RUST_LOG=info, LOG_FORMAT=json, stdout to a file",
             {"RUST_LOG": "info", "LOG_FORMAT": "json"}, False, [self.s.single_point_conns]),
        ]
        out = {}
        server_cpus, wrk_cpus = self.pinning()
        self.results["alone_pinning"] = {"server_cpus": server_cpus, "wrk_cpus": wrk_cpus}
        if server_cpus:
            self.say(f"  server pinned to CPU {server_cpus}, wrk to CPU {wrk_cpus} (taskset)")
        for key, binary, desc, env, null, conns in variants:
            proc = self.start_service(binary, PORT_OP_ALONE, log_name=f"alone-{key}",
                                      stdout_null=null, cpus=server_cpus, **env)
            time.sleep(0.2)
            idle = {"rss_kb": status_kb(proc.pid, "VmRSS"), "hwm_kb": status_kb(proc.pid, "VmHWM")}
            runs = self.sweep(key, PORT_OP_ALONE, conns, {binary: proc}, rss_pid=proc.pid,
                              cpus=wrk_cpus)
            out[key] = {"binary": binary, "description": desc, "env": env,
                        "stdout": "/dev/null" if null else "file", "idle": idle, "runs": runs,
                        "peak_hwm_kb": status_kb(proc.pid, "VmHWM")}
            PROCS.stop(proc)
            if proc.log and proc.log.exists() and proc.log.stat().st_size > 20_000_000:
                # Keep the disk use of a run small: the lines are all alike.
                with open(proc.log, "rb") as f:
                    head = f.read(200_000)
                proc.log.write_bytes(head + b"\n[... truncated by bench.py ...]\n")
        self.results["alone"] = out

    def stage_invocation(self) -> None:
        self.say("invocation through the real sidecars: wrk → daprd (bench-checkout) → "
                 "daprd (bench-order-processor) → order-processor")
        op = self.start_service("order-processor", PORT_OP, log_name="invocation-order-processor")
        callee = self.start_daprd("bench-order-processor", PORT_OP)
        caller = self.start_daprd("bench-checkout", None)
        callee_http = SIDECARS["bench-order-processor"][0]
        caller_http = SIDECARS["bench-checkout"][0]
        wait_http(f"http://127.0.0.1:{callee_http}/v1.0/healthz", 204, callee)
        wait_http(f"http://127.0.0.1:{caller_http}/v1.0/healthz", 204, caller)
        # The first call also waits for mDNS to resolve the callee.
        wait_http(f"http://127.0.0.1:{caller_http}/orders", 200, caller, method="POST",
                  body={"orderId": 1}, headers={"dapr-app-id": "bench-order-processor"})
        watch = {"order-processor": op, "daprd (caller)": caller, "daprd (callee)": callee}
        via_env = {"BENCH_APP_ID": "bench-order-processor"}

        def breaker_closed() -> float:
            """Waits until a call through the sidecars passes again; returns the wait.

            Every wrk run ends by closing its connections with requests in flight. The caller
            sidecar counts each cancelled call as a failure of the callee, so five of them in
            a row open the project's `callee` circuit breaker (components/resiliency.yaml) for
            10 s, and every call fails fast until it closes."""
            return wait_http(f"http://127.0.0.1:{caller_http}/orders", 200, caller,
                             method="POST", body={"orderId": 1}, timeout=30,
                             headers={"dapr-app-id": "bench-order-processor"})

        if self.s.warmup:
            self.wrk("via-sidecars-warmup", caller_http, max(self.s.conns), self.s.warmup,
                     watch, **via_env)
            self.wrk("direct-warmup", PORT_OP, max(self.s.conns), self.s.warmup, watch)
        via, direct = [], []
        # Interleaved, so that a breaker opened by the end of one run has time to close.
        for c in self.s.conns:
            waited = breaker_closed()
            r = self.wrk("via-sidecars", caller_http, c, self.s.duration, watch, **via_env)
            r["breaker_wait_s"] = round(waited, 2)
            r["hwm_kb_after"] = status_kb(op.pid, "VmHWM")
            if r["errors"]["status"]:
                code, body = http("POST", f"http://127.0.0.1:{caller_http}/orders",
                                  {"orderId": 1}, {"dapr-app-id": "bench-order-processor"})
                r["error_sample"] = f"{code} {body[:300].decode(errors='replace')}"
            via.append(r)
            r = self.wrk("direct", PORT_OP, c, self.s.duration, watch)
            r["hwm_kb_after"] = status_kb(op.pid, "VmHWM")
            direct.append(r)
        sidecar_rss = {"caller": status_kb(caller.pid, "VmHWM"),
                       "callee": status_kb(callee.pid, "VmHWM")}

        # checkout's own loop, one order after another, through the same sidecars.
        n = self.s.checkout_orders
        self.say(f"  checkout loop: {n} orders back to back through the sidecars")
        env = service_env(APP_PORT=PORT_CHECKOUT, DAPR_HTTP_PORT=caller_http, RUST_LOG="info",
                          CHECKOUT_TARGET_APP_ID="bench-order-processor",
                          CHECKOUT_ORDERS_PER_ROUND=n, CHECKOUT_ROUNDS=1,
                          CHECKOUT_INTERVAL_MS=0, CHECKOUT_PAUSE_MS=0)
        breaker_closed()
        window = CpuWindow(watch).start()
        started = time.monotonic()
        log = self.run / "checkout.log"
        proc = PROCS.start("checkout", [str(self.bin / "checkout")], env, log, mode="wb")
        p = proc.popen
        # Peak RSS is VmHWM, polled while it runs: wait4's ru_maxrss would include the
        # resident pages of this Python process, which the child had between fork and exec.
        hwm = 0
        try:
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                hwm = max(hwm, status_kb(p.pid, "VmHWM") or 0)
                time.sleep(0.02)
            p.returncode = os.waitstatus_to_exitcode(status)
        finally:
            PROCS.procs.remove(proc)
        elapsed = time.monotonic() - started
        cpu = window.stop()
        checkout_cpu = ru.ru_utime + ru.ru_stime
        cpu["cpu_s"]["checkout"] = checkout_cpu
        text = log.read_text(errors="replace")
        passed = text.count("Order passed:")
        if p.returncode != 0 or passed != n:
            self.say(f"  warning: checkout exited {p.returncode} with {passed}/{n} orders passed")
        loop = {
            "orders": n, "passed": passed, "exit_code": p.returncode,
            "elapsed_s": round(elapsed, 3), "orders_per_s": round(passed / elapsed, 1),
            "mean_ms_per_order": round(elapsed * 1000 / max(1, passed), 3),
            "peak_rss_kb": hwm, "cpu_s": {k: round(v, 3) for k, v in cpu["cpu_s"].items()},
            "machine_busy_s": cpu["machine_busy_s"],
        }
        self.say(f"  checkout loop: {loop['orders_per_s']} orders/s "
                 f"({loop['mean_ms_per_order']} ms each), peak RSS {hwm} kB")
        PROCS.stop(caller, callee, op)
        self.results["invocation"] = {"via_sidecars": via, "direct": direct,
                                      "sidecar_hwm_kb": sidecar_rss,
                                      "order_processor_peak_hwm_kb": max(
                                          r.get("hwm_kb_after") or 0 for r in via + direct),
                                      "checkout_loop": loop}

    def stage_pubsub(self) -> None:
        self.say("pub/sub end to end: order-service → daprd → Redis → daprd → inventory-service")
        redis = PROCS.start("redis", ["redis-server", "--port", str(REDIS_PORT), "--bind",
                                      "127.0.0.1", "--save", "", "--appendonly", "no"],
                            log=self.run / "redis.log")
        wait_port(REDIS_PORT, redis)
        inv = self.start_service("inventory-service", PORT_INVENTORY,
                                 DAPR_HTTP_PORT=SIDECARS["bench-inventory-service"][0])
        osvc = self.start_service("order-service", PORT_ORDER_SERVICE,
                                  DAPR_HTTP_PORT=SIDECARS["bench-order-service"][0])
        inv_d = self.start_daprd("bench-inventory-service", PORT_INVENTORY)
        os_d = self.start_daprd("bench-order-service", PORT_ORDER_SERVICE)
        wait_http(f"http://127.0.0.1:{SIDECARS['bench-inventory-service'][0]}/v1.0/healthz", 204, inv_d)
        wait_http(f"http://127.0.0.1:{SIDECARS['bench-order-service'][0]}/v1.0/healthz", 204, os_d)
        idle = {"order-service": status_kb(osvc.pid, "VmRSS"),
                "inventory-service": status_kb(inv.pid, "VmRSS")}
        items = [f"item{k}" for k in range(self.s.items)]
        for item in items:
            code, body = http("POST", f"http://127.0.0.1:{PORT_INVENTORY}/inventory/{item}",
                              {"quantity": self.s.stock})
            if code != 200:
                raise RuntimeError(f"setting the stock of {item} failed: {code} {body[:300]!r}")

        inv_log = LogFollower(inv.log)
        os_log = LogFollower(osvc.log)
        processed: dict[str, tuple[int, str, int]] = {}  # orderId → (ts_us, itemId, remaining)
        published: dict[str, tuple[int, str]] = {}        # orderId → (ts_us, itemId)
        counters = {"duplicates": 0, "retried": 0, "rejected": 0, "applied_twice": 0}

        def poll() -> None:
            for line in inv_log.new_lines():
                m = PROCESSED.match(line)
                if m:
                    if m.group(2) in processed:
                        counters["applied_twice"] += 1
                    processed[m.group(2)] = (log_ts_us(m.group(1)), m.group(3), int(m.group(5)))
                elif DUPLICATE.search(line):
                    counters["duplicates"] += 1
                elif RETRIED.search(line):
                    counters["retried"] += 1
                elif REJECTED.search(line):
                    counters["rejected"] += 1
            for line in os_log.new_lines():
                m = PUBLISHED.match(line)
                if m:
                    published[m.group(2)] = (log_ts_us(m.group(1)), m.group(3))

        def drain(prefix: str, timeout: float) -> float:
            """Waits until every published order with `prefix` is processed; returns the wait."""
            started = time.monotonic()
            last_progress, last_count = started, -1
            while True:
                poll()
                want = {o for o in published if o.startswith(prefix)}
                done = sum(1 for o in want if o in processed)
                if done == len(want):
                    return time.monotonic() - started
                if done != last_count:
                    last_progress, last_count = time.monotonic(), done
                now = time.monotonic()
                if now - started > timeout or now - last_progress > 30:
                    self.say(f"  warning: {len(want) - done} of {len(want)} '{prefix}' orders "
                             f"not processed after {now - started:.0f}s")
                    return now - started
                time.sleep(0.2)

        def stock_check(baseline: dict[str, int]) -> dict:
            """Exactly once: every order order-service acknowledged is applied, none twice, and
            each item's stock is its starting stock minus the orders applied to it (quantity
            1 each). An order whose request wrk cut off at the end of its run may have been
            published without being acknowledged; it counts if inventory-service applied it,
            so first wait until no order has been applied for a second."""
            deadline = time.monotonic() + 15
            seen = -1
            while len(processed) != seen and time.monotonic() < deadline:
                seen = len(processed)
                time.sleep(1.0)
                poll()
            expected, actual, last_logged = {}, {}, {}
            for item in items:
                applied = [(ts, rem) for (ts, it, rem) in processed.values() if it == item]
                expected[item] = baseline[item] - len(applied)
                last_logged[item] = min((rem for _, rem in applied), default=baseline[item])
                code, body = http("GET", f"http://127.0.0.1:{PORT_INVENTORY}/inventory/{item}")
                actual[item] = json.loads(body)["quantity"] if code == 200 else None
            unapplied = sorted(o for o in published if o not in processed)
            unacknowledged = sorted(o for o in processed if o not in published)
            exact = (expected == actual == last_logged and not unapplied
                     and counters["applied_twice"] == 0)
            return {"exact": exact, "expected": expected, "actual": actual,
                    "lowest_remaining_logged": last_logged,
                    "acknowledged_not_applied": unapplied[:20],
                    "applied_not_acknowledged": len(unacknowledged),
                    "applied_twice": counters["applied_twice"]}

        # Warm-up: one order per item, which also proves the subscription is live.
        for k, item in enumerate(items):
            code, body = http("POST", f"http://127.0.0.1:{PORT_ORDER_SERVICE}/order",
                              {"orderId": f"warm-{k}", "itemId": item, "quantity": 1})
            if code != 200:
                raise RuntimeError(f"warm-up order failed: {code} {body[:300]!r}\n{osvc.tail()}")
        drain("warm-", 60)
        baseline = {item: self.s.stock for item in items}

        watch = {"order-service": osvc, "inventory-service": inv, "daprd (order-service)": os_d,
                 "daprd (inventory-service)": inv_d, "redis": redis}

        # 1. Throughput: wrk, each request a new order, then wait until all are applied.
        self.say(f"  throughput: wrk c={self.s.e2e_conns} for {self.s.e2e_duration}s, "
                 f"{self.s.items} items, then until every accepted order is applied")
        window = CpuWindow(watch).start()
        load_start_us = int(time.time() * 1e6)
        w = self.wrk("pubsub-throughput", PORT_ORDER_SERVICE, self.s.e2e_conns,
                     self.s.e2e_duration, watch, BENCH_PATH="/order", BENCH_UNIQUE=1,
                     BENCH_PREFIX="tp", BENCH_ITEMS=self.s.items)
        load_end_us = int(time.time() * 1e6)
        drain_s = drain("tp-", self.s.drain_timeout)
        cpu_all = window.stop()
        tp_pub = {o: v for o, v in published.items() if o.startswith("tp-")}
        tp_done = {o: v for o, v in processed.items() if o.startswith("tp-")}
        first_pub = min((v[0] for v in tp_pub.values()), default=load_start_us)
        last_done = max((v[0] for v in tp_done.values()), default=load_end_us)
        load_s = (load_end_us - load_start_us) / 1e6
        throughput = {
            "conns": self.s.e2e_conns, "items": self.s.items, "wrk": w,
            "accepted": len(tp_pub), "applied": sum(1 for o in tp_pub if o in tp_done),
            "accepted_per_s": round(len(tp_pub) / load_s, 1),
            "applied_per_s": round(len(tp_done) / max(1e-6, (last_done - first_pub) / 1e6), 1),
            "backlog_drain_s": round(max(0, last_done - load_end_us) / 1e6, 2),
            "drain_wait_s": round(drain_s, 2),
            "cpu_load_and_drain": cpu_all,
        }
        throughput["stock"] = stock_check(baseline)
        throughput.update({k: v for k, v in counters.items()})
        # One reqwest::Client per service, so its pooled keep-alive connections to the sidecar
        # are reused: count them once the load is over (idle pooled connections stay open).
        throughput["app_to_sidecar_connections"] = {
            "order-service": tcp_connections_to(SIDECARS["bench-order-service"][0]),
            "inventory-service": tcp_connections_to(SIDECARS["bench-inventory-service"][0]),
        }
        hwm_tp = {"order-service": status_kb(osvc.pid, "VmHWM"),
                  "inventory-service": status_kb(inv.pid, "VmHWM")}
        self.say(f"  throughput: accepted {throughput['accepted_per_s']}/s, applied "
                 f"{throughput['applied_per_s']}/s, stock exact: {throughput['stock']['exact']}")

        # 2. Latency: the open-loop probe at a fixed rate.
        count = int(self.s.probe_rate * self.s.probe_seconds)
        self.say(f"  latency: {count} orders at {self.s.probe_rate}/s (open loop), "
                 "publish-to-applied from inventory-service's log")
        sends = self.run / "probe-sends.csv"
        window = CpuWindow(watch).start()
        res = subprocess.run([str(self.bin / "bench-probe"), "publish",
                              "--url", f"http://127.0.0.1:{PORT_ORDER_SERVICE}/order",
                              "--rate", str(self.s.probe_rate), "--count", str(count),
                              "--items", str(self.s.items), "--prefix", "lat",
                              "--out", str(sends)],
                             capture_output=True, text=True, timeout=600)
        cpu_probe = window.stop()
        if res.returncode != 0:
            raise RuntimeError(f"publish probe failed: {res.stderr}")
        probe = json.loads(res.stdout)
        drain("lat-", self.s.drain_timeout)
        lat = []
        missing = 0
        for line in sends.read_text().splitlines()[1:]:
            order_id, _item, send_us, status, _ = line.split(",")
            if not status.startswith("2"):
                continue
            if order_id in processed:
                lat.append(processed[order_id][0] - int(send_us))
            else:
                missing += 1
        latency = {"rate": self.s.probe_rate, "count": count, "probe": probe,
                   "publish_to_applied_us": summarize(lat), "not_applied": missing,
                   "cpu": cpu_probe, "stock": stock_check(baseline)}
        latency["hwm_kb"] = {"order-service": status_kb(osvc.pid, "VmHWM"),
                             "inventory-service": status_kb(inv.pid, "VmHWM")}
        p = latency["publish_to_applied_us"]
        self.say(f"  latency: publish-to-applied p50 {p['p50']} us, p99 {p['p99']} us "
                 f"({p['n']} orders, {missing} not applied)")
        sidecar_hwm = {"daprd (order-service)": status_kb(os_d.pid, "VmHWM"),
                       "daprd (inventory-service)": status_kb(inv_d.pid, "VmHWM"),
                       "redis": status_kb(redis.pid, "VmHWM")}
        PROCS.stop(os_d, inv_d, osvc, inv, redis)
        self.results["pubsub"] = {"idle_rss_kb": idle, "throughput": throughput,
                                  "throughput_hwm_kb": hwm_tp, "latency": latency,
                                  "runtime_hwm_kb": sidecar_hwm}

    def stage_profile(self) -> None:
        """Where the time goes, measured two ways on symbolized builds (see --profile):

        - callgrind: instructions per request, counted, not timed, so the same on a busy and on
          an idle machine. Each server gets N1 and then N2 sequential requests in two runs;
          (I2 - I1) / (N2 - N1) removes start-up and shutdown. User-space only: system calls and
          waiting on other threads do not show up here.
        - perf (cpu-clock sampling, when `perf` works): the hottest symbols of order-processor
          under wrk, kernel included.
        """
        bins = self.profile_bin
        out: dict = {"bin_dir": str(bins), "callgrind": {}, "perf": None}
        if not shutil.which("valgrind"):
            self.say("profile: valgrind is missing; skipping callgrind")
        else:
            n1, n2 = (50, 550) if self.s.mode == "smoke" else (400, 4400)
            self.say(f"profile: callgrind instructions per request ({n2 - n1} requests, "
                     "one connection)")
            for key, binary, env in [
                ("axum", "bench-axum", {}),
                ("op_info", "order-processor", {"RUST_LOG": "info"}),
                ("op_off", "order-processor", {"RUST_LOG": "off"}),
                ("op_info_json", "order-processor", {"RUST_LOG": "info", "LOG_FORMAT": "json"}),
            ]:
                r = self.callgrind(key, bins / binary, env, n1, n2)
                out["callgrind"][key] = r
                self.say(f"  {key:<14} {r['instructions_per_request']:>9,.0f} instructions/request")
        if shutil.which("strace"):
            self.say("profile: system calls per request (strace -f -c, wrk -t1 -c8)")
            out["syscalls"] = {}
            for key, binary, env in [
                ("axum", "bench-axum", {}),
                ("op_info", "order-processor", {"RUST_LOG": "info"}),
                ("op_off", "order-processor", {"RUST_LOG": "off"}),
            ]:
                r = self.syscalls(key, bins / binary, env)
                out["syscalls"][key] = r
                self.say(f"  {key:<14} {r['per_request']:.2f} syscalls/request: " + ", ".join(
                    f"{k} {v:.2f}" for k, v in r["by_call"].items()))
        else:
            self.say("profile: strace is missing; skipping system call counts")
        if shutil.which("perf") and subprocess.run(
                ["perf", "record", "-e", "cpu-clock", "-o", "/dev/null", "true"],
                capture_output=True).returncode == 0:
            self.say("profile: perf cpu-clock samples of order-processor (RUST_LOG=info) under wrk")
            proc = PROCS.start("order-processor", [str(bins / "order-processor")],
                               service_env(APP_PORT=PORT_OP_ALONE, RUST_LOG="info"),
                               self.run / "profile-order-processor.log")
            wait_port(PORT_OP_ALONE, proc)
            data = self.run / "perf.data"
            perf = PROCS.start("perf", ["perf", "record", "-e", "cpu-clock", "-F", "999", "-g",
                                        "-o", str(data), "-p", str(proc.pid)],
                               log=self.run / "perf-record.log")
            time.sleep(0.5)
            c = self.s.single_point_conns
            self.wrk("profile", PORT_OP_ALONE, c, max(2, self.s.duration), {"order-processor": proc})
            os.killpg(perf.pid, signal.SIGINT)
            perf.popen.wait(timeout=30)
            PROCS.stop(perf, proc)
            report_txt = self.run / "perf-report.txt"
            with open(report_txt, "w") as f:
                subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--stdio",
                                "--sort", "dso,symbol", "-g", "none", "--percent-limit", "0.5"],
                               stdout=f, stderr=subprocess.DEVNULL)
            top = []
            for line in report_txt.read_text(errors="replace").splitlines():
                m = re.match(r"^\s+([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
                if m:
                    top.append({"percent": float(m.group(1)), "dso": m.group(2),
                                "symbol": re.split(r"\s{2,}", m.group(3).strip())[0][:160]})
            out["perf"] = {"conns": c, "top": top[:25],
                           "report": os.path.relpath(report_txt, ROOT)}
        else:
            self.say("profile: perf is missing or cannot sample here; skipping it")
        self.results["profile"] = out

    def syscalls(self, key: str, binary: Path, env: dict) -> dict:
        """System calls per request of a server under strace (slow, but the counts hold)."""
        counts_file = self.run / f"strace-{key}.txt"
        tracer = PROCS.start(f"strace {key}", ["strace", "-f", "-c", "-o", str(counts_file),
                                               str(binary)],
                             service_env(APP_PORT=PORT_OP_ALONE, **env),
                             self.run / f"strace-{key}.log")
        wait_port(PORT_OP_ALONE, tracer, timeout=60)
        w = self.wrk(f"strace-{key}", PORT_OP_ALONE, 8, 2, {}, threads=1)
        children = Path(f"/proc/{tracer.pid}/task/{tracer.pid}/children").read_text().split()
        for child in children:
            os.kill(int(child), signal.SIGTERM)
        tracer.popen.wait(timeout=30)
        PROCS.stop(tracer)
        calls = {}
        for line in counts_file.read_text().splitlines():
            parts = line.split()
            if (len(parts) >= 5 and parts[0][0].isdigit() and parts[3].isdigit()
                    and parts[-1] != "total"):
                calls[parts[-1]] = int(parts[3])
        n = max(1, w["requests"])
        total = sum(calls.values())
        by_call = {k: v / n for k, v in sorted(calls.items(), key=lambda kv: -kv[1]) if v / n >= 0.05}
        return {"requests": w["requests"], "per_request": total / n, "by_call": by_call,
                "raw": os.path.relpath(counts_file, ROOT)}

    def callgrind(self, key: str, binary: Path, env: dict, n1: int, n2: int) -> dict:
        counts = []
        for n in (n1, n2):
            cg_out = self.run / f"callgrind-{key}-{n}.out"
            proc = PROCS.start(f"callgrind {key}",
                               ["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg_out}",
                                str(binary)],
                               service_env(APP_PORT=PORT_OP_ALONE, **env),
                               self.run / f"callgrind-{key}.log")
            wait_port(PORT_OP_ALONE, proc, timeout=120)
            conn = http_client.HTTPConnection("127.0.0.1", PORT_OP_ALONE, timeout=30)
            for _ in range(n):
                conn.request("POST", "/orders", b'{"orderId":1}',
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{key}: POST /orders answered {resp.status}")
            conn.close()
            PROCS.stop(proc, grace=60)
            text = cg_out.read_text(errors="replace")
            m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
            if not m:
                raise RuntimeError(f"no totals in {cg_out}")
            counts.append(int(m.group(1)))
        annotated = self.run / f"callgrind-{key}-annotated.txt"
        with open(annotated, "w") as f:
            subprocess.run(["callgrind_annotate", "--inclusive=yes", str(cg_out)], stdout=f,
                           stderr=subprocess.DEVNULL)
        return {"requests": n2 - n1, "instructions_per_request": (counts[1] - counts[0]) / (n2 - n1),
                "annotated": os.path.relpath(annotated, ROOT)}

    # -- all -------------------------------------------------------------------------------

    def go(self, stages: list[str]) -> dict:
        started = time.time()
        self.results["machine"] = self.machine()
        self.results["started_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds")
        self.render_components()
        ports = [REDIS_PORT, PORT_AXUM, PORT_OP_ALONE, PORT_OP, PORT_CHECKOUT, PORT_ORDER_SERVICE,
                 PORT_INVENTORY, *STARTUP_PORTS.values()]
        for s in SIDECARS.values():
            ports += list(s)
        check_ports_free(ports)
        needed = {"wrk": True, str(self.daprd): bool({"invocation", "pubsub"} & set(stages)),
                  "redis-server": "pubsub" in stages}
        missing = [tool for tool, need in needed.items() if need and not shutil.which(tool)]
        if missing:
            raise RuntimeError(f"missing: {', '.join(missing)} (scripts/bench.sh installs them)")
        for stage in stages:
            getattr(self, f"stage_{stage}")()
        with open("/proc/loadavg") as f:
            self.results["machine"]["loadavg_at_end"] = f.read().split()[:3]
        self.results["duration_s"] = round(time.time() - started, 1)
        self.results["run_dir"] = os.path.relpath(self.run, ROOT)
        return self.results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="every stage for ~1-2 s; numbers are not meaningful")
    ap.add_argument("--bin-dir", type=Path, default=ROOT / "target" / "release")
    ap.add_argument("--run-dir", type=Path, help="logs and raw outputs (default target/bench/run-<time>)")
    ap.add_argument("--out", type=Path, help="results folder (default bench/results; "
                                              "target/bench/smoke-results with --smoke)")
    ap.add_argument("--stages", default="startup,alone,invocation,pubsub",
                    help="comma-separated subset of startup,alone,invocation,pubsub,profile")
    ap.add_argument("--no-pin", action="store_true",
                    help="alone stage: do not pin the server and wrk to separate CPUs")
    ap.add_argument("--profile", action="store_true",
                    help="also run the profile stage (callgrind, perf) on --profile-bin-dir")
    ap.add_argument("--profile-bin-dir", type=Path,
                    help="symbolized builds for the profile stage (default: --bin-dir)")
    args = ap.parse_args()

    settings = Settings(args.smoke)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    run_dir = args.run_dir or ROOT / "target" / "bench" / f"run-{stamp}-{settings.mode}"
    out_dir = args.out or (ROOT / "target" / "bench" / "smoke-results" if args.smoke
                           else HERE / "results")
    run_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.run_dir is None:
        # Keep the five latest run folders (logs of a full run take some tens of MB).
        runs = sorted(run_dir.parent.glob("run-*"), key=lambda p: p.stat().st_mtime)
        for old in runs[:-5]:
            shutil.rmtree(old, ignore_errors=True)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if args.profile and "profile" not in stages:
        stages.append("profile")
    unknown = set(stages) - {"startup", "alone", "invocation", "pubsub", "profile"}
    if unknown:
        ap.error(f"unknown stages: {sorted(unknown)}")

    # SIGINT too: a shell starts background commands with SIGINT ignored, and Python keeps it so.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    bench = Bench(settings, args.bin_dir, run_dir)
    bench.profile_bin = args.profile_bin_dir or args.bin_dir
    bench.pin = not args.no_pin
    try:
        results = bench.go(stages)
    except KeyboardInterrupt:
        bench.say("interrupted; stopping everything this run started")
        return 130
    except Exception as e:  # noqa: BLE001 - report, clean up, fail
        bench.say(f"error: {e}")
        bench.say(f"logs: {run_dir}")
        return 1
    finally:
        PROCS.stop_all()

    results_path = out_dir / "results.json"
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    (run_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report.write(results, out_dir)
    bench.say(f"results: {os.path.relpath(out_dir, Path.cwd())}/results.json, results.md, chart.svg "
              f"(raw outputs and logs: {os.path.relpath(run_dir, Path.cwd())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
