"""What a run measures with: /proc readers (CPU ticks, RSS, connections), CPU windows over a
set of processes, percentiles, and a follower of a growing log file."""

from __future__ import annotations

import calendar
import math
import time
from pathlib import Path

from .config import CLK_TCK
from .procs import Proc


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

    def start(self) -> CpuWindow:
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
        return {
            "wall_s": round(wall, 3),
            "cpu_s": per,
            "machine_busy_s": round(busy, 2),
            "machine_capacity_s": round(capacity, 2),
        }


# ---------------------------------------------------------------------------------------------
# Helpers


def log_ts_us(ts: str) -> int:
    """`2026-11-21T06:11:47.159349Z` (tracing-subscriber's timestamp) → Unix microseconds."""
    secs = calendar.timegm(
        (
            int(ts[0:4]),
            int(ts[5:7]),
            int(ts[8:10]),
            int(ts[11:13]),
            int(ts[14:16]),
            int(ts[17:19]),
            0,
            0,
            0,
        )
    )
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
    return {
        "n": len(s),
        "p50": percentile(s, 50),
        "p90": percentile(s, 90),
        "p99": percentile(s, 99),
        "p99.9": percentile(s, 99.9),
        "max": s[-1] if s else None,
    }


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
