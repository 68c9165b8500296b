"""Talking to the processes a run starts: ports, HTTP requests, waiting until something answers,
the clean environment services are started with, and the output of version commands."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

from .config import SERVICE_VARS
from .procs import Proc


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, proc: Proc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited before listening on {port}:\n{proc.tail()}")
        time.sleep(0.02)
    raise RuntimeError(f"{proc.name} did not listen on {port} within {timeout}s:\n{proc.tail()}")


def http(
    method: str, url: str, body: dict | None = None, headers: dict | None = None, timeout: float = 5
) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        return 0, str(e).encode()


def wait_http(
    url: str,
    want: int,
    proc: Proc,
    timeout: float = 60,
    method: str = "GET",
    body: dict | None = None,
    headers: dict | None = None,
) -> float:
    started = time.monotonic()
    last = (0, b"")
    while time.monotonic() - started < timeout:
        last = http(method, url, body, headers)
        if last[0] == want:
            return time.monotonic() - started
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        time.sleep(0.1)
    raise RuntimeError(
        f"{url} did not answer {want} within {timeout}s (last: {last[0]} "
        f"{last[1][:300]!r}):\n{proc.tail()}"
    )


def check_ports_free(ports: list[int]) -> None:
    busy = [p for p in ports if port_open(p)]
    if busy:
        raise RuntimeError(
            f"ports already in use: {busy}; is another benchmark running? "
            "(the benchmark uses 16379 and 17000-17999)"
        )


def service_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not SERVICE_VARS.match(k)}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def command_output(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
        return (out.stdout or out.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
