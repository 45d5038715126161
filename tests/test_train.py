"""The training loop end to end at a tiny size: outputs, tracking, resume, refusals."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from avem.agents import registry
from avem.train import loop
from avem.nets.actor_critic import ActorCriticConfig
from avem.train.config import parse_sets, resolve
from avem.variants import variants
from tests.conftest import TINY_RUN

TASK = "cartpole-swingup-pos"


def _tiny_args(extra: dict | None = None) -> list[str]:
    """``--tiny`` (the agent's tiny preset) and the short run settings, as ``avem train`` arguments."""
    return ["--tiny", *sum((["--set", f"{k}={v}"] for k, v in {**TINY_RUN, **(extra or {})}.items()), [])]


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avem.cli", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("name", [n for n in registry.names() if n not in variants()])
def test_every_registered_agent_trains_and_evaluates(name, tmp_path):
    """Every registered agent but the AVEM variants (tests/test_avem_agents.py trains each through the same loop)."""
    run, cfg = resolve(name, TASK, seed=0, steps=2000, sets=TINY_RUN, tiny=True)
    result = loop.train(run, cfg, tmp_path / "run")
    ev = pd.read_csv(tmp_path / "run" / "eval.csv")
    assert result["status"] == "finished"
    assert sorted(ev["step"].unique()) == [0, 1000, 2000]
    assert ev["return"].between(0, 1000).all() and (ev["length"] == 125).all()


def test_cli_train_writes_everything_and_tracks_in_mlflow(tmp_path):
    out = tmp_path / "run"
    r = _cli("train", "--agent", "sac", "--task", TASK, "--seed", "1", "--steps", "3000", "--out", str(out),
             *_tiny_args())
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stderr  # no progress bar when stderr is not a terminal
    ev = pd.read_csv(out / "eval.csv")
    assert list(ev.columns[:8]) == ["task", "agent", "seed", "obs", "step", "episode", "return", "length"]
    assert len(ev) == 4 * TINY_RUN["eval_episodes"] and (ev["seed"] == 1).all()
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["run"]["action_repeat"] == 8 and cfg["agent"]["actor_critic"]["hidden"] == ActorCriticConfig.tiny["hidden"]
    assert cfg["provenance"]["commit"] and cfg["provenance"]["packages"]["torch"].startswith("2.13")
    assert (out / "checkpoint.pt").exists() and (out / "metrics.csv").exists()
    info = yaml.safe_load((out / "run.json").read_text())
    assert info["status"] == "finished" and info["tracking_uri"] == f"sqlite:///{out.resolve()}/mlflow.db"

    from mlflow.tracking import MlflowClient
    client = MlflowClient(info["tracking_uri"])
    mrun = client.get_run(info["mlflow_run_id"])
    assert mrun.info.status == "FINISHED"
    assert mrun.data.params["run.seed"] == "1" and mrun.data.params["agent.actor_critic.hidden"] == "32"
    assert mrun.data.tags["task"] == TASK and mrun.data.tags["obs"] == "pos" and mrun.data.tags["agent"] == "sac"
    steps = [m.step for m in client.get_metric_history(mrun.info.run_id, "eval/return_mean")]
    assert steps == [0, 1000, 2000, 3000]
    assert client.get_metric_history(mrun.info.run_id, "train/critic_loss")
    assert client.get_metric_history(mrun.info.run_id, "steps_per_second")
    artifacts = {a.path for a in client.list_artifacts(mrun.info.run_id)}
    assert {"config.yaml", "checkpoint"} <= artifacts

    # a finished run started again does nothing
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    r2 = _cli("train", "--agent", "sac", "--task", TASK, "--seed", "1", "--steps", "3000", "--out", str(out),
              *_tiny_args())
    assert r2.returncode == 0 and "already finished" in r2.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before

    # another configuration in the same directory is refused, nothing touched
    r3 = _cli("train", "--agent", "sac", "--task", TASK, "--seed", "2", "--steps", "3000", "--out", str(out),
              *_tiny_args())
    assert r3.returncode == 2 and "another configuration" in r3.stderr and "seed" in r3.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


@pytest.mark.parametrize("args, message", [
    (["--agent", "nope"], "unknown agent 'nope'"),
    (["--agent", "sac", "--steps", "-8"], "steps must be > 0"),
    (["--agent", "sac", "--set", "hidden"], "malformed --set"),
    (["--agent", "sac", "--set", "nokey=3"], "unknown key 'nokey'"),
    (["--agent", "sac", "--task", "cartpole-swingup-xray"], "unknown obs mode"),
])
def test_bad_input_is_refused_before_anything_is_written(args, message, tmp_path):
    out = tmp_path / "never"
    base = {"--task": TASK, "--steps": "2000"}
    full = list(args) + [x for k, v in base.items() if k not in args for x in (k, v)]
    r = _cli("train", *full, "--out", str(out))
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not out.exists()


def test_nonempty_foreign_directory_is_refused(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    r = _cli("train", "--agent", "random", "--task", TASK, "--steps", "1000", "--out", str(tmp_path))
    assert r.returncode == 2 and "not empty" in r.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me" and len(list(tmp_path.iterdir())) == 1


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    args = ["train", "--agent", "sac", "--task", TASK, "--seed", "0", "--steps", "6000",
            *_tiny_args()]
    ref = tmp_path / "ref"
    assert _cli(*args, "--out", str(ref)).returncode == 0

    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "avem.cli", *args, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:  # kill once training is well under way (past the 3rd checkpoint's evals)
        ev = killed / "eval.csv"
        if ev.exists() and len(ev.read_text().splitlines()) > 1 + 4 * TINY_RUN["eval_episodes"]:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert yaml.safe_load((killed / "run.json").read_text())["status"] == "running"
    r = _cli(*args, "--out", str(killed))
    assert r.returncode == 0, r.stderr
    pd.testing.assert_frame_equal(pd.read_csv(killed / "eval.csv"), pd.read_csv(ref / "eval.csv"))

    # MLflow holds every metric step exactly once, with the uninterrupted run's values
    from mlflow.tracking import MlflowClient

    def history(out):
        info = yaml.safe_load((out / "run.json").read_text())
        client = MlflowClient(info["tracking_uri"])
        keys = sorted(client.get_run(info["mlflow_run_id"]).data.metrics)
        return {k: [(m.step, m.value) for m in client.get_metric_history(info["mlflow_run_id"], k)] for k in keys}

    got, want = history(killed), history(ref)
    assert got.keys() == want.keys()
    for key in want:
        steps = [s for s, _ in got[key]]
        assert len(steps) == len(set(steps)), f"{key}: a step was logged twice after the resume"
        if key == "steps_per_second":  # wall-clock: the steps must match, the values cannot
            assert sorted(steps) == sorted(s for s, _ in want[key])
        else:
            assert sorted(got[key]) == sorted(want[key]), key
