"""Stage export: what sending spans costs. order-processor alone and the pub/sub path are measured
again with every service and sidecar exporting its spans to a real Zipkin server, configured the
way `scripts/run.sh` runs them (OTEL_TRACES_EXPORTER=zipkin for the services, a Dapr
Configuration with samplingRate 1 for the sidecars). The alone and pubsub stages are the same
measurements with export off."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import ZIPKIN_PORT
from ..measure import cpu_ticks
from ..net import http, wait_http
from ..procs import PROCS, Proc
from . import alone, pubsub

if TYPE_CHECKING:
    from ..context import Bench

CONNS = [1, 32]


def zipkin_counts() -> dict[str, int]:
    """Spans Zipkin has taken in and dropped, from its /metrics counters."""
    code, body = http("GET", f"http://127.0.0.1:{ZIPKIN_PORT}/metrics")
    if code != 200:
        raise RuntimeError(f"Zipkin's /metrics answered {code}: {body[:300]!r}")
    m = json.loads(body)
    return {
        "spans": int(m.get("counter.zipkin_collector.spans.http", 0)),
        "dropped": int(m.get("counter.zipkin_collector.spans_dropped.http", 0)),
    }


class Received:
    """Spans Zipkin received, and the CPU it spent, over one measurement."""

    def __init__(self, zipkin: Proc):
        self.zipkin = zipkin
        self.before = zipkin_counts()
        self.ticks = cpu_ticks(zipkin.pid)

    def stop(self) -> dict:
        # The services' batch processors send every few seconds: wait until the count settles.
        counts, settled = zipkin_counts(), 0
        while settled < 3:
            time.sleep(1.0)
            latest = zipkin_counts()
            settled = settled + 1 if latest == counts else 0
            counts = latest
        clk = os.sysconf("SC_CLK_TCK")
        return {
            "spans": counts["spans"] - self.before["spans"],
            "dropped_by_zipkin": counts["dropped"] - self.before["dropped"],
            "zipkin_cpu_s": round((cpu_ticks(self.zipkin.pid) - self.ticks) / clk, 2),
        }


def start_zipkin(bench: Bench, cpus: str | None) -> Proc:
    jar = os.environ.get("ZIPKIN_JAR", "")
    if not Path(jar).is_file():
        raise RuntimeError(
            f"the export stage needs the Zipkin server jar in ZIPKIN_JAR (got {jar!r}); "
            "scripts/bench.sh sets it"
        )
    argv = [
        "java",
        "-jar",
        jar,
        "--armeria.ports[0].address=127.0.0.1",
        f"--armeria.ports[0].port={ZIPKIN_PORT}",
        "--armeria.ports[0].protocols[0]=http",
    ]
    if cpus:
        argv = ["taskset", "-c", cpus, *argv]
    proc = PROCS.start("zipkin", argv, log=bench.run / "zipkin.log")
    wait_http(f"http://127.0.0.1:{ZIPKIN_PORT}/health", 200, proc, timeout=120)
    return proc


def run(bench: Bench) -> None:
    _, wrk_cpus = bench.pinning()
    bench.say(
        f"export: Zipkin on 127.0.0.1:{ZIPKIN_PORT}"
        + (f", pinned to CPU {wrk_cpus} beside wrk" if wrk_cpus else "")
    )
    # Its own folder for logs and raw outputs: the stages it repeats use the same file names.
    top = bench.run
    bench.run = top / "export"
    bench.run.mkdir(exist_ok=True)
    try:
        out = measure(bench, wrk_cpus)
    finally:
        bench.run = top
    bench.results["export"] = out


def measure(bench: Bench, wrk_cpus: str | None) -> dict:
    started = time.monotonic()
    zipkin = start_zipkin(bench, wrk_cpus)
    start_s = round(time.monotonic() - started, 1)
    spans_url = f"http://127.0.0.1:{ZIPKIN_PORT}/api/v2/spans"
    config = bench.run / "tracing.yaml"
    config.write_text(
        "apiVersion: dapr.io/v1alpha1\n"
        "kind: Configuration\n"
        "metadata:\n"
        "  name: bench-tracing\n"
        "spec:\n"
        "  tracing:\n"
        '    samplingRate: "1"\n'
        "    zipkin:\n"
        f"      endpointAddress: {spans_url}\n"
    )
    bench.export_env = {
        "OTEL_TRACES_EXPORTER": "zipkin",
        "OTEL_EXPORTER_ZIPKIN_ENDPOINT": spans_url,
    }
    bench.dapr_config = config
    out: dict = {
        "backend": "Zipkin server (io.zipkin:zipkin-server exec jar), in memory",
        "zipkin_start_s": start_s,
        "env": dict(bench.export_env),
    }
    try:
        received = Received(zipkin)
        out["alone"] = alone.measure_variant(
            bench,
            "op_export",
            "order-processor",
            "order-processor, RUST_LOG=info, spans exported to Zipkin",
            {"RUST_LOG": "info"},
            False,
            CONNS,
        )
        out["alone"]["received"] = received.stop()
        received = Received(zipkin)
        out["pubsub"] = pubsub.measure(bench)
        out["pubsub"]["received"] = received.stop()
    finally:
        bench.export_env, bench.dapr_config = {}, None
        PROCS.stop(zipkin)
    for part in ("alone", "pubsub"):
        if out[part]["received"]["spans"] == 0:
            # Export on that exports nothing would measure nothing: a failure, not a number.
            raise RuntimeError(f"export stage: Zipkin received no spans during '{part}'")
    bench.say(
        f"  spans received: alone {out['alone']['received']['spans']}, "
        f"pub/sub {out['pubsub']['received']['spans']}"
    )
    return out
