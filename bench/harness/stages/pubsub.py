"""Stage pubsub: order-service and inventory-service with their daprd and Redis: saturated
throughput with an exact-stock check, then the open-loop publish-to-applied probe."""

from __future__ import annotations

import json
import subprocess
import time
from typing import TYPE_CHECKING

from ..config import (
    DUPLICATE,
    PORT_INVENTORY,
    PORT_ORDER_SERVICE,
    PROCESSED,
    PUBLISHED,
    REDIS_PORT,
    REJECTED,
    RETRIED,
    SIDECARS,
)
from ..measure import (
    CpuWindow,
    LogFollower,
    log_ts_us,
    status_kb,
    summarize,
    tcp_connections_to,
)
from ..net import (
    http,
    wait_http,
    wait_port,
)
from ..procs import PROCS

if TYPE_CHECKING:
    from ..context import Bench


def state_calls(app_id: str) -> dict[str, int]:
    """State API calls a sidecar has served, by operation (get, bulk_get, set, ...): daprd's
    `dapr_component_state_count` metric, one count per call of the app."""
    code, body = http("GET", f"http://127.0.0.1:{SIDECARS[app_id][3]}/metrics")
    calls: dict[str, int] = {}
    if code != 200:
        return calls
    for line in body.decode(errors="replace").splitlines():
        if not line.startswith("dapr_component_state_count{"):
            continue
        labels, _, value = line.rpartition(" ")
        op = labels.split('operation="', 1)[1].split('"', 1)[0] if 'operation="' in labels else "?"
        calls[op] = calls.get(op, 0) + int(float(value))
    return calls


