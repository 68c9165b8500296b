"""Stage invocation: wrk through two real daprd sidecars to order-processor, the same load
straight to order-processor in the same run, then checkout's own loop through the sidecars."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from ..config import (
    PORT_CHECKOUT,
    PORT_OP,
    SIDECARS,
)
from ..measure import (
    CpuWindow,
    status_kb,
)
from ..net import (
    http,
    service_env,
    wait_http,
)
from ..procs import PROCS

if TYPE_CHECKING:
    from ..context import Bench


def run(bench: Bench) -> None:
    bench.say(
        "invocation through the real sidecars: wrk → daprd (bench-checkout) → "
        "daprd (bench-order-processor) → order-processor"
    )
    op = bench.start_service("order-processor", PORT_OP, log_name="invocation-order-processor")
    callee = bench.start_daprd("bench-order-processor", PORT_OP)
    caller = bench.start_daprd("bench-checkout", None)
    callee_http = SIDECARS["bench-order-processor"][0]
    caller_http = SIDECARS["bench-checkout"][0]
    wait_http(f"http://127.0.0.1:{callee_http}/v1.0/healthz", 204, callee)
    wait_http(f"http://127.0.0.1:{caller_http}/v1.0/healthz", 204, caller)
    # The first call also waits for mDNS to resolve the callee.
    wait_http(
        f"http://127.0.0.1:{caller_http}/orders",
        200,
        caller,
        method="POST",
        body={"orderId": 1},
        headers={"dapr-app-id": "bench-order-processor"},
    )
    watch = {"order-processor": op, "daprd (caller)": caller, "daprd (callee)": callee}
    via_env = {"BENCH_APP_ID": "bench-order-processor"}

    def breaker_closed() -> float:
        """Waits until a call through the sidecars passes again; returns the wait.

        Every wrk run ends by closing its connections with requests in flight. The caller
        sidecar counts each cancelled call as a failure of the callee, so five of them in
        a row open the project's `callee` circuit breaker (components/resiliency.yaml) for
        10 s, and every call fails fast until it closes."""
        return wait_http(
            f"http://127.0.0.1:{caller_http}/orders",
            200,
            caller,
            method="POST",
            body={"orderId": 1},
            timeout=30,
            headers={"dapr-app-id": "bench-order-processor"},
        )

    if bench.s.warmup:
        bench.wrk(
            "via-sidecars-warmup", caller_http, max(bench.s.conns), bench.s.warmup, watch, **via_env
        )
        bench.wrk("direct-warmup", PORT_OP, max(bench.s.conns), bench.s.warmup, watch)
    via, direct = [], []
    # Interleaved, so that a breaker opened by the end of one run has time to close.
    for c in bench.s.conns:
        waited = breaker_closed()
        r = bench.wrk("via-sidecars", caller_http, c, bench.s.duration, watch, **via_env)
        r["breaker_wait_s"] = round(waited, 2)
        r["hwm_kb_after"] = status_kb(op.pid, "VmHWM")
        if r["errors"]["status"]:
            code, body = http(
                "POST",
                f"http://127.0.0.1:{caller_http}/orders",
                {"orderId": 1},
                {"dapr-app-id": "bench-order-processor"},
            )
            r["error_sample"] = f"{code} {body[:300].decode(errors='replace')}"
        via.append(r)
        r = bench.wrk("direct", PORT_OP, c, bench.s.duration, watch)
        r["hwm_kb_after"] = status_kb(op.pid, "VmHWM")
        direct.append(r)
    sidecar_rss = {
        "caller": status_kb(caller.pid, "VmHWM"),
        "callee": status_kb(callee.pid, "VmHWM"),
    }

    # checkout's own loop, one order after another, through the same sidecars.
    n = bench.s.checkout_orders
    bench.say(f"  checkout loop: {n} orders back to back through the sidecars")
    env = service_env(
        APP_PORT=PORT_CHECKOUT,
        DAPR_HTTP_PORT=caller_http,
        RUST_LOG="info",
        CHECKOUT_TARGET_APP_ID="bench-order-processor",
        CHECKOUT_ORDERS_PER_ROUND=n,
        CHECKOUT_ROUNDS=1,
        CHECKOUT_INTERVAL_MS=0,
        CHECKOUT_PAUSE_MS=0,
    )
    breaker_closed()
    window = CpuWindow(watch).start()
    started = time.monotonic()
    log = bench.run / "checkout.log"
    proc = PROCS.start("checkout", [str(bench.bin / "checkout")], env, log, mode="wb")
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
        bench.say(f"  warning: checkout exited {p.returncode} with {passed}/{n} orders passed")
    loop = {
        "orders": n,
        "passed": passed,
        "exit_code": p.returncode,
        "elapsed_s": round(elapsed, 3),
        "orders_per_s": round(passed / elapsed, 1),
        "mean_ms_per_order": round(elapsed * 1000 / max(1, passed), 3),
        "peak_rss_kb": hwm,
        "cpu_s": {k: round(v, 3) for k, v in cpu["cpu_s"].items()},
        "machine_busy_s": cpu["machine_busy_s"],
    }
    bench.say(
        f"  checkout loop: {loop['orders_per_s']} orders/s "
        f"({loop['mean_ms_per_order']} ms each), peak RSS {hwm} kB"
    )
    PROCS.stop(caller, callee, op)
    bench.results["invocation"] = {
        "via_sidecars": via,
        "direct": direct,
        "sidecar_hwm_kb": sidecar_rss,
        "order_processor_peak_hwm_kb": max(r.get("hwm_kb_after") or 0 for r in via + direct),
        "checkout_loop": loop,
    }
