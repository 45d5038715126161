"""Shared fixtures: tiny run settings so loop tests take seconds."""
from __future__ import annotations

import os

import pytest

# Tiny, fast settings for loop tests (simulator steps; cartpole's action repeat is 8).
TINY_RUN = {"eval_every": 1000, "eval_episodes": 2, "seed_steps": 1000, "checkpoint_every": 1000}
TINY_SAC = {"hidden": 32, "batch_size": 32}


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path, monkeypatch):
    """Each test tracks into its own store unless it sets MLFLOW_TRACKING_URI itself."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    yield
