"""The state one run shares between its stages (settings, binaries, run folder, results) and what
every stage uses: starting daprd and the services, wrk runs and sweeps, and running the stages."""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path

from .config import (
    LUA,
    PORT_AXUM,
    PORT_CHECKOUT,
    PORT_INVENTORY,
    PORT_OP,
    PORT_OP_ALONE,
    PORT_ORDER_SERVICE,
    REDIS_PORT,
    ROOT,
    SIDECARS,
    STARTUP_PORTS,
    ZIPKIN_PORT,
    Settings,
)
from .measure import (
    CpuWindow,
    cpu_list,
    status_kb,
)
from .net import (
    check_ports_free,
    command_output,
    service_env,
    wait_port,
)
from .procs import PROCS, Proc
from .stages import STAGES


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
        # Span export (the export stage): OTEL_* variables every service gets, and the Dapr
        # Configuration every sidecar gets. Empty and None: nothing is exported.
        self.export_env: dict[str, str] = {}
        self.dapr_config: Path | None = None

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
            "wrk": command_output(["wrk", "-v"]).splitlines()[0]
            if shutil.which("wrk")
            else "missing",
            "python": platform.python_version(),
            "git_commit": command_output(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
            "git_dirty": bool(
                command_output(
                    ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"]
                )
            ),
            "loadavg_at_start": load,
        }

    def render_components(self) -> None:
        """components/ with Redis on REDIS_PORT and every app id prefixed with `bench-`."""
        self.components.mkdir(parents=True, exist_ok=True)
        ids = "order-service|inventory-service|order-processor|checkout"
        for src in sorted((ROOT / "components").glob("*.yaml")):
            text = src.read_text()
            text = text.replace("localhost:6379", f"localhost:{REDIS_PORT}")
            text = re.sub(rf"^(\s*-\s*)({ids})\s*$", r"\1bench-\2", text, flags=re.MULTILINE)
            text = re.sub(rf"^(\s*)({ids}):\s*$", r"\1bench-\2:", text, flags=re.MULTILINE)
            (self.components / src.name).write_text(text)
        rendered = "".join(p.read_text() for p in self.components.glob("*.yaml"))
        if ":6379" in rendered or re.search(rf"^\s*-\s*({ids})\s*$", rendered, flags=re.MULTILINE):
            raise RuntimeError(f"rendering {self.components} left a non-bench id or port")

    def start_daprd(self, app_id: str, app_port: int | None) -> Proc:
        http_port, grpc, internal, metrics = SIDECARS[app_id]
        argv = [
            str(self.daprd),
            "--app-id",
            app_id,
            "--dapr-http-port",
            str(http_port),
            "--dapr-grpc-port",
            str(grpc),
            "--dapr-internal-grpc-port",
            str(internal),
            "--metrics-port",
            str(metrics),
            "--dapr-listen-addresses",
            "127.0.0.1",
            "--metrics-listen-address",
            "127.0.0.1",
            "--placement-host-address",
            "",
            "--scheduler-host-address",
            "",
            "--resources-path",
            str(self.components),
            "--log-level",
            "warn",
            "--dapr-graceful-shutdown-seconds",
            "1",
        ]
        if app_port is not None:
            argv += ["--app-port", str(app_port), "--app-protocol", "http"]
        if self.dapr_config is not None:
            argv += ["--config", str(self.dapr_config)]
        env = service_env()
        return PROCS.start(f"daprd {app_id}", argv, env, self.run / f"daprd-{app_id}.log")

    def start_service(
        self,
        name: str,
        port: int,
        log_name: str | None = None,
        stdout_null: bool = False,
        cpus: str | None = None,
        **env,
    ) -> Proc:
        env.setdefault("RUST_LOG", "info")
        env = {**self.export_env, **env}
        argv = [str(self.bin / name)]
        if cpus:
            argv = ["taskset", "-c", cpus, *argv]  # taskset execs the binary: same pid
        proc = PROCS.start(
            name,
            argv,
            service_env(APP_PORT=port, **env),
            self.run / f"{log_name or name}.log",
            stdout_null=stdout_null,
        )
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

    def wrk(
        self,
        label: str,
        port: int,
        conns: int,
        duration: int,
        watch: dict[str, Proc],
        threads: int | None = None,
        cpus: str | None = None,
        **env,
    ) -> dict:
        threads = threads or min(conns, 2 if cpus is None else len(cpu_list(cpus)))
        out = self.run / f"wrk-{label}-c{conns}.txt"
        argv = [
            "wrk",
            f"-t{threads}",
            f"-c{conns}",
            f"-d{duration}s",
            "--timeout",
            "5s",
            "-s",
            str(LUA),
            f"http://127.0.0.1:{port}",
        ]
        if cpus:
            argv = ["taskset", "-c", cpus, *argv]
        wenv = dict(os.environ)
        for k in (
            "BENCH_PATH",
            "BENCH_BODY",
            "BENCH_APP_ID",
            "BENCH_UNIQUE",
            "BENCH_PREFIX",
            "BENCH_ITEMS",
        ):
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
        w = json.loads(line[len("WRK_JSON ") :])
        secs = w["duration_us"] / 1e6
        errors = sum(w["errors"].values())
        ok = w["requests"] - w["errors"]["status"]
        result = {
            "conns": conns,
            "threads": threads,
            "duration_s": round(secs, 3),
            "requests": w["requests"],
            "rps": round(w["requests"] / secs, 1),
            "ok_rps": round(ok / secs, 1),
            "errors": w["errors"],
            "error_count": errors,
            "latency_us": w["latency_us"],
            "cpu_s": {n: round(v, 2) for n, v in cpu["cpu_s"].items()},
            "cpu_us_per_request": {
                n: round(v * 1e6 / max(1, w["requests"]), 2) for n, v in cpu["cpu_s"].items()
            },
            "wrk_cpu_s": round(rusage.ru_utime + rusage.ru_stime, 2),
            "wrk_cpus": cpus,
            "machine_busy_s": cpu["machine_busy_s"],
            "machine_capacity_s": cpu["machine_capacity_s"],
        }
        # CPU the machine spent on neither the watched processes nor wrk: other load (noise).
        result["other_cpu_s"] = round(
            max(0.0, cpu["machine_busy_s"] - sum(cpu["cpu_s"].values()) - result["wrk_cpu_s"]), 2
        )
        lat = w["latency_us"]
        self.say(
            f"  {label:<28} c={conns:<3} {result['rps']:>10.0f} req/s  p50 {lat['p50']:>6} us"
            f"  p99 {lat['p99']:>6} us  p99.9 {lat['p99.9']:>6} us  errors {errors}"
        )
        return result

    def sweep(
        self,
        label: str,
        port: int,
        conns: list[int],
        watch: dict[str, Proc],
        rss_pid: int | None = None,
        cpus: str | None = None,
        **env,
    ) -> list[dict]:
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

    # -- all -------------------------------------------------------------------------------

    def go(self, stages: list[str]) -> dict:
        started = time.time()
        self.results["machine"] = self.machine()
        self.results["started_utc"] = datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"
        )
        self.render_components()
        ports = [
            REDIS_PORT,
            PORT_AXUM,
            PORT_OP_ALONE,
            PORT_OP,
            PORT_CHECKOUT,
            PORT_ORDER_SERVICE,
            PORT_INVENTORY,
            *STARTUP_PORTS.values(),
            ZIPKIN_PORT,
        ]
        for s in SIDECARS.values():
            ports += list(s)
        check_ports_free(ports)
        needed = {
            "wrk": True,
            str(self.daprd): bool({"invocation", "pubsub", "export"} & set(stages)),
            "redis-server": bool({"pubsub", "export"} & set(stages)),
            "java": "export" in stages,
        }
        missing = [tool for tool, need in needed.items() if need and not shutil.which(tool)]
        if missing:
            raise RuntimeError(f"missing: {', '.join(missing)} (scripts/bench.sh installs them)")
        for stage in stages:
            STAGES[stage](self)
        with open("/proc/loadavg") as f:
            self.results["machine"]["loadavg_at_end"] = f.read().split()[:3]
        self.results["duration_s"] = round(time.time() - started, 1)
        self.results["run_dir"] = os.path.relpath(self.run, ROOT)
        return self.results
