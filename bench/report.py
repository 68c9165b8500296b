#!/usr/bin/env python3
"""Renders results.md and chart.svg from a results.json written by bench/bench.py.

    python3 bench/report.py [bench/results/results.json]

re-renders both next to the JSON file. Standard library only; the SVG is drawn by hand.
"""

from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path

MB = 1_000_000 / 1024  # 10 MB in the targets is 10^7 bytes; /proc reports KiB

# Targets from the issue. Reported as met or missed, never enforced.
TARGET_RATIO = 0.60
TARGET_P99_US = 2000
TARGET_RSS_KB = 10 * MB
TARGET_STARTUP_US = 10_000
TARGET_CPU_SHARE = 0.15
TARGET_E2E_P99_US = 5_000
TARGET_CPU_PER_ORDER_US = 500  # all processes of the pub/sub path, per applied order, saturated
TARGET_STATE_CALLS = 0.5  # inventory-service's state API calls per applied order, saturated
SERVICES = ["order-processor", "checkout", "order-service", "inventory-service"]
RUNTIME = ("daprd", "redis")


def ms(us) -> str:
    return "–" if us is None else f"{us / 1000:.2f}"


def kib(kb) -> str:
    return "–" if kb is None else f"{kb / 1024:.1f} MiB"


def num(x, digits=0) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def wrk_busy(run: dict, r: dict) -> float:
    """wrk's CPU time over the CPUs it had, for the run's duration."""
    spec = run.get("wrk_cpus")
    n = (
        sum(
            len(range(int(a), int(b or a) + 1))
            for a, _, b in (p.partition("-") for p in spec.split(","))
        )
        if spec
        else r["machine"]["cores"]
    )
    return run["wrk_cpu_s"] / max(1e-9, run["duration_s"] * n)


def run_at(runs: list[dict], conns: int) -> dict | None:
    return next((r for r in runs if r["conns"] == conns), None)


def cpu_split(cpu_s: dict) -> tuple[float, float]:
    services = sum(v for k, v in cpu_s.items() if not k.startswith(RUNTIME))
    runtime = sum(v for k, v in cpu_s.items() if k.startswith(RUNTIME))
    return services, runtime


def targets(r: dict) -> list[dict]:
    """Each target with its measured value and whether it was met (None: not measured)."""
    out = []

    def add(name, limit, value, shown, met):
        out.append({"target": name, "limit": limit, "measured": shown, "value": value, "met": met})

    alone = r.get("alone", {})
    c = r["settings"]["single_point_conns"]
    axum = run_at(alone.get("axum", {}).get("runs", []), c)
    op = run_at(alone.get("op_info", {}).get("runs", []), c)
    if axum and op:
        ratio = op["rps"] / axum["rps"] if axum["rps"] else 0
        add(
            f"order-processor alone (log on) vs bare axum, requests/s at {c} connections",
            f"≥ {TARGET_RATIO:.0%}",
            ratio,
            f"{ratio:.0%} ({num(op['rps'])} vs {num(axum['rps'])} req/s)",
            ratio >= TARGET_RATIO,
        )
        p99 = op["latency_us"]["p99"]
        add(
            f"order-processor alone (log on), p99 at {c} connections",
            "≤ 2 ms",
            p99,
            f"{ms(p99)} ms",
            p99 <= TARGET_P99_US,
        )

    peaks = service_peaks(r)
    for name in SERVICES:
        kb, where = peaks.get(name, (None, ""))
        if kb is not None:
            add(
                f"{name} peak RSS ({where})",
                "≤ 10 MB",
                kb,
                f"{kb / 1000 * 1.024:.1f} MB ({kb} KiB)",
                kb <= TARGET_RSS_KB,
            )

    for name in SERVICES:
        s = r.get("startup", {}).get(name)
        if s:
            add(
                f"{name} exec → accepts TCP (median of {s['runs']})",
                "≤ 10 ms",
                s["median_us"],
                f"{ms(s['median_us'])} ms",
                s["median_us"] <= TARGET_STARTUP_US,
            )

    shares = cpu_windows(r)
    combined = [w for w in shares if w["key"] in ("pubsub", "checkout")]
    if combined:
        svc = sum(w["services_s"] for w in combined)
        rt = sum(w["runtime_s"] for w in combined)
        share = svc / (svc + rt) if svc + rt else 0
        add(
            "the four services' share of CPU end to end (pub/sub load + checkout loop; "
            "rest: daprd, Redis)",
            "≤ 15%",
            share,
            f"{share:.1%} ({svc:.1f} s of {svc + rt:.1f} s)",
            share <= TARGET_CPU_SHARE,
        )

    lat = r.get("pubsub", {}).get("latency")
    if lat and lat["publish_to_applied_us"]["p99"] is not None:
        p99 = lat["publish_to_applied_us"]["p99"]
        add(
            f"publish-to-applied p99 at {lat['rate']} orders/s",
            "≤ 5 ms",
            p99,
            f"{ms(p99)} ms",
            p99 <= TARGET_E2E_P99_US,
        )
    po = per_order(r.get("pubsub"))
    if po.get("cpu_us_all") is not None:
        add(
            "CPU per applied order, saturated, all five processes of the pub/sub path",
            "≤ 0.5 ms",
            po["cpu_us_all"],
            f"{ms(po['cpu_us_all'])} ms",
            po["cpu_us_all"] <= TARGET_CPU_PER_ORDER_US,
        )
    if po.get("state_calls") is not None:
        add(
            "state API calls per applied order, saturated (inventory-service's sidecar)",
            f"≤ {TARGET_STATE_CALLS}",
            po["state_calls"],
            f"{po['state_calls']:.3f}",
            po["state_calls"] <= TARGET_STATE_CALLS,
        )
    return out


