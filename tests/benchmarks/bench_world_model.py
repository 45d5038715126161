"""The shared world model under several likelihood / KL settings: what it predicts and what it earns.

Trains one generative agent (default ``avem-gen-elbo-uniform-noplan``) through the real loop for
each named setting and seed, then prints per setting, mean +- sd over seeds:
- the final evaluation return (mean over the evaluation episodes at the last step);
- ``kl_z`` (KL(q(z)||p(z)) per step) and ``kl_grad_frac`` (fraction of the KL term with gradient);
- the open-loop errors of the prior on held-out evaluation episodes (``avem.models.diagnostics``)
  at 1 / 5 / 15 agent steps, and the 5-step error's ratio to "the last observation repeats";
all averaged over the training episodes in the last quarter of the run.

Usage: ``python3 tests/benchmarks/bench_world_model.py [--steps 20000] [--seeds 0 1 2]
[--agent avem-gen-elbo-uniform-noplan] [--task cartpole-swingup-pos] [--jobs 2] [--out /tmp/bench_wm]
[--settings NAME=k=v,k=v ...]``. Finished runs are reused when started again.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dump, header, run_jobs  # noqa: E402

from avem.train import rundir  # noqa: E402

SETTINGS = {
    "flat": ["free_nats=1.0", "obs_scale=fixed", "obs_std=1.0"],
    "sharp": ["free_nats=0", "obs_scale=fixed", "obs_std=0.1"],
    "running": ["free_nats=0", "obs_scale=running", "obs_std=0.1"],
}
"""flat: the settings before the world-model fix; sharp: a fixed std of 0.1; running: 0.1 x each dimension's running std."""
COLUMNS = {"kl_z": "train/kl_z", "kl_grad_frac": "train/kl_grad_frac", "h1": "train/openloop_obs_err_h1",
           "h5": "train/openloop_obs_err_h5", "h15": "train/openloop_obs_err_h15",
           "h5_base": "train/openloop_obs_err_h5_baseline", "rew_h5": "train/openloop_reward_err_h5",
           "rew_h5_base": "train/openloop_reward_err_h5_baseline"}


def summarise(run_dir: Path) -> dict:
    """Final return and the last quarter's diagnostics of one finished run."""
    ev = pd.read_csv(run_dir / "eval.csv")
    met = pd.read_csv(run_dir / "metrics.csv")
    last = met[met["step"] >= 0.75 * met["step"].max()]
    out = {"final_return": ev[ev["step"] == ev["step"].max()]["return"].mean()}
    out.update({k: last[c].mean() for k, c in COLUMNS.items() if c in last})
    out["h5_ratio"] = out["h5"] / out["h5_base"]
    out["rew_h5_ratio"] = out["rew_h5"] / out["rew_h5_base"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--agent", default="avem-gen-elbo-uniform-noplan")
    p.add_argument("--task", default="cartpole-swingup-pos")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("/tmp/bench_wm"))
    p.add_argument("--eval-every", type=int, default=5000)
    p.add_argument("--settings", nargs="*", default=None, help="NAME=k=v,k=v (default: the three built in)")
    args = p.parse_args()
    settings = SETTINGS if not args.settings else {
        s.split("=", 1)[0]: s.split("=", 1)[1].split(",") for s in args.settings}
    rows = []
    for name, sets in settings.items():
        jobs = [{"agent": args.agent, "task": args.task, "seed": s, "steps": args.steps,
                 "sets": [*sets, f"eval_every={args.eval_every}"]} for s in args.seeds]
        df = run_jobs(jobs, args.out / name, args.jobs)
        for job in df.itertuples():
            run_dir = rundir.run_path(args.out / name, job.task, job.agent, job.seed)
            extra = summarise(run_dir) if not job.error else {}
            rows.append({"setting": name, "seed": job.seed, "wall_s": job.wall_s, "error": job.error, **extra})
    table = pd.DataFrame(rows)
    dump(table, args.out / "bench_world_model.json")
    print(header("bench_world_model"))
    print(f"{args.agent} on {args.task}, {args.steps} simulator steps, seeds {args.seeds}; settings: {settings}")
    print(table.drop(columns=["error"]).round(4).to_string(index=False))
    numeric = table.drop(columns=["seed", "wall_s", "error"])
    agg = numeric.groupby("setting", sort=False).agg(["mean", "std"])
    print("\nmean (sd) over seeds")
    print(agg.round(4).to_string())


if __name__ == "__main__":
    main()
