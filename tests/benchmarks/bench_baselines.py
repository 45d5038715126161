"""Baselines on cartpole-swingup at 100k simulator steps, side by side with published numbers.

Runs ``sac-state`` (ORACLE: full state), ``sac`` and ``sb3-sac`` (frame stack 3) on
``cartpole-swingup-{pos,full}`` and ``planet`` on ``cartpole-swingup-pos``, all through the same
loop and evaluation protocol (deterministic episodes on a separately seeded environment: 10 every
10k steps; planet 5 every 20k steps, since each evaluation episode costs it 125 CEM decisions),
then prints:

1. planner / learner throughput (CEM decisions/s at the paper's and at our CPU settings, Dreamer
   seconds per update at the paper's sizes) on one thread;
2. final returns (mean +- sd over seeds) next to the published numbers at 100k steps
   (CURL paper, Laskin et al. 2020, Table 1: SAC-state 835 +- 22 on full state; PlaNet 297 +- 39
   and Dreamer 326 +- 27 on PIXELS: our model-based agents see vectors, so those are reference
   marks, not like-for-like);
3. ``sac`` vs ``sb3-sac`` on the same task: the difference of the final returns and of the
   learning curves' means (all evaluations), with Welch's t-test p-value.

Usage: ``python3 tests/benchmarks/bench_baselines.py [--steps 100000] [--seeds 0 1 2]
[--pos-seeds 0 1 2 3 4 5] [--planet-seeds 0] [--planet-obs pos] [--workers 2] [--out /tmp/bench_baselines]``.
Runs already finished in ``--out`` are not rerun (the loop resumes / skips them).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dump, header, run_jobs  # noqa: E402

from avem.train import rundir  # noqa: E402

PUBLISHED = {  # agent -> (mean, sd, observation) at 100k steps, cartpole-swingup, CURL Table 1
    "sac-state": (835, 22, "full state"),
    "planet": (297, 39, "pixels"),
    "dreamer": (326, 27, "pixels"),
}
SOURCE = "Laskin et al. 2020 (CURL), Table 1, 100k steps"


def throughput() -> list[str]:
    """CEM decisions/s and Dreamer s/update on untrained networks (cartpole-pos sizes: obs 3, act 1)."""
    import gymnasium as gym
    from avem.agents.dreamer import DreamerAgent, DreamerConfig
    from avem.agents.planet import PlaNetConfig
    from avem.models.rssm import RSSM
    from avem.planning.cem import cem_plan
    from avem.train.replay import ReplayBuffer

    torch.set_num_threads(1)
    cfg = PlaNetConfig().planner
    model, gen = RSSM(3, 1, PlaNetConfig().rssm), torch.Generator().manual_seed(0)
    state = model.initial(1)
    lines = []
    for label, j, i, k in (("paper", 1000, 10, 100), ("default", cfg.plan_candidates, cfg.plan_iterations, cfg.plan_top_k)):
        n, t0 = 3, time.perf_counter()
        for _ in range(n):
            cem_plan(model, state, 1, cfg.plan_horizon, j, i, k, cfg.plan_discount, gen)
        rate = n / (time.perf_counter() - t0)
        lines.append(f"CEM {label:7s} H={cfg.plan_horizon} J={j} I={i} K={k}: {rate:6.2f} decisions/s")
    buf, rng = ReplayBuffer((3,), 1, 1000), np.random.default_rng(0)
    for _ in range(2):
        buf.add(rng.normal(size=3), None, 0.0, True, False)
        for _ in range(125):
            buf.add(rng.normal(size=3), rng.uniform(-1, 1, 1), rng.uniform(), False, False)
    box = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
    agent = DreamerAgent(box, gym.spaces.Box(-1, 1, (1,), np.float32), DreamerConfig(), 0)
    t0 = time.perf_counter()
    agent.update(buf)
    lines.append(f"Dreamer update at paper sizes (50x50 windows, 2500 x 15 imagined steps): "
                 f"{time.perf_counter() - t0:.2f} s/update")
    return lines


def curve_mean(out: Path, job: dict) -> float:
    """Mean evaluation return over every evaluation of a run (the learning curve's mean)."""
    path = rundir.run_path(out, job["task"], job["agent"], job["seed"]) / rundir.EVAL
    return float(pd.read_csv(path)["return"].mean()) if path.exists() else float("nan")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--pos-seeds", type=int, nargs="+", default=None,
                   help="seeds of sac and sb3-sac on cartpole-swingup-pos (default: --seeds); more seeds, more power")
    p.add_argument("--planet-seeds", type=int, nargs="+", default=[0])
    p.add_argument("--planet-obs", nargs="+", default=["pos"])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("/tmp/bench_baselines"))
    p.add_argument("--set", dest="sets", action="append", default=[], help="extra run-level --set for every job")
    p.add_argument("--planet-set", dest="planet_sets", action="append",
                   default=["eval_every=20000", "eval_episodes=5"],
                   help="extra --set for planet (default: fewer evaluations: each one is 125 CEM decisions per episode)")
    a = p.parse_args()
    print(header("bench_baselines"), flush=True)
    for line in throughput():
        print(line, flush=True)

    sets = ["eval_every=10000", *a.sets]
    jobs = [{"agent": "planet", "task": f"cartpole-swingup-{obs}", "seed": s, "steps": a.steps,
             "sets": sets + a.planet_sets}
            for obs in a.planet_obs for s in a.planet_seeds]  # longest first
    jobs += [{"agent": "sac-state", "task": "cartpole-swingup-pos", "seed": s, "steps": a.steps, "sets": sets}
             for s in a.seeds]
    seeds = {"full": a.seeds, "pos": a.pos_seeds or a.seeds}
    jobs += [{"agent": agent, "task": f"cartpole-swingup-{obs}", "seed": s, "steps": a.steps, "sets": sets}
             for obs in ("full", "pos") for agent in ("sac", "sb3-sac") for s in seeds[obs]]
    df = run_jobs(jobs, a.out, workers=a.workers)
    df["curve_mean"] = [curve_mean(a.out, j) for j in jobs]
    df["obs"] = df["task"].str.rsplit("-", n=1).str[-1]
    df.loc[df["agent"] == "sac-state", "obs"] = "full (oracle)"
    print(header("bench_baselines"))
    print(df[["agent", "task", "seed", "final_return", "curve_mean", "wall_s", "error"]].to_string(index=False))

    print(f"\nFinal return at {a.steps} simulator steps, cartpole-swingup (mean +- sd over seeds)")
    rows = []
    for (agent, obs), g in df.groupby(["agent", "obs"], sort=False):
        pub = PUBLISHED.get(agent)
        rows.append({"agent": agent, "observation": obs, "seeds": len(g),
                     "ours": f"{g['final_return'].mean():.0f} +- {g['final_return'].std(ddof=1) if len(g) > 1 else 0:.0f}",
                     "published": f"{pub[0]} +- {pub[1]} ({pub[2]})" if pub else "-",
                     # runs reused from an earlier call have no wall-clock here (NaN): "-" if none was timed
                     "wall_min": "-" if g["wall_s"].isna().all() else f"{g['wall_s'].mean() / 60:.0f}"})
    print(pd.DataFrame(rows).to_string(index=False))
    print(f"published: {SOURCE}; sac / sb3-sac on full state compare with SAC-state.")

    print("\nsac vs sb3-sac on the same task (Welch's t-test over seeds)")
    for obs in ("full", "pos"):
        for col in ("final_return", "curve_mean"):
            x = df[(df.agent == "sac") & (df.obs == obs)][col].to_numpy()
            y = df[(df.agent == "sb3-sac") & (df.obs == obs)][col].to_numpy()
            if len(x) > 1 and len(y) > 1:
                t = scipy.stats.ttest_ind(x, y, equal_var=False)
                print(f"  {obs:4s} {col:12s} sac {x.mean():6.1f} +- {x.std(ddof=1):5.1f}  "
                      f"sb3-sac {y.mean():6.1f} +- {y.std(ddof=1):5.1f}  diff {x.mean() - y.mean():+6.1f}  p={t.pvalue:.2f}")
    dump(df, a.out / "summary.json")


if __name__ == "__main__":
    main()
