"""Stage alone: the bare-axum reference server and order-processor without a sidecar under wrk,
with the per-order log line on and off, plus a few single-point variants."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..config import (
    PORT_OP_ALONE,
)
from ..measure import (
    status_kb,
)
from ..procs import PROCS

if TYPE_CHECKING:
    from ..context import Bench


def run(bench: Bench) -> None:
    bench.say(f"alone: {bench.s.duration}s per point, connections {bench.s.conns}")
    variants = [
        # (key, binary, description, env, stdout to /dev/null, connection counts)
        ("axum", "bench-axum", "bare axum JSON endpoint (reference)", {}, True, bench.s.conns),
        (
            "op_info",
            "order-processor",
            "order-processor, RUST_LOG=info (log line on, stdout to a file)",
            {"RUST_LOG": "info"},
            False,
            bench.s.conns,
        ),
        (
            "op_off",
            "order-processor",
            "order-processor, RUST_LOG=off (log line off)",
            {"RUST_LOG": "off"},
            False,
            bench.s.conns,
        ),
        (
            "op_info_null",
            "order-processor",
            "order-processor, RUST_LOG=info, stdout to /dev/null",
            {"RUST_LOG": "info"},
            True,
            [bench.s.single_point_conns],
        ),
        (
            "op_json",
            "order-processor",
            "order-processor, RUST_LOG=info, LOG_FORMAT=json, stdout to a file",
            {"RUST_LOG": "info", "LOG_FORMAT": "json"},
            False,
            [bench.s.single_point_conns],
        ),
    ]
    out = {}
    server_cpus, wrk_cpus = bench.pinning()
    bench.results["alone_pinning"] = {"server_cpus": server_cpus, "wrk_cpus": wrk_cpus}
    if server_cpus:
        bench.say(f"  server pinned to CPU {server_cpus}, wrk to CPU {wrk_cpus} (taskset)")
    for key, binary, desc, env, null, conns in variants:
        out[key] = measure_variant(bench, key, binary, desc, env, null, conns)
    bench.results["alone"] = out


def measure_variant(
    bench: Bench, key: str, binary: str, desc: str, env: dict, null: bool, conns: list[int]
) -> dict:
    """One server under wrk at each connection count, pinned apart from wrk as `bench` says
    (the export stage measures its variant with this too)."""
    server_cpus, wrk_cpus = bench.pinning()
    proc = bench.start_service(
        binary,
        PORT_OP_ALONE,
        log_name=f"alone-{key}",
        stdout_null=null,
        cpus=server_cpus,
        **env,
    )
    time.sleep(0.2)
    idle = {"rss_kb": status_kb(proc.pid, "VmRSS"), "hwm_kb": status_kb(proc.pid, "VmHWM")}
    runs = bench.sweep(key, PORT_OP_ALONE, conns, {binary: proc}, rss_pid=proc.pid, cpus=wrk_cpus)
    result = {
        "binary": binary,
        "description": desc,
        "env": env,
        "stdout": "/dev/null" if null else "file",
        "idle": idle,
        "runs": runs,
        "peak_hwm_kb": status_kb(proc.pid, "VmHWM"),
    }
    PROCS.stop(proc)
    if proc.log and proc.log.exists() and proc.log.stat().st_size > 20_000_000:
        # Keep the disk use of a run small: the lines are all alike.
        with open(proc.log, "rb") as f:
            head = f.read(200_000)
        proc.log.write_bytes(head + b"\n[... truncated by bench.py ...]\n")
    return result
