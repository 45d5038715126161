"""SAC on cartpole-swingup, full state and positions only, 100k simulator steps.

Anchor: published SAC on full state reaches ~835 at 100k steps (CURL paper, Table 1); below
~700 on `full` means something is wrong. Usage: ``python3 tests/benchmarks/bench_sac.py
[--steps 100000] [--seeds 0] [--out /tmp/bench_sac]``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dump, header, run_jobs  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--out", type=Path, default=Path("/tmp/bench_sac"))
    p.add_argument("--set", dest="sets", action="append", default=[])
    a = p.parse_args()
    jobs = [{"agent": "sac", "task": f"cartpole-swingup-{obs}", "seed": s, "steps": a.steps,
             "sets": ["eval_every=10000", *a.sets]} for obs in ("full", "pos") for s in a.seeds]
    df = run_jobs(jobs, a.out)
    print(header("bench_sac"))
    print(df[["task", "seed", "steps", "final_return", "wall_s", "error"]].to_string(index=False))
    print("anchor: SAC-state 835 +- 22 at 100k (Laskin et al. 2020, CURL Table 1)")
    dump(df, a.out / "summary.json")


if __name__ == "__main__":
    main()
