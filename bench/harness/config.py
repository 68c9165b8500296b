"""Where the benchmark runs: its paths, the ports and app ids it owns, the log lines it parses,
and the settings of a full or a smoke run."""

from __future__ import annotations

import os
import re
from pathlib import Path

# bench/, the folder above this package.
HERE = Path(__file__).resolve().parents[1]
ROOT = HERE.parent

LUA = HERE / "wrk" / "bench.lua"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Ports: 16379 for Redis, 17000-17999 for apps and sidecars.
REDIS_PORT = 16379
PORT_AXUM = 17000
PORT_OP_ALONE = 17001
STARTUP_PORTS = {
    "bench-axum": 17010,
    "order-processor": 17011,
    "checkout": 17012,
    "order-service": 17013,
    "inventory-service": 17014,
}
PORT_OP = 17101
PORT_CHECKOUT = 17102
PORT_ORDER_SERVICE = 17201
PORT_INVENTORY = 17202
# daprd: http, grpc, internal grpc, metrics.
SIDECARS = {
    "bench-order-processor": (17110, 17111, 17112, 17113),
    "bench-checkout": (17120, 17121, 17122, 17123),
    "bench-order-service": (17210, 17211, 17212, 17213),
    "bench-inventory-service": (17220, 17221, 17222, 17223),
}
ZIPKIN_PORT = 17900  # the export stage's trace backend
UNUSED_PORT = 17999  # checkout's sidecar port in the start-up stage: nothing listens there

# Environment variables the services read; never inherited from the caller's shell.
SERVICE_VARS = re.compile(
    r"^(DAPR_|APP_|RUST_LOG$|LOG_FORMAT$|PUBSUB_NAME$|STATE_STORE_NAME$|CHECKOUT_)"
)

PROCESSED = re.compile(
    r"^(\S+)\s+INFO\s+Processed OrderPlaced event\. orderId=([^,\s]+), itemId=([^,\s]+), "
    r"ordered=(\d+), remaining=(\d+)"
)
PUBLISHED = re.compile(
    r"^(\S+)\s+INFO\s+Published OrderPlaced event\. orderId=([^,\s]+), itemId=([^,\s]+), "
    r"quantity=(\d+)"
)
DUPLICATE = re.compile(r"Skipped duplicate OrderPlaced event\. orderId=([^,\s]+)")
RETRIED = re.compile(r"OrderPlaced event not processed")
REJECTED = re.compile(r"Rejected OrderPlaced event")


class Settings:
    """Durations and sizes of one mode."""

    def __init__(self, smoke: bool):
        self.mode = "smoke" if smoke else "full"
        self.duration = 1 if smoke else 8  # seconds per wrk point
        self.warmup = 0 if smoke else 2  # seconds of wrk before each sweep
        self.conns = [1, 8, 32, 64]
        self.single_point_conns = 32  # for the extra log variants
        self.startup_runs = 3 if smoke else 20
        self.settle_ms = 200 if smoke else 1000
        self.checkout_orders = 100 if smoke else 3000
        self.e2e_conns = 4 if smoke else 16
        self.e2e_duration = 2 if smoke else 15
        self.drain_timeout = 30 if smoke else 120
        self.items = 8
        self.stock = 1_000_000
        self.probe_rate = 200
        self.probe_seconds = 1.5 if smoke else 20

    def as_dict(self) -> dict:
        return dict(self.__dict__)
