"""The model-based agents at the published checkpoint, beside the published anchors and our own baselines.

Trains each (agent, task) of the validation grid through the real loop (default 100k simulator
steps) and prints, per (agent, task): the final evaluation return per seed and its mean +- sd,
the world model's open-loop diagnostics over the last quarter of training (``bench_world_model``'s
columns), and the anchors of ``workflows/config/anchors.csv`` for the same domain-task at the
same step count (full-state anchors for ``-full`` tasks; their step convention is in the
``source`` column).

Usage: ``python3 tests/benchmarks/bench_model_based.py [--steps 100000] [--jobs 2]
[--out /tmp/bench_mb] [--only AGENT@TASK ...] [--seeds 0 1 2] [--threads N] [--set KEY=VALUE ... --tag TAG]``.
``--only`` runs the named entries instead of the grid (the grid's seeds where it has them); ``--set``
overrides every job's config (after the CPU presets) and ``--tag`` names those runs ``AGENT.TAG``, so
they never share a directory with default runs; finished runs are reused when started again. ``--threads``
sets each run's torch threads (the run setting ``threads``, recorded in its config; as the reference study,
not part of the run's name): a finished run of another thread count is refused, never overwritten.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_world_model import summarise  # noqa: E402
from common import dump, header, run_jobs  # noqa: E402

from avem.train import rundir  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GRID = {  # (agent, task) -> seeds
    ("avem-gen-elbo-uniform-noplan", "cartpole-swingup-full"): [0, 1, 2],
    ("dreamer", "cartpole-swingup-full"): [0, 1, 2],
    ("planet", "cartpole-swingup-full"): [0, 1],
    ("avem-gen-elbo-uniform-noplan", "cartpole-swingup-pos"): [0, 1, 2],
    ("avem-gen-elbo-learned-plan", "cartpole-swingup-pos"): [0, 1, 2],
    ("avem-gen-ml-learned-plan", "cartpole-swingup-pos"): [0, 1, 2, 3],
}
"""The validation grid of the world-model issue: generative agents on full state against the published
proprio scores, and on positions only against the frame-stacked SAC."""
SETS = {"dreamer": ["imagine_starts=256"]}
"""CPU preset: Dreamer imagines from 256 of its 2500 posterior states per update (paper: all; ``--set imagine_starts=0``)."""


def anchors_for(task: str, steps: int) -> str:
    """'agent mean+-sd; ...' of the anchors for ``task``'s domain-task at ``steps`` (full state for -full)."""
    df = pd.read_csv(ROOT / "workflows" / "config" / "anchors.csv")
    domain_task, obs = task.rsplit("-", 1)
    rows = df[(df["task"] == domain_task) & (df["steps"] == steps)]
    if obs == "full":
        rows = rows[rows["observation"].str.contains("state")]
    return "; ".join(f"{r.agent} ({r.observation}) {r.mean:.0f}+-{r.sd:.0f}" for r in rows.itertuples())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("/tmp/bench_mb"))
    p.add_argument("--only", nargs="*", default=None, help="AGENT@TASK entries to run instead of the grid")
    p.add_argument("--seeds", type=int, nargs="*", default=None, help="override every entry's seeds")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every job")
    p.add_argument("--tag", default="", help="with --set: the runs are labelled AGENT.TAG")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    args = p.parse_args()
    if args.set and not args.tag:
        p.error("--set changes the runs: name them with --tag TAG (their directories become AGENT.TAG)")
    if args.threads < 1:
        p.error(f"--threads takes a positive number, got {args.threads}")
    if args.tag and not args.tag.replace("_", "").replace("-", "").isalnum():
        p.error(f"--tag takes letters, digits, '-' and '_', got {args.tag!r}")
    grid = dict(GRID) if not args.only else {}
    for item in args.only or []:  # any AGENT@TASK; the grid's seeds where it has the entry, else 0 1 2
        agent, sep, task = item.partition("@")
        if not sep or not agent or not task:
            p.error(f"--only takes AGENT@TASK entries, got {item!r}")
        grid[(agent, task)] = GRID.get((agent, task), [0, 1, 2])
    jobs = [{"agent": a, "label": f"{a}.{args.tag}" if args.tag else a, "task": t, "seed": s,
             "steps": args.steps, "sets": SETS.get(a, []) + [f"threads={args.threads}", *args.set]}
            for (a, t), seeds in grid.items() for s in (args.seeds if args.seeds is not None else seeds)]
    df = run_jobs(jobs, args.out, args.jobs)
    rows = []
    for job in df.itertuples():
        run_dir = rundir.run_path(args.out, job.task, job.label, job.seed)
        rows.append({"agent": job.label, "task": job.task, "seed": job.seed, "wall_s": job.wall_s,
                     **(summarise(run_dir) if not job.error else {"final_return": float("nan"), "h5_ratio": float("nan"),
                                                                   "error": job.error.strip()[-200:]})})
    table = pd.DataFrame(rows)
    dump(table, args.out / "bench_model_based.json")
    print(header("bench_model_based"))
    print(f"{args.steps} simulator steps; {args.threads} torch thread(s) per run; CPU presets: {SETS}" + (f"; --set {' '.join(args.set)} (tag {args.tag})" if args.set else ""))
    print(table.round(4).to_string(index=False))
    print("\nper agent and task: final return mean +- sd over seeds, beside the published anchors")
    for (agent, task), g in table.groupby(["agent", "task"], sort=False):
        r = g["final_return"]
        print(f"{agent} on {task}: {r.mean():.1f} +- {r.std():.1f} (n={r.notna().sum()}; h5 ratio {g['h5_ratio'].mean():.3f}) | "
              f"published at {args.steps}: {anchors_for(task, args.steps) or '-'}")
    failed = table[table["final_return"].isna()]
    if len(failed):
        sys.exit(f"{len(failed)} of {len(table)} runs failed (their error column above; bench_model_based.json)")


if __name__ == "__main__":
    main()