def per_order(ps: dict | None) -> dict:
    """The pub/sub stage per applied order: CPU of each process and of all of them (µs),
    state API calls and Redis commands, saturated and at the probe's rate. Missing parts (an
    older results.json) are None."""
    if not ps:
        return {}
    tp, lat = ps["throughput"], ps["latency"]
    applied = max(1, tp["applied"])
    cpu = tp["cpu_load_and_drain"]["cpu_s"]
    out: dict = {
        "accepted_per_s": tp["accepted_per_s"],
        "applied_per_s": tp["applied_per_s"],
        "drain_s": tp["backlog_drain_s"],
        "exact": tp["stock"]["exact"] and lat["stock"]["exact"],
        "cpu_us": {k: v * 1e6 / applied for k, v in cpu.items()},
        "cpu_us_all": sum(cpu.values()) * 1e6 / applied,
        "share": None,
        "state_calls": None,
        "redis_commands": None,
        "p50_us": lat["publish_to_applied_us"]["p50"],
        "p99_us": lat["publish_to_applied_us"]["p99"],
        "p99_to_published_us": (lat.get("send_to_published_us") or {}).get("p99"),
        "p99_published_to_applied_us": (lat.get("published_to_applied_us") or {}).get("p99"),
        "probe_cpu_us_all": sum(lat["cpu"]["cpu_s"].values())
        * 1e6
        / max(1, lat["publish_to_applied_us"]["n"]),
        "probe_state_calls": None,
    }
    svc, rt = cpu_split(cpu)
    out["share"] = svc / (svc + rt) if svc + rt else None
    store = tp.get("store")
    if store:
        out["state_calls"] = store["state_calls_per_order"]
        out["redis_commands"] = sum(store["redis_commands_per_order"].values())
    if lat.get("store"):
        out["probe_state_calls"] = lat["store"]["state_calls_per_order"]
    return out


def service_peaks(r: dict) -> dict[str, tuple[int, str]]:
    """Peak RSS (VmHWM, KiB) of each service under the load the targets name."""
    peaks = {}
    c = r["settings"]["single_point_conns"]
    op = run_at(r.get("alone", {}).get("op_info", {}).get("runs", []), c)
    if op and op.get("hwm_kb_after"):
        peaks["order-processor"] = (op["hwm_kb_after"], f"alone, after 1..{c} connections")
    loop = r.get("invocation", {}).get("checkout_loop")
    if loop:
        peaks["checkout"] = (loop["peak_rss_kb"], f"loop of {loop['orders']} orders")
    ps = r.get("pubsub", {})
    for name in ("order-service", "inventory-service"):
        kb = [ps.get(k, {}).get(name) for k in ("throughput_hwm_kb",)]
        kb += [ps.get("latency", {}).get("hwm_kb", {}).get(name)]
        kb = [k for k in kb if k]
        if kb:
            peaks[name] = (max(kb), "end-to-end pub/sub load")
    return peaks


