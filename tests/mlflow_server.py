"""`mlflow server` for tests, started in its own session and stopped whole.

MLflow 3's server starts uvicorn workers and a job runner with huey consumers; a signal to the
parent alone leaves them running. Started with ``start_new_session=True`` the server leads its
own process group, and ``stop`` signals the group: SIGTERM, then SIGKILL for whatever is left.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid`` (Linux ``/proc``)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state, ppid, pgrp, ...
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def stop(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM to ``proc``'s whole process group; SIGKILL to the group if any member is left after ``grace`` s."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.time() + wait
        while time.time() < deadline:
            proc.poll()  # reap the leader, or it stays a zombie member of the group
            if not group_members(proc.pid):
                return
            time.sleep(0.2)


@contextmanager
def mlflow_server(tmp_path: Path, timeout: float = 120.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """`mlflow server` on loopback (SQLite backend, file artifact root, one worker) -> ``(uri, process)``."""
    port = free_port()
    log_path = tmp_path / "mlflow_server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                                 "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
                                 "--default-artifact-root", str(tmp_path / "artifacts"), "--workers", "1"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(log_path.read_text()[-2000:]) from None
                if time.time() > deadline:
                    raise RuntimeError(f"mlflow server did not start in {timeout:.0f} s") from None
                time.sleep(0.5)
        yield uri, proc
    finally:
        stop(proc)
