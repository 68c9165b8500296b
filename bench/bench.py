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
5. export: order-processor alone and the pub/sub path again, with every service and sidecar
   sending its spans to a real Zipkin server (the export-on cost beside stages 2 and 4).

Everything runs on 127.0.0.1 with app ids prefixed `bench-` and ports 16379 and 17000-17999, so it
never meets the end-to-end tests' ids or ports. Every process is started in its own session and
killed with its process group on exit, Ctrl-C or error (and with PR_SET_PDEATHSIG if this
process dies without cleaning up).

Only the standard library is used. Results: results.json, then report.py renders results.md and
chart.svg from it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in the work tree
import report
from harness.config import ROOT, Settings
from harness.context import Bench
from harness.procs import PROCS, on_signal


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--smoke", action="store_true", help="every stage for ~1-2 s; numbers are not meaningful"
    )
    ap.add_argument("--bin-dir", type=Path, default=ROOT / "target" / "release")
    ap.add_argument(
        "--run-dir", type=Path, help="logs and raw outputs (default target/bench/run-<time>)"
    )
    ap.add_argument(
        "--out",
        type=Path,
        help="results folder (default bench/results; target/bench/smoke-results with --smoke)",
    )
    ap.add_argument(
        "--stages",
        default="startup,alone,invocation,pubsub,export",
        help="comma-separated subset of startup,alone,invocation,pubsub,export,profile",
    )
    ap.add_argument(
        "--no-pin",
        action="store_true",
        help="alone stage: do not pin the server and wrk to separate CPUs",
    )
    ap.add_argument(
        "--profile",
        action="store_true",
        help="also run the profile stage (callgrind, perf) on --profile-bin-dir",
    )
    ap.add_argument(
        "--profile-bin-dir",
        type=Path,
        help="symbolized builds for the profile stage (default: --bin-dir)",
    )
    args = ap.parse_args()

    settings = Settings(args.smoke)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = args.run_dir or ROOT / "target" / "bench" / f"run-{stamp}-{settings.mode}"
    out_dir = args.out or (
        ROOT / "target" / "bench" / "smoke-results" if args.smoke else HERE / "results"
    )
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
    unknown = set(stages) - {"startup", "alone", "invocation", "pubsub", "export", "profile"}
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
    bench.say(
        f"results: {os.path.relpath(out_dir, Path.cwd())}/results.json, results.md, chart.svg "
        f"(raw outputs and logs: {os.path.relpath(run_dir, Path.cwd())})"
    )
    inexact = [
        f"{name} {part}"
        for name, ps in (("pub/sub", results.get("pubsub")), ("export", results.get("export")))
        for part in ("throughput", "latency")
        if ps and not (ps.get("pubsub", ps)[part]["stock"]["exact"])
    ]
    if inexact:
        # Not a number but a broken guarantee: an order lost or applied twice.
        bench.say(f"error: the stock was not exact after: {', '.join(inexact)} (see results.md)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
