"""Stage startup: exec until the port accepts TCP, repeated, median; resident memory once up
(bench-probe)."""

from __future__ import annotations

import json
import subprocess
from typing import TYPE_CHECKING

from ..config import (
    STARTUP_PORTS,
    UNUSED_PORT,
)
from ..net import (
    service_env,
)

if TYPE_CHECKING:
    from ..context import Bench


def run(bench: Bench) -> None:
    bench.say(
        "start-up time: exec until the port accepts TCP connections "
        f"(median of {bench.s.startup_runs})"
    )
    out = {}
    for name, port in STARTUP_PORTS.items():
        env = [f"APP_PORT={port}", "RUST_LOG=info"]
        if name == "checkout":
            # checkout serves /healthz when APP_PORT is set; its sidecar is absent here,
            # so it keeps waiting for it, which is its idle state.
            env.append(f"DAPR_HTTP_PORT={UNUSED_PORT}")
        argv = [
            str(bench.bin / "bench-probe"),
            "startup",
            "--port",
            str(port),
            "--runs",
            str(bench.s.startup_runs),
            "--settle-ms",
            str(bench.s.settle_ms),
            "--log",
            str(bench.run / f"startup-{name}.log"),
        ]
        for e in env:
            argv += ["--env", e]
        clean = service_env()
        argv += ["--", str(bench.bin / name)]
        res = subprocess.run(
            argv, capture_output=True, text=True, env=clean, timeout=300, check=False
        )
        if res.returncode != 0:
            raise RuntimeError(f"start-up probe of {name} failed: {res.stderr}")
        r = json.loads(res.stdout)
        r.pop("program", None)
        out[name] = r
        bench.say(
            f"  {name:<18} median {r['median_us'] / 1000:6.2f} ms  "
            f"(min {r['min_us'] / 1000:.2f}, max {r['max_us'] / 1000:.2f})  "
            f"idle RSS {r['idle']['rss_kb']} kB"
        )
    bench.results["startup"] = out