def cpu_windows(r: dict) -> list[dict]:
    out = []
    tp = r.get("pubsub", {}).get("throughput")
    if tp:
        out.append(
            (
                "pubsub",
                f"pub/sub, saturated (wrk c={tp['conns']}, load and drain)",
                tp["cpu_load_and_drain"]["cpu_s"],
            )
        )
    lat = r.get("pubsub", {}).get("latency")
    if lat:
        out.append(("probe", f"pub/sub at {lat['rate']} orders/s (probe)", lat["cpu"]["cpu_s"]))
    loop = r.get("invocation", {}).get("checkout_loop")
    if loop:
        out.append(("checkout", "checkout loop through the sidecars", loop["cpu_s"]))
    rows = []
    for key, label, cpu in out:
        svc, rt = cpu_split(cpu)
        rows.append(
            {
                "key": key,
                "label": label,
                "cpu_s": cpu,
                "services_s": svc,
                "runtime_s": rt,
                "share": svc / (svc + rt) if svc + rt else 0,
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Markdown


def markdown(r: dict) -> str:
    m = r["machine"]
    s = r["settings"]
    L = []
    L.append("# Benchmark results\n")
    L.append(
        f"Written by `scripts/bench.sh{' --smoke' if s['mode'] == 'smoke' else ''}` on "
        f"{r['started_utc']} in {r['duration_s']:.0f} s. Regenerate with `scripts/bench.sh` "
        "(see [bench/README.md](../README.md)).\n"
    )
    if s["mode"] == "smoke":
        L.append(
            "> **Smoke run**: every stage ran for a second or two. These numbers only show "
            "that the benchmark works; do not compare them.\n"
        )
    L.append("| machine | |\n|---|---|")
    for k, label in [
        ("cpu_model", "CPU"),
        ("cores", "cores"),
        ("ram_gib", "RAM (GiB)"),
        ("kernel", "kernel"),
        ("os", "OS"),
        ("rustc", "rustc"),
        ("daprd", "daprd"),
        ("redis", "Redis"),
        ("wrk", "wrk"),
        ("git_commit", "commit"),
    ]:
        v = m.get(k)
        if k == "git_commit" and m.get("git_dirty"):
            v = f"{v} (with uncommitted changes)"
        L.append(f"| {label} | {v} |")
    L.append(
        f"| load average (start → end) | {' '.join(m['loadavg_at_start'])} → "
        f"{' '.join(m.get('loadavg_at_end', []))} |"
    )
    L.append("")
    L.append(
        "Load generator and services share the same cores. Everything runs on loopback. "
        "Latencies from wrk are closed-loop (a slow answer delays the next request of that "
        "connection); the publish-to-applied probe is open-loop.\n"
    )
    L.append(
        "![requests/s and p99 latency by connection count, and CPU shares end to end](chart.svg)\n"
    )

    L.append("## Targets\n")
    L.append("Reported, never enforced: the command does not fail on a number.\n")
    L.append("| target | limit | measured | |\n|---|---|---|---|")
    for t in targets(r):
        mark = "met" if t["met"] else "**missed**"
        L.append(f"| {t['target']} | {t['limit']} | {t['measured']} | {mark} |")
    L.append("")

    alone = r.get("alone")
    if alone:
        L.append("## order-processor alone (no sidecar) vs a bare axum endpoint\n")
        pin = r.get("alone_pinning") or {}
        where = (
            f"The server is pinned to CPU {pin['server_cpus']} and wrk to CPU "
            f"{pin['wrk_cpus']} (taskset), so they do not take turns on one core, as in a "
            "one-vCPU container: order-processor runs on one thread (the services' default) "
            "and bench-axum's `#[tokio::main]` runtime gets one worker. "
            if pin.get("server_cpus")
            else "Server and wrk share all cores. "
        )
        L.append(
            f'wrk, `POST /orders {{"orderId":1}}`, {s["duration"]} s per point after a '
            f"{s['warmup']} s warm-up. {where}CPU µs/req is the server's own CPU time "
            "(utime+stime from /proc) per request: the least noisy number here. wrk CPU is "
            "how busy the load generator was (near 100%, the point is partly wrk-bound).\n"
        )
        L.append(
            "| connections | bare axum req/s | order-processor, log on | % of axum | "
            "order-processor, log off | % of axum |"
        )
        L.append("|---:|---:|---:|---:|---:|---:|")
        for c in s["conns"]:
            a = run_at(alone.get("axum", {}).get("runs", []), c)
            on = run_at(alone.get("op_info", {}).get("runs", []), c)
            off = run_at(alone.get("op_off", {}).get("runs", []), c)
            if not a:
                continue
            pct = lambda x, a=a: f"{x['rps'] / a['rps']:.0%}" if x and a["rps"] else "–"
            L.append(
                f"| {c} | {num(a['rps'])} | {num(on and on['rps'])} | {pct(on)} | "
                f"{num(off and off['rps'])} | {pct(off)} |"
            )
        L.append("")
        L.append(
            "| variant | conns | req/s | p50 ms | p99 ms | p99.9 ms | max ms | "
            "server CPU µs/req | wrk CPU | errors | RSS after |"
        )
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for key, v in alone.items():
            for run in v["runs"]:
                lat = run["latency_us"]
                cpu = next(iter(run["cpu_us_per_request"].values()))
                L.append(
                    f"| {v['description']} | {run['conns']} | {num(run['rps'])} | "
                    f"{ms(lat['p50'])} | {ms(lat['p99'])} | {ms(lat['p99.9'])} | "
                    f"{ms(lat['max'])} | {cpu:.1f} | {wrk_busy(run, r):.0%} | "
                    f"{run['error_count']} | {kib(run.get('hwm_kb_after'))} |"
                )
        L.append("")

    inv = r.get("invocation")
    if inv:
        L.append("## Service invocation through the real sidecars\n")
        L.append(
            "`wrk → daprd (bench-checkout) → daprd (bench-order-processor) → order-processor`"
            " with `dapr-app-id: bench-order-processor`, and in the same run the same load "
            "straight to order-processor. The difference is the sidecars' own cost.\n"
        )
        L.append(
            "| conns | via sidecars req/s | p50 ms | p99 ms | p99.9 ms | direct req/s | "
            "p50 ms | p99 ms | p99.9 ms | added p50 ms |"
        )
        L.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in s["conns"]:
            v = run_at(inv["via_sidecars"], c)
            d = run_at(inv["direct"], c)
            if not v or not d:
                continue
            lv, ld = v["latency_us"], d["latency_us"]
            L.append(
                f"| {c} | {num(v['rps'])} | {ms(lv['p50'])} | {ms(lv['p99'])} | "
                f"{ms(lv['p99.9'])} | {num(d['rps'])} | {ms(ld['p50'])} | {ms(ld['p99'])} | "
                f"{ms(ld['p99.9'])} | {ms(lv['p50'] - ld['p50'])} |"
            )
        L.append("")
        L.append("CPU time per request (µs), by process:\n")
        names = list(inv["via_sidecars"][0]["cpu_us_per_request"].keys())
        L.append("| path | conns | " + " | ".join(names) + " | errors |")
        L.append("|---|---:|" + "---:|" * len(names) + "---:|")
        for label, runs in (("via sidecars", inv["via_sidecars"]), ("direct", inv["direct"])):
            for run in runs:
                L.append(
                    f"| {label} | {run['conns']} | "
                    + " | ".join(f"{run['cpu_us_per_request'][n]:.1f}" for n in names)
                    + f" | {run['error_count']} |"
                )
        L.append("")
        loop = inv["checkout_loop"]
        L.append(
            f"checkout's own loop (one order after another, `CHECKOUT_INTERVAL_MS=0`): "
            f"{loop['passed']} of {loop['orders']} orders passed in {loop['elapsed_s']} s, "
            f"**{num(loop['orders_per_s'])} orders/s**, {loop['mean_ms_per_order']} ms per "
            f"order including checkout's start-up; checkout's peak RSS "
            f"{kib(loop['peak_rss_kb'])}.\n"
        )

    ps = r.get("pubsub")
    if ps:
        tp, lat = ps["throughput"], ps["latency"]
        L.append("## Pub/sub end to end (real daprd and Redis)\n")
        L.append(
            f"`order-service → daprd → Redis Streams → daprd → inventory-service → daprd → "
            f"Redis (state)`, {tp['items']} items, stock set to {s['stock']:,} each.\n"
        )
        w = tp["wrk"]
        stock_ok = "exact" if tp["stock"]["exact"] else "**NOT exact**"
        L.append("| saturated (wrk, each request a new order) | |\n|---|---|")
        L.append(f"| connections, duration | {tp['conns']}, {w['duration_s']} s |")
        L.append(
            f"| orders accepted by order-service | {tp['accepted']:,} "
            f"({num(tp['accepted_per_s'])}/s) |"
        )
        L.append(
            f"| orders applied by inventory-service | {tp['applied']:,} "
            f"({num(tp['applied_per_s'])}/s, first publish to last applied) |"
        )
        L.append(f"| backlog left when the load stopped | drained in {tp['backlog_drain_s']} s |")
        L.append(f"| final stock of every item | {stock_ok} |")
        L.append(
            f"| redeliveries skipped as duplicates / retries / rejections | "
            f"{tp['duplicates']} / {tp['retried']} / {tp['rejected']} |"
        )
        L.append(
            f"| POST /order p50 / p99 / p99.9 | {ms(w['latency_us']['p50'])} / "
            f"{ms(w['latency_us']['p99'])} / {ms(w['latency_us']['p99.9'])} ms |"
        )
        L.append(f"| wrk errors | {w['error_count']} |")
        conns = tp.get("app_to_sidecar_connections")
        if conns:
            L.append(
                "| pooled connections app → own sidecar after the load | "
                + ", ".join(f"{k} {v}" for k, v in conns.items())
                + " |"
            )
        L.append("")
        p = lat["publish_to_applied_us"]
        a = lat["probe"]["answer_us"]
        L.append("| fixed rate, open loop (bench-probe) | |\n|---|---|")
        L.append(
            f"| rate | {lat['rate']}/s target, {lat['probe']['rate_achieved']:.1f}/s sent, "
            f"{lat['count']} orders |"
        )
        L.append(
            f"| publish-to-applied p50 / p90 / p99 / p99.9 / max | {ms(p['p50'])} / "
            f"{ms(p['p90'])} / {ms(p['p99'])} / {ms(p['p99.9'])} / {ms(p['max'])} ms |"
        )
        for key, what in (
            ("send_to_published_us", "… send to order-service's `Published` line"),
            ("published_to_applied_us", "… `Published` line to applied"),
        ):
            part = lat.get(key)
            if part and part["n"]:
                L.append(
                    f"| {what}, p50 / p90 / p99 / max | {ms(part['p50'])} / "
                    f"{ms(part['p90'])} / {ms(part['p99'])} / {ms(part['max'])} ms |"
                )
        L.append(
            f"| POST /order answered p50 / p99 / max | {ms(a['p50'])} / {ms(a['p99'])} / "
            f"{ms(a['max'])} ms |"
        )
        L.append(
            f"| not applied / failed sends | {lat['not_applied']} / {lat['probe']['failed']} |"
        )
        L.append(
            f"| final stock of every item | "
            f"{'exact' if lat['stock']['exact'] else '**NOT exact**'} |"
        )
        L.append("")
        L.append(
            "Publish-to-applied is the time from the probe's send (wall clock, before the "
            "request) to the timestamp of inventory-service's `Processed OrderPlaced event` "
            "line for that orderId (same machine, same clock).\n"
        )
        po = per_order(ps)
        L.append("Per applied order, saturated (CPU over the load and the drain):\n")
        L.append("| | per applied order |\n|---|---:|")
        for name, us in sorted(po["cpu_us"].items(), key=lambda kv: -kv[1]):
            L.append(f"| CPU, {name} | {us:,.0f} µs |")
        L.append(f"| **CPU, all five processes** | **{po['cpu_us_all']:,.0f} µs** |")
        if po["state_calls"] is not None:
            L.append(
                f"| state API calls of inventory-service (its sidecar's "
                f"`dapr_component_state_count`) | {po['state_calls']:.3f} |"
            )
            L.append(f"| Redis commands, both sidecars | {po['redis_commands']:.2f} |")
        if po["probe_state_calls"] is not None:
            L.append(
                f"| at {lat['rate']}/s: state API calls / CPU of all five processes | "
                f"{po['probe_state_calls']:.3f} / {po['probe_cpu_us_all']:,.0f} µs |"
            )
        L.append("")

    L.extend(export_section(r))

    windows = cpu_windows(r)
    if windows:
        L.append("## CPU time: services vs daprd and Redis\n")
        L.append("utime+stime from /proc over each window. The load generator is not counted.\n")
        L.append("| window | process | CPU s | share |\n|---|---|---:|---:|")
        for w in windows:
            total = w["services_s"] + w["runtime_s"]
            for name, v in sorted(w["cpu_s"].items(), key=lambda kv: -kv[1]):
                L.append(
                    f"| {w['label']} | {name} | {v:.2f} | {v / total:.1%} |"
                    if total
                    else f"| {w['label']} | {name} | {v} | – |"
                )
            L.append(
                f"| {w['label']} | **services together** | {w['services_s']:.2f} | "
                f"**{w['share']:.1%}** |"
            )
        L.append("")

    st = r.get("startup")
    if st or r.get("alone"):
        L.append("## Memory and start-up\n")
        peaks = service_peaks(r)
        L.append(
            "| binary | exec → accepts TCP, median (min–max) | RSS when up | idle RSS | "
            "peak RSS under load |"
        )
        L.append("|---|---:|---:|---:|---:|")
        for name, v in (st or {}).items():
            pk, where = peaks.get(name, (None, ""))
            if name == "bench-axum" and r.get("alone", {}).get("axum"):
                pk = r["alone"]["axum"]["peak_hwm_kb"]
                where = "alone, up to 64 connections"
            L.append(
                f"| {name} | {ms(v['median_us'])} ms ({ms(v['min_us'])}–{ms(v['max_us'])}) | "
                f"{kib(v['rss_ready_kb'][-1] if v['rss_ready_kb'] else None)} | "
                f"{kib(v['idle']['rss_kb'])} | {kib(pk)}{' (' + where + ')' if pk else ''} |"
            )
        L.append("")
        if ps:
            rt = ps["runtime_hwm_kb"]
            L.append(
                "For scale, peak RSS of the runtime in the pub/sub stage: "
                + ", ".join(f"{k} {kib(v)}" for k, v in rt.items())
                + ".\n"
            )

    prof = r.get("profile")
    if prof:
        L.append("## Where the time goes (profile)\n")
        cg = prof.get("callgrind") or {}
        if cg:
            base = cg.get("axum", {}).get("instructions_per_request")
            L.append(
                "callgrind, user-space instructions per request on one connection (counted, "
                "so the same on a busy machine; system calls and thread wake-ups are not "
                "in it):\n"
            )
            L.append("| server | instructions/request | vs bare axum |\n|---|---:|---:|")
            for key, v in cg.items():
                ipr = v["instructions_per_request"]
                rel = f"+{(ipr - base) / base:.0%}" if base and key != "axum" else "–"
                L.append(f"| {key} | {ipr:,.0f} | {rel} |")
            L.append("")
        sc = prof.get("syscalls") or {}
        if sc:
            L.append(
                "System calls per request (strace -f -c under wrk -t1 -c8; strace slows "
                "everything, the counts still hold):\n"
            )
            names = sorted({k for v in sc.values() for k in v["by_call"]})
            L.append("| server | total | " + " | ".join(names) + " |")
            L.append("|---|---:|" + "---:|" * len(names))
            for key, v in sc.items():
                L.append(
                    f"| {key} | {v['per_request']:.2f} | "
                    + " | ".join(f"{v['by_call'].get(n, 0):.2f}" for n in names)
                    + " |"
                )
            L.append("")
        perf = prof.get("perf")
        if perf and perf.get("top"):
            L.append(
                f"perf, cpu-clock samples of order-processor (RUST_LOG=info) under wrk "
                f"c={perf['conns']}, hottest symbols (self time; full report in the run "
                f"folder, `{perf['report']}`):\n"
            )
            L.append("| % | object | symbol |\n|---:|---|---|")
            for t in perf["top"][:15]:
                L.append(f"| {t['percent']:.1f} | {t['dso']} | `{t['symbol'][:90]}` |")
            L.append("")

    noise = []
    for key, v in (r.get("alone") or {}).items():
        for run in v["runs"]:
            if run["machine_capacity_s"]:
                noise.append(run["other_cpu_s"] / run["machine_capacity_s"])
    if noise:
        L.append("## Noise\n")
        L.append(
            f"CPU used by processes other than the measured server and wrk during the "
            f"single-server points: up to {max(noise):.0%} of the machine "
            f"(median {sorted(noise)[len(noise) // 2]:.0%}). Above a few percent, "
            "requests/s and latencies are disturbed; CPU µs per request much less so.\n"
        )
    return "\n".join(L)


def export_section(r: dict) -> list[str]:
    """Span export on beside off: the export stage against the alone and pubsub stages."""
    ex = r.get("export")
    if not ex:
        return []
    L = ["## Span export: on vs off\n"]
    L.append(
        f"Export on: every service with `{' '.join(f'{k}={v}' for k, v in ex['env'].items())}` "
        f'and every sidecar with a Dapr Configuration of `samplingRate: "1"` to the same '
        f"{ex['backend']} (started in {ex['zipkin_start_s']} s), as `scripts/run.sh` runs them. "
        "Off: the alone and pub/sub stages above (no OTEL_* variable, no Configuration). "
        "Zipkin's own CPU is not in the services' figures.\n"
    )
    L.append("| measurement | export off | export on | on vs off |\n|---|---:|---:|---:|")
    off_runs = (r.get("alone") or {}).get("op_info", {}).get("runs", [])
    for run in ex["alone"]["runs"]:
        off = run_at(off_runs, run["conns"])
        on_us = run["cpu_us_per_request"]["order-processor"]
        if off:
            off_us = off["cpu_us_per_request"]["order-processor"]
            L.append(
                f"| order-processor alone, c={run['conns']}: CPU per request | {off_us:.1f} µs | "
                f"{on_us:.1f} µs | {on_us / off_us - 1:+.0%} |"
            )
            L.append(
                f"| order-processor alone, c={run['conns']}: requests/s | {off['rps']:,.0f} | "
                f"{run['rps']:,.0f} | {run['rps'] / off['rps'] - 1:+.0%} |"
            )
    off, on = per_order(r.get("pubsub")), per_order(ex["pubsub"])
    if off:
        rows = [
            ("pub/sub: CPU per applied order, all five processes", "cpu_us_all", " µs"),
            ("pub/sub: applied orders/s, saturated", "applied_per_s", "/s"),
            ("pub/sub: publish-to-applied p99 at the probe's rate", "p99_us", "ms"),
            ("pub/sub: CPU per order at the probe's rate, all five", "probe_cpu_us_all", " µs"),
        ]
        for label, key, unit in rows:
            a, b = off[key], on[key]
            cells = [f"{ms(v)} ms" if unit == "ms" else f"{v:,.0f}{unit}" for v in (a, b)]
            L.append(f"| {label} | {cells[0]} | {cells[1]} | {b / a - 1:+.0%} |")
        for name in sorted(on["cpu_us"]):
            a, b = off["cpu_us"].get(name), on["cpu_us"][name]
            if a:
                L.append(
                    f"| pub/sub: CPU per applied order, {name} | {a:,.0f} µs | {b:,.0f} µs | "
                    f"{b / a - 1:+.0%} |"
                )
    L.append("")
    requests = sum(run["requests"] for run in ex["alone"]["runs"])
    L.append(
        f"Spans Zipkin received: {ex['alone']['received']['spans']:,} during the alone "
        f"measurement (of {requests:,} requests measured, and a warm-up; a span the batch processor's queue has no "
        "room for is dropped, as the OpenTelemetry SDK does under overload), "
        f"{ex['pubsub']['received']['spans']:,} during the pub/sub one "
        f"(dropped by Zipkin: {ex['alone']['received']['dropped_by_zipkin']} and "
        f"{ex['pubsub']['received']['dropped_by_zipkin']}); Zipkin's CPU over them: "
        f"{ex['alone']['received']['zipkin_cpu_s']} s and "
        f"{ex['pubsub']['received']['zipkin_cpu_s']} s.\n"
    )
    return L


# ---------------------------------------------------------------------------------------------
# SVG

COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1"]


def svg_chart(r: dict) -> str:
    s = r["settings"]
    conns = s["conns"]
    series = []
    alone = r.get("alone", {})
    for key, label in (
        ("axum", "bare axum"),
        ("op_info", "order-processor, log on"),
        ("op_off", "order-processor, log off"),
    ):
        if key in alone:
            series.append((label, alone[key]["runs"]))
    inv = r.get("invocation")
    if inv:
        series.append(("order-processor via 2 sidecars", inv["via_sidecars"]))
    W, H = 960, 700
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
            f'viewBox="0 0 {W} {H}" font-family="Helvetica, Arial, sans-serif" font-size="12">'
        ),
        f'<rect width="{W}" height="{H}" fill="white"/>',
    ]
    m = r["machine"]
    title = (
        f"Benchmark, {s['mode']} run, {r['started_utc'][:10]}: {m['cpu_model']}, "
        f"{m['cores']} cores, {m['ram_gib']} GiB"
        + ("  (SMOKE RUN: numbers not meaningful)" if s["mode"] == "smoke" else "")
    )
    out.append(
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{escape(title)}</text>'
    )

    def bars(x0, y0, w, h, metric, label, fmt, log=False):
        vals = [metric(run_at(runs, c)) for _, runs in series for c in conns]
        vals = [v for v in vals if v]
        top = max(vals) * 1.1 if vals else 1
        out.append(f'<text x="{x0}" y="{y0 - 8}" font-weight="bold">{escape(label)}</text>')
        out.append(f'<line x1="{x0}" y1="{y0 + h}" x2="{x0 + w}" y2="{y0 + h}" stroke="#333"/>')
        for i in range(5):
            v = top * i / 4
            y = y0 + h - h * i / 4
            out.append(f'<line x1="{x0}" y1="{y}" x2="{x0 + w}" y2="{y}" stroke="#ddd"/>')
            out.append(
                f'<text x="{x0 - 6}" y="{y + 4}" text-anchor="end" fill="#555">'
                f"{escape(fmt(v))}</text>"
            )
        gw = w / max(1, len(conns))
        bw = (gw * 0.8) / max(1, len(series))
        for gi, c in enumerate(conns):
            gx = x0 + gi * gw + gw * 0.1
            for si, (_, runs) in enumerate(series):
                run = run_at(runs, c)
                v = metric(run) if run else None
                if not v:
                    continue
                bh = h * v / top
                out.append(
                    f'<rect x="{gx + si * bw:.1f}" y="{y0 + h - bh:.1f}" width="{bw - 2:.1f}" '
                    f'height="{bh:.1f}" fill="{COLORS[si % len(COLORS)]}">'
                    f"<title>{escape(series[si][0])}, {c} conns: {escape(fmt(v))}</title></rect>"
                )
            out.append(
                f'<text x="{gx + gw * 0.4}" y="{y0 + h + 16}" text-anchor="middle">'
                f"{c} conn{'s' if c != 1 else ''}</text>"
            )

    k = lambda v: f"{v / 1000:.0f}k" if v >= 1000 else f"{v:.0f}"
    bars(70, 70, 380, 240, lambda run: run and run["rps"], "requests/s (higher is better)", k)
    bars(
        560,
        70,
        380,
        240,
        lambda run: run and run["latency_us"]["p99"] / 1000,
        "p99 latency, ms (lower is better)",
        lambda v: f"{v:.1f}",
    )
    ly = 345
    lx = 70
    for si, (label, _) in enumerate(series):
        out.append(
            f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" '
            f'fill="{COLORS[si % len(COLORS)]}"/>'
        )
        out.append(f'<text x="{lx + 16}" y="{ly}">{escape(label)}</text>')
        lx += 20 + 7 * len(label) + 20

    windows = cpu_windows(r)
    y = 400
    out.append(
        f'<text x="70" y="{y}" font-weight="bold">CPU time end to end: the services '
        f"(blue) vs daprd and Redis (grey); dashed line: the 15% target</text>"
    )
    y += 14
    for w in windows:
        total = w["services_s"] + w["runtime_s"]
        if not total:
            continue
        bw = 420
        x0 = 400
        sw = bw * w["services_s"] / total
        out.append(f'<text x="70" y="{y + 17}">{escape(w["label"][:52])}</text>')
        out.append(f'<rect x="{x0}" y="{y + 4}" width="{sw:.1f}" height="18" fill="{COLORS[0]}"/>')
        out.append(
            f'<rect x="{x0 + sw:.1f}" y="{y + 4}" width="{bw - sw:.1f}" height="18" fill="#bbb"/>'
        )
        out.append(
            f'<line x1="{x0 + bw * 0.15:.1f}" y1="{y + 1}" x2="{x0 + bw * 0.15:.1f}" '
            f'y2="{y + 25}" stroke="#c62828" stroke-dasharray="3,2"/>'
        )
        out.append(f'<text x="{x0 + bw + 8}" y="{y + 17}">{w["share"]:.1%} services</text>')
        y += 30

    t = targets(r)
    y += 20
    out.append(f'<text x="70" y="{y}" font-weight="bold">targets</text>')
    for row in t:
        y += 17
        color = "#2e7d32" if row["met"] else "#c62828"
        out.append(
            f'<text x="70" y="{y}" fill="{color}">{"met" if row["met"] else "missed"}'
            f'</text><text x="125" y="{y}">{escape(row["target"][:100])}: '
            f"{escape(str(row['measured']))} (limit {escape(row['limit'])})</text>"
        )
    H2 = max(H, y + 20)
    out[0] = out[0].replace(
        f'height="{H}" viewBox="0 0 {W} {H}"', f'height="{H2}" viewBox="0 0 {W} {H2}"'
    )
    out[1] = f'<rect width="{W}" height="{H2}" fill="white"/>'
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(results: dict, out_dir: Path) -> None:
    out_dir = Path(out_dir)
    (out_dir / "results.md").write_text(markdown(results))
    (out_dir / "chart.svg").write_text(svg_chart(results))


def main() -> int:
    path = (
        Path(sys.argv[1])
        if len(sys.argv) > 1
        else Path(__file__).parent / "results" / "results.json"
    )
    write(json.loads(path.read_text()), path.parent)
    print(f"wrote {path.parent / 'results.md'} and {path.parent / 'chart.svg'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
