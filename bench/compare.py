#!/usr/bin/env python3
"""Puts several benchmark runs side by side: one column per run, in the order given (run them
alternating, before and after), then each label's range over its runs.

    python3 bench/compare.py --title "..." before=DIR after=DIR before=DIR after=DIR > out.md

DIR is a folder with the results.json of a run (`scripts/bench.sh --out DIR`), or that file.
Only what every compared run measured is shown. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.dont_write_bytecode = True
import report


def pubsub(key: str, scale: float = 1.0, export: bool = False):
    """A figure of `report.per_order` for the pub/sub stage (or its export-on repeat)."""

    def get(r: dict):
        ps = (r.get("export") or {}).get("pubsub") if export else r.get("pubsub")
        value = report.per_order(ps).get(key)
        return None if value is None else value * scale

    return get


def cpu_of(name: str):
    return lambda r: report.per_order(r.get("pubsub")).get("cpu_us", {}).get(name)


MS = 1 / 1000  # µs → ms

# (label, function of a results.json → number or None, how to show it)
ROWS = [
    ("commit", lambda r: r["machine"]["git_commit"], "text"),
    ("load average at start (1 min)", lambda r: float(r["machine"]["loadavg_at_start"][0]), "2"),
    ("pub/sub saturated: orders accepted/s", pubsub("accepted_per_s"), "0"),
    ("pub/sub saturated: orders applied/s", pubsub("applied_per_s"), "0"),
    ("pub/sub: backlog drained after the load, s", pubsub("drain_s"), "1"),
    ("pub/sub: stock exact", lambda r: report.per_order(r.get("pubsub")).get("exact"), "bool"),
    (
        "pub/sub saturated: CPU per applied order, all five processes, µs",
        pubsub("cpu_us_all"),
        "0",
    ),
    *[
        (f"… {name}, µs", cpu_of(name), "0")
        for name in (
            "order-service",
            "daprd (order-service)",
            "inventory-service",
            "daprd (inventory-service)",
            "redis",
        )
    ],
    ("pub/sub saturated: state API calls per applied order", pubsub("state_calls"), "3"),
    ("pub/sub saturated: Redis commands per applied order", pubsub("redis_commands"), "1"),
    ("pub/sub saturated: the services' CPU share", pubsub("share"), "%"),
    ("200/s: publish-to-applied p50, ms", pubsub("p50_us", MS), "2"),
    ("200/s: publish-to-applied p99, ms", pubsub("p99_us", MS), "2"),
    ("… send to order-service's Published line, p99, ms", pubsub("p99_to_published_us", MS), "2"),
    ("… Published line to applied, p99, ms", pubsub("p99_published_to_applied_us", MS), "2"),
    ("200/s: state API calls per order", pubsub("probe_state_calls"), "3"),
    ("200/s: CPU per order, all five processes, µs", pubsub("probe_cpu_us_all"), "0"),
    *[
        (
            f"order-processor alone (log on), c={c}: CPU per request, µs",
            lambda r, c=c: alone_cpu(r.get("alone", {}).get("op_info"), c),
            "1",
        )
        for c in (1, 32)
    ],
    (
        "order-processor alone (log on), c=32: requests/s",
        lambda r: alone_rps(r.get("alone", {}).get("op_info"), 32),
        "0",
    ),
    *[
        (
            f"export on: order-processor alone, c={c}: CPU per request, µs",
            lambda r, c=c: alone_cpu(r.get("export", {}).get("alone"), c),
            "1",
        )
        for c in (1, 32)
    ],
    (
        "export on: pub/sub CPU per applied order, all five processes, µs",
        pubsub("cpu_us_all", export=True),
        "0",
    ),
    ("export on: 200/s publish-to-applied p99, ms", pubsub("p99_us", MS, export=True), "2"),
]


def alone_cpu(variant: dict | None, conns: int):
    run = report.run_at((variant or {}).get("runs", []), conns)
    return run["cpu_us_per_request"].get("order-processor") if run else None


def alone_rps(variant: dict | None, conns: int):
    run = report.run_at((variant or {}).get("runs", []), conns)
    return run["rps"] if run else None


def show(value, how: str) -> str:
    if value is None:
        return "–"
    if how == "text":
        return str(value)
    if how == "bool":
        return "yes" if value else "**no**"
    if how == "%":
        return f"{value:.1%}"
    return f"{value:,.{int(how)}f}"


def span(values: list, how: str) -> str:
    nums = [v for v in values if v is not None]
    if not nums or how in ("text", "bool"):
        return "–"
    lo, hi = min(nums), max(nums)
    return show(lo, how) if lo == hi else f"{show(lo, how)} – {show(hi, how)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--title", default="Benchmark runs side by side")
    ap.add_argument("runs", nargs="+", metavar="LABEL=DIR")
    args = ap.parse_args()
    runs: list[tuple[str, dict]] = []
    for arg in args.runs:
        label, sep, where = arg.partition("=")
        if not sep:
            ap.error(f"{arg!r} is not LABEL=DIR")
        path = Path(where)
        path = path / "results.json" if path.is_dir() else path
        runs.append((label, json.loads(path.read_text())))
    labels = list(dict.fromkeys(label for label, _ in runs))
    numbered, seen = [], {}
    for label, _ in runs:
        seen[label] = seen.get(label, 0) + 1
        numbered.append(f"{label}-{seen[label]}")

    out = [f"# {args.title}\n"]
    first = runs[0][1]["machine"]
    out.append(
        f"Machine: {first['cpu_model']}, {first['cores']} cores, {first['ram_gib']} GiB, "
        f"kernel {first['kernel']}; {first['daprd']}; {first['redis']}. "
        f"Runs from {runs[0][1]['started_utc']} to {runs[-1][1]['started_utc']}, in the order "
        "of the columns.\n"
    )
    out.append(
        "| | "
        + " | ".join(numbered)
        + " | "
        + " | ".join(f"{label} (range)" for label in labels)
        + " |"
    )
    out.append("|---|" + "---:|" * (len(runs) + len(labels)))
    for name, get, how in ROWS:
        values = []
        for _, r in runs:
            try:
                values.append(get(r))
            except (KeyError, TypeError, ZeroDivisionError):
                values.append(None)
        if all(v is None for v in values):
            continue
        ranges = [
            span([v for (lb, _), v in zip(runs, values) if lb == label], how) for label in labels
        ]
        out.append(
            f"| {name} | "
            + " | ".join(show(v, how) for v in values)
            + " | "
            + " | ".join(ranges)
            + " |"
        )
    print("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
