"""Re-evaluate a trained run with another acting rule: same model, critic, actor and prior.

    python3 tests/benchmarks/eval_checkpoint.py RUN_DIR [--episodes 10] [--set plan_horizon=1 ...]

Loads ``RUN_DIR/config.yaml`` and ``checkpoint.pt``, applies the ``--set`` overrides to the agent
config (e.g. ``planning=false`` acts with the amortised policy, ``plan_horizon=1`` shortens the
roll-outs), and prints the mean and sd of ``--episodes`` deterministic evaluation episodes
(seeds independent of the training evaluations). Writes nothing. Fields missing from an older
config.yaml take the current defaults: pin them with --set to evaluate as that run acted.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from avem.agents import registry
from avem.train.config import from_dict, parse_sets
from avem.train.loop import evaluate, make_envs

OFFLINE_EVALUATION = 10_000  # evaluation index for the episode seeds: beyond the evaluations of any run here


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="agent config override (repeatable)")
    a = p.parse_args()
    data = yaml.safe_load((a.run / "config.yaml").read_text())
    sets = parse_sets(a.sets)
    fields = {f.name for f in dataclasses.fields(registry.get(data["run"]["agent"]).config_cls)}
    unknown = sorted(set(sets) - fields)
    if unknown:
        p.error(f"unknown agent field(s) {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    data["agent"].update(sets)
    data["run"]["eval_episodes"] = a.episodes
    run, cfg = from_dict(data)
    torch.set_num_threads(run.threads)
    _, env = make_envs(run, cfg)
    agent = registry.build(run.agent, env.observation_space, env.action_space, cfg, run.seed)
    agent.load_state_dict(torch.load(a.run / "checkpoint.pt", weights_only=False)["agent"])
    t0 = time.perf_counter()
    returns = np.array([row["return"] for row in evaluate(agent, env, run, OFFLINE_EVALUATION)])
    print(f"{a.run} {' '.join(a.sets) or '(as trained)'}: return {returns.mean():.1f} +- {returns.std():.1f} "
          f"over {a.episodes} episodes ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
