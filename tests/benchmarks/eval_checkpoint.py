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

from avem.train.config import parse_sets
from avem.train.loop import evaluate, load_trained

OFFLINE_EVALUATION = 10_000  # evaluation index for the episode seeds: beyond the evaluations of any run here


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--set", dest="sets", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="agent config overrides: --set a=1 b=2, or --set repeated")
    a = p.parse_args()
    try:
        run, _, agent, env = load_trained(a.run, parse_sets(a.sets))
    except (FileNotFoundError, ValueError) as e:
        p.error(str(e))
    run = dataclasses.replace(run, eval_episodes=a.episodes)
    t0 = time.perf_counter()
    returns = np.array([row["return"] for row in evaluate(agent, env, run, OFFLINE_EVALUATION)])
    print(f"{a.run} {' '.join(a.sets) or '(as trained)'}: return {returns.mean():.1f} +- {returns.std():.1f} "
          f"over {a.episodes} episodes ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
