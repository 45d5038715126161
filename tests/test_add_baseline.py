"""README "Adding a baseline", proven: one class + one registry entry, nothing else.

A throwaway agent is defined and registered INSIDE this test; it is then named on the command
line (as a study config names it), trained and evaluated by the unchanged loop, collected by the
unchanged analysis, and drawn in the unchanged figures next to a built-in agent.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import yaml

from avem import cli
from avem.agents import registry
from avem.agents.base import Agent, obs_dim
from avem.train import rundir
from avem.train.replay import ReplayBuffer
from tests.conftest import TINY_RUN

NAME = "throwaway-linear"
TASK = "cartpole-swingup-pos"


# ---- step 1: one module: a config dataclass and a class implementing the agent interface ----------
@dataclass(frozen=True)
class LinearConfig:
    """A random linear policy ``a = tanh(gain * W x)`` that keeps a running mean of the rewards."""

    gain: float = 1.0
    """Scale of the pre-squash action."""
    noise: float = 0.1
    """Std of the exploration noise added in training episodes."""

    def validate(self) -> None:
        if self.noise < 0:
            raise ValueError(f"noise must be >= 0, got {self.noise}")


class LinearAgent:
    """``obs: (obs_dim,) -> action: (act_dim,)``; ``update`` reads the newest row of the buffer."""

    def __init__(self, obs_space, act_space, cfg: LinearConfig, seed: int):
        self.cfg, self.rng = cfg, np.random.default_rng(seed)
        self.w = self.rng.normal(size=(int(act_space.shape[0]), obs_dim(obs_space))).astype(np.float32)
        self.mean_reward, self.n = 0.0, 0

    def initial_state(self):
        return None

    def act(self, obs, state, explore: bool):
        u = self.cfg.gain * self.w @ np.asarray(obs, np.float32)
        if explore:
            u = u + self.cfg.noise * self.rng.normal(size=u.shape)
        return np.tanh(u).astype(np.float32), state, {}

    def update(self, buffer: ReplayBuffer) -> dict[str, float]:
        self.n += 1
        self.mean_reward += (float(buffer.data["reward"][buffer.size - 1]) - self.mean_reward) / self.n
        return {"mean_reward": self.mean_reward}

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "w": self.w.copy(), "mean_reward": self.mean_reward, "n": self.n}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.w, self.mean_reward, self.n = state["w"], state["mean_reward"], state["n"]


@pytest.fixture
def throwaway():
    # ---- step 2: one entry: registry name, class, config, description, default hyperparameters ----
    registry.register(NAME, LinearAgent, LinearConfig, "Throwaway test agent: random linear policy", gain=2.0)
    yield NAME
    registry.unregister(NAME)


def _train(agent: str, seed: int, runs, extra: tuple[str, ...] = ()) -> int:
    sets = {**TINY_RUN, "seed_steps": 0}
    args = ["train", "--agent", agent, "--task", TASK, "--seed", str(seed), "--steps", "2000",
            "--out", str(rundir.run_path(runs, TASK, agent, seed))]
    return cli.main(args + sum((["--set", f"{k}={v}"] for k, v in sets.items()), []) + list(extra))


@pytest.mark.slow
def test_a_registered_agent_trains_evaluates_and_appears_in_the_figures(throwaway, tmp_path, capsys):
    assert throwaway in registry.names()
    assert cli.main(["agents"]) == 0 and throwaway in capsys.readouterr().out
    assert cli.main(["config", "--agent", throwaway, "--task", TASK, "--set", "noise=0.2"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["agent"] == {"gain": 2.0, "noise": 0.2}  # the entry's default, then the override
    assert cli.main(["config", "--agent", throwaway, "--task", TASK, "--set", "noise=-1"]) == 2  # validate()

    runs = tmp_path / "runs"
    for seed in (0, 1):
        assert _train(throwaway, seed, runs) == 0
        assert _train("random", seed, runs) == 0
    out = runs / TASK / throwaway / "seed0"
    ev = pd.read_csv(out / "eval.csv")
    assert (ev["agent"] == throwaway).all() and sorted(ev["step"].unique()) == [0, 1000, 2000]
    assert "train/mean_reward" in pd.read_csv(out / "metrics.csv").columns

    from analysis import tidy
    from analysis.figures import make_all
    tables = tidy.collect(runs)
    assert set(tables["runs"]["agent"]) == {throwaway, "random"}
    assert (tables["runs"]["status"] == tidy.FINISHED).all()
    tidy.write(tables, tmp_path / "tables")
    manifest = make_all(tmp_path / "tables", tmp_path / "figures", [1000, 2000], None, seed=0, reps=50)
    assert any(m["file"] == "curves.png" for m in manifest)
    curves = pd.read_csv(tmp_path / "tables" / "curves.csv")
    assert set(curves["agent"]) == {throwaway, "random"}
    assert json.loads((tmp_path / "figures" / "manifest.json").read_text()) == manifest


def test_the_agent_interface_is_what_the_loop_checks(throwaway):
    import gymnasium as gym
    spec = registry.get(throwaway)
    agent = registry.build(throwaway, gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Box(-1, 1, (1,), np.float32),
                           spec.make_config(), 0)
    assert isinstance(agent, Agent)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(throwaway, LinearAgent, LinearConfig, "twice")
    with pytest.raises(ValueError, match="unknown config fields"):
        registry.register("throwaway-bad", LinearAgent, LinearConfig, "typo", gian=1.0)
