"""The processes a run starts: each in its own session, logged to a file, and killed with its
process group on exit, Ctrl-C or error (PR_SET_PDEATHSIG if this process dies first)."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path


def _child_setup() -> None:
    """In the child, before exec: die with the parent (PR_SET_PDEATHSIG = 1)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)
    except Exception:  # noqa: BLE001, S110 - best effort; the process group kill still applies
        pass


class Proc:
    def __init__(self, name: str, popen: subprocess.Popen, log: Path | None):
        self.name = name
        self.popen = popen
        self.pid = popen.pid
        self.log = log

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 20) -> str:
        if not self.log or not self.log.exists():
            return ""
        with open(self.log, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])


class Procs:
    """Every process this run started, each in its own session (process group)."""

    def __init__(self):
        self.procs: list[Proc] = []

    def start(
        self,
        name: str,
        argv: list[str],
        env: dict | None = None,
        log: Path | None = None,
        stdout_null: bool = False,
        mode: str = "ab",
    ) -> Proc:
        """Starts `argv` in its own session, output appended to `log` (or replacing it with
        mode="wb"), and tracks it so that it is stopped on exit."""
        if stdout_null:
            out = subprocess.DEVNULL
        elif log is not None:
            out = open(log, mode)  # noqa: SIM115 - handed to the child, closed below
        else:
            out = subprocess.DEVNULL
        try:
            popen = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_child_setup,  # noqa: PLW1509 - only prctl, safe before exec
            )
        finally:
            if out not in (subprocess.DEVNULL,):
                out.close()
        proc = Proc(name, popen, None if stdout_null else log)
        self.procs.append(proc)
        return proc

    def stop(self, *procs: Proc, grace: float = 5.0) -> None:
        for p in procs:
            if p.alive():
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace
        for p in procs:
            try:
                p.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)  # the group, in case it left children
            except (ProcessLookupError, PermissionError):
                pass
            try:
                p.popen.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
            if p in self.procs:
                self.procs.remove(p)

    def stop_all(self) -> None:
        self.stop(*list(self.procs))


PROCS = Procs()


def on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")
