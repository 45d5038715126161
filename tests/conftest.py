"""Shared fixtures: short run settings so loop tests take seconds (sizes: each agent's ``tiny`` preset, ``--tiny``)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Tiny, fast settings for loop tests (simulator steps; cartpole's action repeat is 8).
TINY_RUN = {"eval_every": 1000, "eval_episodes": 2, "seed_steps": 1000, "checkpoint_every": 1000}

MAX_WORKERS = 4
"""Test workers under ``-n auto`` (pyproject's addopts; one test file per worker): the usable cores, at most
this many, since beyond it the longest file (``test_workflow.py``: ~5.5 min of the suite's ~22 CPU-min on the slow
CI host, an ESTIMATE from ``--durations``) bounds the suite's wall time anyway."""


def pytest_xdist_auto_num_workers(config) -> int:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()  # not on macOS
    return max(1, min(MAX_WORKERS, usable or 1))


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path, monkeypatch):
    """Each test tracks into its own store unless it sets MLFLOW_TRACKING_URI itself."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    yield


def tool_env(drop: tuple[str, ...] = ("MLFLOW_TRACKING_URI",), **extra: str) -> dict:
    """The environment for subprocesses: this interpreter's bin directory first on PATH, so ``snakemake``
    rules' ``python`` / ``avem`` resolve to the same environment even when a venv is not activated."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return {**env, **extra}


SNAKEMAKE = [sys.executable, "-m", "snakemake"]
"""Snakemake through this interpreter (not whatever ``snakemake`` is on PATH)."""


class Crash(Exception):
    """A kill of the training loop right after a checkpoint (``crash_after_checkpoint``)."""


def crash_after_checkpoint(monkeypatch, n: int) -> None:
    """The loop raises ``Crash`` right after writing its ``n``-th checkpoint; later runs checkpoint normally."""
    from avem.train import loop

    original, written = loop._checkpoint, []

    def checkpoint_then_crash(*args, **kwargs):
        original(*args, **kwargs)
        written.append(1)
        if len(written) == n:
            monkeypatch.setattr(loop, "_checkpoint", original)
            raise Crash

    monkeypatch.setattr(loop, "_checkpoint", checkpoint_then_crash)
