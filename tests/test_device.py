"""The ``device`` run setting: refusals before output, ``auto``, cross-device checkpoints, a CUDA run.

The CUDA tests run only where ``torch.cuda.is_available()``; elsewhere they are skipped. CPU
resumes through ``map_location="cpu"`` are covered by the resume tests of ``test_train.py``,
``test_baselines.py`` and ``test_avem_agents.py``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

from avem import study as avem_study
from avem.agents import registry
from avem.train import loop, rundir
from avem.train.config import resolve, to_dict
from tests.conftest import TINY_RUN

TASK = "cartpole-swingup-pos"
CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device (torch.cuda.is_available() is False)")


def test_device_defaults_to_cpu_and_bad_values_are_refused():
    run, _ = resolve("sac", TASK)
    assert run.device == "cpu" and run.resolved_device() == "cpu"
    with pytest.raises(ValueError, match="device must be one of cpu, cuda, auto, got 'gpu'"):
        resolve("sac", TASK, sets={"device": "gpu"})


def test_auto_resolves_to_cuda_only_where_there_is_one():
    run, _ = resolve("sac", TASK, sets={"device": "auto"})
    assert run.resolved_device() == ("cuda" if CUDA else "cpu")


def test_cuda_without_a_device_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    run, cfg = resolve("random", TASK, steps=1000, sets={**TINY_RUN, "device": "cuda"})
    with pytest.raises(ValueError, match="device=cuda but torch finds no CUDA device"):
        loop.train(run, cfg, tmp_path / "run")
    assert list(tmp_path.iterdir()) == []  # no run directory, no MLflow store


@pytest.mark.skipif(CUDA, reason="the command line is checked on a machine without CUDA")
def test_cli_refuses_cuda_in_one_line_and_writes_nothing(tmp_path):
    out, store = tmp_path / "run", tmp_path / "mlflow.db"
    r = subprocess.run([sys.executable, "-m", "avem.cli", "train", "--agent", "random", "--task", TASK, "--steps",
                        "1000", "--out", str(out), "--set", "device=cuda"], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no CUDA device" in r.stderr, r.stderr
    assert not out.exists() and not store.exists()


def test_an_agent_without_a_device_argument_runs_on_the_cpu_only(monkeypatch):
    class NoDevice:
        def __init__(self, obs_space, act_space, cfg, seed):
            pass

    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Cfg:
        pass

    registry.register("no-device-test", NoDevice, Cfg, "throwaway")
    try:
        space = gym.spaces.Box(-1, 1, (1,), np.float32)
        assert isinstance(registry.build("no-device-test", space, space, Cfg(), 0), NoDevice)
        with pytest.raises(ValueError, match="cannot run on cuda"):
            registry.build("no-device-test", space, space, Cfg(), 0, device="cuda")
        run, _ = resolve("no-device-test", TASK, sets={"device": "auto"})
        assert run.resolved_device() == "cpu"  # auto falls back to the CPU, with or without CUDA
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        assert run.resolved_device() == "cpu"
        gpu_jobs = SimpleNamespace(resources_of=lambda agent: {"gres": "gpu:1"})  # nor may a study ask a GPU for it
        said = avem_study.Study._gpu_errors(gpu_jobs, "no-device-test", run, set())
        assert len(said) == 1 and "agent 'no-device-test' cannot run on CUDA" in said[0], said
        cuda, _ = resolve("no-device-test", TASK, sets={"device": "cuda"})
        with pytest.raises(ValueError, match="its constructor takes no device argument"):
            cuda.resolved_device()
    finally:
        registry.unregister("no-device-test")


def test_the_device_is_not_part_of_a_runs_identity(tmp_path):
    run, cfg = resolve("random", TASK, steps=1000, sets=TINY_RUN)
    loop.train(run, cfg, tmp_path / "run")
    assert rundir.read_run_json(tmp_path / "run")["devices"] == ["cpu"]
    moved, _ = resolve("random", TASK, steps=1000, sets={**TINY_RUN, "device": "auto"})
    assert rundir.check_existing(tmp_path / "run", to_dict(moved, cfg)) == "finished"


def test_a_resume_on_another_device_is_recorded_and_said(tmp_path, capsys):
    (tmp_path / rundir.RUN_JSON).write_text(json.dumps({"devices": ["cuda"]}))
    assert loop._devices(tmp_path, "cpu") == ["cuda", "cpu"]
    assert "resuming on cpu a run that ran on cuda" in capsys.readouterr().err
    assert loop._devices(tmp_path, "cuda") == ["cuda"]
    assert loop._devices(tmp_path / "new", "cpu") == ["cpu"]


def _agent(name: str, device: str = "cpu"):
    env_space = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
    act_space = gym.spaces.Box(-1, 1, (1,), np.float32)
    cfg = registry.get(name).make_config(registry.get(name).tiny())
    return registry.build(name, env_space, act_space, cfg, 0, device=device)


def test_a_generator_from_another_device_is_reseeded_from_its_saved_state():
    saved = _agent("sac").state_dict()
    saved["generators"]["gen"] = torch.Generator().manual_seed(7).get_state()
    foreign = {**saved, "device": "cuda"}  # as a CUDA run's checkpoint, loaded with map_location="cpu"
    a, b = _agent("sac"), _agent("sac")
    a.load_state_dict(foreign)
    b.load_state_dict(foreign)
    assert torch.equal(a.gen.get_state(), b.gen.get_state())  # deterministic given the checkpoint
    assert not torch.equal(a.gen.get_state(), torch.Generator().manual_seed(7).get_state())
    c = _agent("sac")
    c.load_state_dict(saved)  # same device: restored exactly
    assert torch.equal(c.gen.get_state(), torch.Generator().manual_seed(7).get_state())


@needs_cuda
@pytest.mark.parametrize("name", registry.names())
def test_every_agent_trains_a_tiny_run_on_cuda(name, tmp_path):
    run, cfg = resolve(name, TASK, seed=0, steps=2000, sets={**TINY_RUN, "device": "cuda"}, tiny=True)
    result = loop.train(run, cfg, tmp_path / "run")
    ev = pd.read_csv(tmp_path / "run" / "eval.csv")
    assert result["status"] == "finished" and result["devices"] == ["cuda"]
    assert sorted(ev["step"].unique()) == [0, 1000, 2000] and ev["return"].between(0, 1000).all()
    ckpt = torch.load(tmp_path / "run" / rundir.CHECKPOINT, map_location="cpu", weights_only=False)
    env, _ = loop.make_envs(run, cfg)
    cpu_agent = registry.build(name, env.observation_space, env.action_space, cfg, 0, device="cpu")
    cpu_agent.load_state_dict(ckpt["agent"])  # a CUDA checkpoint loads on the CPU
    obs, _ = env.reset(seed=0)
    action, _, _ = cpu_agent.act(obs, cpu_agent.initial_state(), explore=True)
    assert action.shape == env.action_space.shape and np.isfinite(action).all()


def test_uniform_prior_draws_on_the_planners_device_without_a_generator():
    """Without a generator the uniform prior's draws land on the device it was built for (the state's)."""
    from avem.planning.priors import UniformActionPrior

    assert UniformActionPrior(2, device="meta").sample(3, None).device.type == "meta"
    gen = torch.Generator().manual_seed(0)
    assert UniformActionPrior(2, device="meta").sample(3, gen).device.type == "cpu"  # the generator's device wins
