"""Stage profile (--profile): callgrind instructions per request, strace system calls per
request and perf samples, on symbolized builds."""

from __future__ import annotations

import http.client as http_client
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import (
    PORT_OP_ALONE,
    ROOT,
)
from ..net import (
    service_env,
    wait_port,
)
from ..procs import PROCS

if TYPE_CHECKING:
    from ..context import Bench


def run(bench: Bench) -> None:
    """Where the time goes, measured two ways on symbolized builds (see --profile):

    - callgrind: instructions per request, counted, not timed, so the same on a busy and on
      an idle machine. Each server gets N1 and then N2 sequential requests in two runs;
      (I2 - I1) / (N2 - N1) removes start-up and shutdown. User-space only: system calls and
      waiting on other threads do not show up here.
    - perf (cpu-clock sampling, when `perf` works): the hottest symbols of order-processor
      under wrk, kernel included.
    """
    bins = bench.profile_bin
    out: dict = {"bin_dir": str(bins), "callgrind": {}, "perf": None}
    if not shutil.which("valgrind"):
        bench.say("profile: valgrind is missing; skipping callgrind")
    else:
        n1, n2 = (50, 550) if bench.s.mode == "smoke" else (400, 4400)
        bench.say(
            f"profile: callgrind instructions per request ({n2 - n1} requests, one connection)"
        )
        for key, binary, env in [
            ("axum", "bench-axum", {}),
            ("op_info", "order-processor", {"RUST_LOG": "info"}),
            ("op_off", "order-processor", {"RUST_LOG": "off"}),
            ("op_info_json", "order-processor", {"RUST_LOG": "info", "LOG_FORMAT": "json"}),
        ]:
            r = callgrind(bench, key, bins / binary, env, n1, n2)
            out["callgrind"][key] = r
            bench.say(f"  {key:<14} {r['instructions_per_request']:>9,.0f} instructions/request")
    if shutil.which("strace"):
        bench.say("profile: system calls per request (strace -f -c, wrk -t1 -c8)")
        out["syscalls"] = {}
        for key, binary, env in [
            ("axum", "bench-axum", {}),
            ("op_info", "order-processor", {"RUST_LOG": "info"}),
            ("op_off", "order-processor", {"RUST_LOG": "off"}),
        ]:
            r = syscalls(bench, key, bins / binary, env)
            out["syscalls"][key] = r
            bench.say(
                f"  {key:<14} {r['per_request']:.2f} syscalls/request: "
                + ", ".join(f"{k} {v:.2f}" for k, v in r["by_call"].items())
            )
    else:
        bench.say("profile: strace is missing; skipping system call counts")
    if (
        shutil.which("perf")
        and subprocess.run(
            ["perf", "record", "-e", "cpu-clock", "-o", "/dev/null", "true"],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    ):
        bench.say("profile: perf cpu-clock samples of order-processor (RUST_LOG=info) under wrk")
        proc = PROCS.start(
            "order-processor",
            [str(bins / "order-processor")],
            service_env(APP_PORT=PORT_OP_ALONE, RUST_LOG="info"),
            bench.run / "profile-order-processor.log",
        )
        wait_port(PORT_OP_ALONE, proc)
        data = bench.run / "perf.data"
        perf = PROCS.start(
            "perf",
            [
                "perf",
                "record",
                "-e",
                "cpu-clock",
                "-F",
                "999",
                "-g",
                "-o",
                str(data),
                "-p",
                str(proc.pid),
            ],
            log=bench.run / "perf-record.log",
        )
        time.sleep(0.5)
        c = bench.s.single_point_conns
        bench.wrk("profile", PORT_OP_ALONE, c, max(2, bench.s.duration), {"order-processor": proc})
        os.killpg(perf.pid, signal.SIGINT)
        perf.popen.wait(timeout=30)
        PROCS.stop(perf, proc)
        report_txt = bench.run / "perf-report.txt"
        with open(report_txt, "w") as f:
            subprocess.run(
                [
                    "perf",
                    "report",
                    "-i",
                    str(data),
                    "--no-children",
                    "--stdio",
                    "--sort",
                    "dso,symbol",
                    "-g",
                    "none",
                    "--percent-limit",
                    "0.5",
                ],
                stdout=f,
                stderr=subprocess.DEVNULL,
                check=False,
            )
        top = []
        for line in report_txt.read_text(errors="replace").splitlines():
            m = re.match(r"^\s+([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$", line)
            if m:
                top.append(
                    {
                        "percent": float(m.group(1)),
                        "dso": m.group(2),
                        "symbol": re.split(r"\s{2,}", m.group(3).strip())[0][:160],
                    }
                )
        out["perf"] = {"conns": c, "top": top[:25], "report": os.path.relpath(report_txt, ROOT)}
    else:
        bench.say("profile: perf is missing or cannot sample here; skipping it")
    bench.results["profile"] = out


def syscalls(bench: Bench, key: str, binary: Path, env: dict) -> dict:
    """System calls per request of a server under strace (slow, but the counts hold)."""
    counts_file = bench.run / f"strace-{key}.txt"
    tracer = PROCS.start(
        f"strace {key}",
        ["strace", "-f", "-c", "-o", str(counts_file), str(binary)],
        service_env(APP_PORT=PORT_OP_ALONE, **env),
        bench.run / f"strace-{key}.log",
    )
    wait_port(PORT_OP_ALONE, tracer, timeout=60)
    w = bench.wrk(f"strace-{key}", PORT_OP_ALONE, 8, 2, {}, threads=1)
    children = Path(f"/proc/{tracer.pid}/task/{tracer.pid}/children").read_text().split()
    for child in children:
        os.kill(int(child), signal.SIGTERM)
    tracer.popen.wait(timeout=30)
    PROCS.stop(tracer)
    calls = {}
    for line in counts_file.read_text().splitlines():
        parts = line.split()
        if (
            len(parts) >= 5
            and parts[0][0].isdigit()
            and parts[3].isdigit()
            and parts[-1] != "total"
        ):
            calls[parts[-1]] = int(parts[3])
    n = max(1, w["requests"])
    total = sum(calls.values())
    by_call = {k: v / n for k, v in sorted(calls.items(), key=lambda kv: -kv[1]) if v / n >= 0.05}
    return {
        "requests": w["requests"],
        "per_request": total / n,
        "by_call": by_call,
        "raw": os.path.relpath(counts_file, ROOT),
    }


def callgrind(bench: Bench, key: str, binary: Path, env: dict, n1: int, n2: int) -> dict:
    counts = []
    for n in (n1, n2):
        cg_out = bench.run / f"callgrind-{key}-{n}.out"
        proc = PROCS.start(
            f"callgrind {key}",
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg_out}", str(binary)],
            service_env(APP_PORT=PORT_OP_ALONE, **env),
            bench.run / f"callgrind-{key}.log",
        )
        wait_port(PORT_OP_ALONE, proc, timeout=120)
        conn = http_client.HTTPConnection("127.0.0.1", PORT_OP_ALONE, timeout=30)
        for _ in range(n):
            conn.request("POST", "/orders", b'{"orderId":1}', {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{key}: POST /orders answered {resp.status}")
        conn.close()
        PROCS.stop(proc, grace=60)
        text = cg_out.read_text(errors="replace")
        m = re.search(r"^(?:summary|totals): (\d+)", text, re.MULTILINE)
        if not m:
            raise RuntimeError(f"no totals in {cg_out}")
        counts.append(int(m.group(1)))
    annotated = bench.run / f"callgrind-{key}-annotated.txt"
    with open(annotated, "w") as f:
        subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", str(cg_out)],
            stdout=f,
            stderr=subprocess.DEVNULL,
            check=False,
        )
    return {
        "requests": n2 - n1,
        "instructions_per_request": (counts[1] - counts[0]) / (n2 - n1),
        "annotated": os.path.relpath(annotated, ROOT),
    }
