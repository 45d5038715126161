"""What produced a run: git commit, package versions, interpreter, host."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

_PACKAGES = ("avem", "torch", "numpy", "mujoco", "dm-control", "gymnasium", "mlflow",
             "stable-baselines3", "pandas", "scipy")


def git_commit(path: Path | None = None) -> dict:
    """``{"commit": sha or "unknown", "dirty": bool}`` of the repository holding ``path``."""
    cwd = Path(path or Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                    capture_output=True, text=True, timeout=10).stdout.strip())
        return {"commit": sha, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": False}


def package_versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def provenance() -> dict:
    """Everything recorded beside a run's numbers."""
    return {**git_commit(), "python": sys.version.split()[0], "platform": platform.platform(),
            "host": socket.gethostname(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "packages": package_versions()}