def redis_commands() -> dict[str, int]:
    """Commands Redis has run, by name (`INFO commandstats`): the store's own round trips."""
    res = subprocess.run(
        ["redis-cli", "-p", str(REDIS_PORT), "INFO", "commandstats"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    counts: dict[str, int] = {}
    for line in res.stdout.splitlines():
        if line.startswith("cmdstat_"):
            name, _, stats = line.partition(":")
            calls = stats.split(",", 1)[0].split("=", 1)[1]
            counts[name.removeprefix("cmdstat_")] = int(calls)
    return counts


class StoreCounter:
    """State calls of inventory-service's sidecar and Redis commands over a window, per order."""

    def __init__(self) -> None:
        self.calls = state_calls("bench-inventory-service")
        self.redis = redis_commands()

    def per_order(self, orders: int) -> dict:
        calls, redis = state_calls("bench-inventory-service"), redis_commands()
        d_calls = {k: v - self.calls.get(k, 0) for k, v in calls.items()}
        d_redis = {k: v - self.redis.get(k, 0) for k, v in redis.items()}
        n = max(1, orders)
        return {
            "orders": orders,
            "state_calls_per_order": round(sum(d_calls.values()) / n, 3),
            "state_calls_by_operation": {k: v for k, v in d_calls.items() if v},
            "redis_commands_per_order": {
                k: round(v / n, 3) for k, v in sorted(d_redis.items()) if v
            },
        }


def run(bench: Bench) -> None:
    bench.results["pubsub"] = measure(bench)


def measure(bench: Bench) -> dict:
    """The whole pub/sub measurement, with the services and sidecars `bench` starts (the export
    stage runs it again with span export on)."""
    bench.say("pub/sub end to end: order-service → daprd → Redis → daprd → inventory-service")
    redis = PROCS.start(
        "redis",
        [
            "redis-server",
            "--port",
            str(REDIS_PORT),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        log=bench.run / "redis.log",
    )
    wait_port(REDIS_PORT, redis)
    inv = bench.start_service(
        "inventory-service", PORT_INVENTORY, DAPR_HTTP_PORT=SIDECARS["bench-inventory-service"][0]
    )
    osvc = bench.start_service(
        "order-service", PORT_ORDER_SERVICE, DAPR_HTTP_PORT=SIDECARS["bench-order-service"][0]
    )
    inv_d = bench.start_daprd("bench-inventory-service", PORT_INVENTORY)
    os_d = bench.start_daprd("bench-order-service", PORT_ORDER_SERVICE)
    wait_http(f"http://127.0.0.1:{SIDECARS['bench-inventory-service'][0]}/v1.0/healthz", 204, inv_d)
    wait_http(f"http://127.0.0.1:{SIDECARS['bench-order-service'][0]}/v1.0/healthz", 204, os_d)
    idle = {
        "order-service": status_kb(osvc.pid, "VmRSS"),
        "inventory-service": status_kb(inv.pid, "VmRSS"),
    }
    items = [f"item{k}" for k in range(bench.s.items)]
    for item in items:
        code, body = http(
            "POST",
            f"http://127.0.0.1:{PORT_INVENTORY}/inventory/{item}",
            {"quantity": bench.s.stock},
        )
        if code != 200:
            raise RuntimeError(f"setting the stock of {item} failed: {code} {body[:300]!r}")

    inv_log = LogFollower(inv.log)
    os_log = LogFollower(osvc.log)
    processed: dict[str, tuple[int, str, int]] = {}  # orderId → (ts_us, itemId, remaining)
    published: dict[str, tuple[int, str]] = {}  # orderId → (ts_us, itemId)
    counters = {"duplicates": 0, "retried": 0, "rejected": 0, "applied_twice": 0}

    def poll() -> None:
        for line in inv_log.new_lines():
            m = PROCESSED.match(line)
            if m:
                if m.group(2) in processed:
                    counters["applied_twice"] += 1
                processed[m.group(2)] = (log_ts_us(m.group(1)), m.group(3), int(m.group(5)))
            elif DUPLICATE.search(line):
                counters["duplicates"] += 1
            elif RETRIED.search(line):
                counters["retried"] += 1
            elif REJECTED.search(line):
                counters["rejected"] += 1
        for line in os_log.new_lines():
            m = PUBLISHED.match(line)
            if m:
                published[m.group(2)] = (log_ts_us(m.group(1)), m.group(3))

    def drain(prefix: str, timeout: float) -> float:
        """Waits until every published order with `prefix` is processed; returns the wait."""
        started = time.monotonic()
        last_progress, last_count = started, -1
        while True:
            poll()
            want = {o for o in published if o.startswith(prefix)}
            done = sum(1 for o in want if o in processed)
            if done == len(want):
                return time.monotonic() - started
            if done != last_count:
                last_progress, last_count = time.monotonic(), done
            now = time.monotonic()
            if now - started > timeout or now - last_progress > 30:
                bench.say(
                    f"  warning: {len(want) - done} of {len(want)} '{prefix}' orders "
                    f"not processed after {now - started:.0f}s"
                )
                return now - started
            time.sleep(0.2)

    def stock_check(baseline: dict[str, int]) -> dict:
        """Exactly once: every order order-service acknowledged is applied, none twice, and
        each item's stock is its starting stock minus the orders applied to it (quantity
        1 each). An order whose request wrk cut off at the end of its run may have been
        published without being acknowledged; it counts if inventory-service applied it,
        so first wait until no order has been applied for a second."""
        deadline = time.monotonic() + 15
        seen = -1
        while len(processed) != seen and time.monotonic() < deadline:
            seen = len(processed)
            time.sleep(1.0)
            poll()
        expected, actual, last_logged = {}, {}, {}
        for item in items:
            applied = [(ts, rem) for (ts, it, rem) in processed.values() if it == item]
            expected[item] = baseline[item] - len(applied)
            last_logged[item] = min((rem for _, rem in applied), default=baseline[item])
            code, body = http("GET", f"http://127.0.0.1:{PORT_INVENTORY}/inventory/{item}")
            actual[item] = json.loads(body)["quantity"] if code == 200 else None
        unapplied = sorted(o for o in published if o not in processed)
        unacknowledged = sorted(o for o in processed if o not in published)
        exact = (
            expected == actual == last_logged and not unapplied and counters["applied_twice"] == 0
        )
        return {
            "exact": exact,
            "expected": expected,
            "actual": actual,
            "lowest_remaining_logged": last_logged,
            "acknowledged_not_applied": unapplied[:20],
            "applied_not_acknowledged": len(unacknowledged),
            "applied_twice": counters["applied_twice"],
        }

    # Warm-up: one order per item, which also proves the subscription is live.
    for k, item in enumerate(items):
        code, body = http(
            "POST",
            f"http://127.0.0.1:{PORT_ORDER_SERVICE}/order",
            {"orderId": f"warm-{k}", "itemId": item, "quantity": 1},
        )
        if code != 200:
            raise RuntimeError(f"warm-up order failed: {code} {body[:300]!r}\n{osvc.tail()}")
    drain("warm-", 60)
    baseline = {item: bench.s.stock for item in items}

    watch = {
        "order-service": osvc,
        "inventory-service": inv,
        "daprd (order-service)": os_d,
        "daprd (inventory-service)": inv_d,
        "redis": redis,
    }

    # 1. Throughput: wrk, each request a new order, then wait until all are applied.
    bench.say(
        f"  throughput: wrk c={bench.s.e2e_conns} for {bench.s.e2e_duration}s, "
        f"{bench.s.items} items, then until every accepted order is applied"
    )
    window = CpuWindow(watch).start()
    store_tp = StoreCounter()
    load_start_us = int(time.time() * 1e6)
    w = bench.wrk(
        "pubsub-throughput",
        PORT_ORDER_SERVICE,
        bench.s.e2e_conns,
        bench.s.e2e_duration,
        watch,
        BENCH_PATH="/order",
        BENCH_UNIQUE=1,
        BENCH_PREFIX="tp",
        BENCH_ITEMS=bench.s.items,
    )
    load_end_us = int(time.time() * 1e6)
    drain_s = drain("tp-", bench.s.drain_timeout)
    cpu_all = window.stop()
    tp_pub = {o: v for o, v in published.items() if o.startswith("tp-")}
    tp_done = {o: v for o, v in processed.items() if o.startswith("tp-")}
    first_pub = min((v[0] for v in tp_pub.values()), default=load_start_us)
    last_done = max((v[0] for v in tp_done.values()), default=load_end_us)
    load_s = (load_end_us - load_start_us) / 1e6
    throughput = {
        "conns": bench.s.e2e_conns,
        "items": bench.s.items,
        "wrk": w,
        "accepted": len(tp_pub),
        "applied": sum(1 for o in tp_pub if o in tp_done),
        "accepted_per_s": round(len(tp_pub) / load_s, 1),
        "applied_per_s": round(len(tp_done) / max(1e-6, (last_done - first_pub) / 1e6), 1),
        "backlog_drain_s": round(max(0, last_done - load_end_us) / 1e6, 2),
        "drain_wait_s": round(drain_s, 2),
        "cpu_load_and_drain": cpu_all,
    }
    throughput["store"] = store_tp.per_order(throughput["applied"])
    throughput["stock"] = stock_check(baseline)
    throughput.update({k: v for k, v in counters.items()})
    # One reqwest::Client per service, so its pooled keep-alive connections to the sidecar
    # are reused: count them once the load is over (idle pooled connections stay open).
    throughput["app_to_sidecar_connections"] = {
        "order-service": tcp_connections_to(SIDECARS["bench-order-service"][0]),
        "inventory-service": tcp_connections_to(SIDECARS["bench-inventory-service"][0]),
    }
    hwm_tp = {
        "order-service": status_kb(osvc.pid, "VmHWM"),
        "inventory-service": status_kb(inv.pid, "VmHWM"),
    }
    bench.say(
        f"  throughput: accepted {throughput['accepted_per_s']}/s, applied "
        f"{throughput['applied_per_s']}/s, stock exact: {throughput['stock']['exact']}, "
        f"state calls per order {throughput['store']['state_calls_per_order']}"
    )

    # 2. Latency: the open-loop probe at a fixed rate.
    count = int(bench.s.probe_rate * bench.s.probe_seconds)
    bench.say(
        f"  latency: {count} orders at {bench.s.probe_rate}/s (open loop), "
        "publish-to-applied from inventory-service's log"
    )
    sends = bench.run / "probe-sends.csv"
    window = CpuWindow(watch).start()
    store_lat = StoreCounter()
    res = subprocess.run(
        [
            str(bench.bin / "bench-probe"),
            "publish",
            "--url",
            f"http://127.0.0.1:{PORT_ORDER_SERVICE}/order",
            "--rate",
            str(bench.s.probe_rate),
            "--count",
            str(count),
            "--items",
            str(bench.s.items),
            "--prefix",
            "lat",
            "--out",
            str(sends),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    cpu_probe = window.stop()
    if res.returncode != 0:
        raise RuntimeError(f"publish probe failed: {res.stderr}")
    probe = json.loads(res.stdout)
    drain("lat-", bench.s.drain_timeout)
    lat = []
    # The same path cut at order-service's `Published` line: the publish (app, sidecar, Redis)
    # on one side; the stream, the batch window, the delivery and the state calls on the other.
    to_published, published_to_applied = [], []
    missing = 0
    for line in sends.read_text().splitlines()[1:]:
        order_id, _item, send_us, status, _ = line.split(",")
        if not status.startswith("2"):
            continue
        if order_id in processed:
            applied_us = processed[order_id][0]
            lat.append(applied_us - int(send_us))
            if order_id in published:
                published_us = published[order_id][0]
                to_published.append(published_us - int(send_us))
                published_to_applied.append(applied_us - published_us)
        else:
            missing += 1
    latency = {
        "store": store_lat.per_order(len(lat)),
        "rate": bench.s.probe_rate,
        "count": count,
        "probe": probe,
        "publish_to_applied_us": summarize(lat),
        "send_to_published_us": summarize(to_published),
        "published_to_applied_us": summarize(published_to_applied),
        "not_applied": missing,
        "cpu": cpu_probe,
        "stock": stock_check(baseline),
    }
    latency["hwm_kb"] = {
        "order-service": status_kb(osvc.pid, "VmHWM"),
        "inventory-service": status_kb(inv.pid, "VmHWM"),
    }
    p = latency["publish_to_applied_us"]
    bench.say(
        f"  latency: publish-to-applied p50 {p['p50']} us, p99 {p['p99']} us "
        f"({p['n']} orders, {missing} not applied)"
    )
    sidecar_hwm = {
        "daprd (order-service)": status_kb(os_d.pid, "VmHWM"),
        "daprd (inventory-service)": status_kb(inv_d.pid, "VmHWM"),
        "redis": status_kb(redis.pid, "VmHWM"),
    }
    PROCS.stop(os_d, inv_d, osvc, inv, redis)
    return {
        "idle_rss_kb": idle,
        "throughput": throughput,
        "throughput_hwm_kb": hwm_tp,
        "latency": latency,
        "runtime_hwm_kb": sidecar_hwm,
    }
