"""Linear probes of the latent state: the ridge maths, the state groups, and ``avem probe`` on a tiny SAC run."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from avem import probe
from avem.envs import make_env

TASK = "cartpole-swingup-distract"
TINY = ["--tiny", "--set", "eval_every=1000", "eval_episodes=1", "seed_steps=1000"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avem.cli", *args], capture_output=True, text=True, timeout=600)


def test_ridge_r2_is_one_for_a_linear_target_and_about_zero_for_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6))
    y = np.stack([x @ rng.normal(size=6), 3 * x[:, 0] - x[:, 5] + 2.0], axis=1)
    r2, dims = probe.ridge_r2(x[:300], y[:300], x[300:], y[300:], alpha=1e-6)
    assert dims == 2 and r2 == pytest.approx(1.0, abs=1e-6)
    noise = rng.normal(size=(400, 3))
    r2, _ = probe.ridge_r2(x[:300], noise[:300], x[300:], noise[300:])
    assert -0.2 < r2 < 0.1
    const = np.ones((400, 1))  # undefined R^2: dropped, reported as no dims
    assert probe.ridge_r2(x[:300], const[:300], x[300:], const[300:])[1] == 0


def test_state_groups_match_the_env_layout():
    env = make_env(TASK, 0, distract_dims=4)
    g = probe.state_groups(env)
    # cartpole: sorted keys position (3: cart x, cos, sin), velocity (2); then 4 distractors
    assert g["position"].tolist() == [0, 1, 2] and g["velocity"].tolist() == [3, 4]
    assert g["distractor"].tolist() == [5, 6, 7, 8]
    _, info = env.reset(seed=1)
    assert info["state"].shape == (9,)
    pos_obs = make_env("cartpole-swingup-pos", 0).reset(seed=1)[0]
    full_obs = make_env("cartpole-swingup-full", 0).reset(seed=1)[0]
    assert np.array_equal(pos_obs, full_obs[g["position"]])  # pos mode keeps exactly the position group
    assert np.array_equal(full_obs, info["state"][:5])
    assert probe.state_groups(make_env("cartpole-swingup-full", 0))["distractor"] is None


def test_latent_hook_contract():
    class Hooked:
        def latent(self, state):
            return np.array([state["h"], 2.0])

    assert probe.latent_features(Hooked(), {"h": 1.0}).tolist() == [1.0, 2.0]
    assert probe.latent_features(object(), np.ones((3, 2))).shape == (6,)  # fallback: array state, flattened
    assert probe.latent_features(object(), None) is None  # random agent: not applicable


@pytest.mark.slow
def test_probe_cli_on_a_tiny_sac_run(tmp_path):
    run = tmp_path / "run"
    r = _cli("train", "--agent", "sac", "--task", TASK, "--seed", "0", "--steps", "2000", "--out", str(run),
             *TINY)
    assert r.returncode == 0, r.stderr
    r = _cli("probe", "--run", str(run), "--out", str(run / "probe.csv"), "--episodes", "5")
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(run / "probe.csv")
    assert list(df.columns[:7]) == ["task", "agent", "seed", "target_group", "r2", "n_samples", "status"]
    assert list(df["target_group"]) == ["velocity", "distractor", "position"]
    assert (df["status"] == "ok").all() and (df["n_samples"] == 5 * 125).all() and (df["n_test"] == 125).all()
    r2 = df.set_index("target_group")["r2"]
    # SAC's latent is its frame stack: the positions and distractors are in it verbatim
    assert r2["position"] > 0.95 and r2["distractor"] > 0.95
    assert r2["velocity"] > 0.5  # finite differences of positions: linearly decodable in part

    bad = _cli("probe", "--run", str(tmp_path / "nothing"))
    assert bad.returncode == 2 and "not found" in bad.stderr
    ckpt = run / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # a damaged final checkpoint: refused, never the previous one
    bad = _cli("probe", "--run", str(run), "--out", str(tmp_path / "p.csv"))
    assert bad.returncode == 2 and str(ckpt) in bad.stderr and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert not (tmp_path / "p.csv").exists()


def test_random_agent_is_not_applicable(tmp_path):
    import torch
    import yaml

    from avem.agents import registry
    from avem.train.config import resolve, to_dict
    from avem.train.loop import make_envs
    run, cfg = resolve("random", TASK, seed=0, steps=1000)
    env, _ = make_envs(run, cfg)
    agent = registry.build("random", env.observation_space, env.action_space, cfg, 0)
    d = tmp_path / "run"
    d.mkdir()
    (d / "config.yaml").write_text(yaml.safe_dump(to_dict(run, cfg)))
    torch.save({"agent": agent.state_dict()}, d / "checkpoint.pt")  # the part of a checkpoint the probe reads
    rows = probe.probe_run(d, episodes=2)
    assert [r["status"] for r in rows] == ["not_applicable"] * 3


@pytest.mark.parametrize("name, width", [("avem-gen-ml-learned-plan", 32 + 8), ("avem-disc-uniform", 32)])
def test_avem_agents_expose_their_belief_to_the_probe(name, width):
    from avem.agents import registry
    env = make_env("cartpole-swingup-distract", 0)
    spec = registry.get(name)
    cfg = spec.make_config(spec.tiny())
    agent = registry.build(name, env.observation_space, env.action_space, cfg, 0)
    obs, _ = env.reset(seed=0)
    _, state, _ = agent.act(obs, agent.initial_state(), explore=False)
    feat = probe.latent_features(agent, state)
    assert feat.shape == (width,) and np.isfinite(feat).all()
