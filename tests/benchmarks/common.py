"""Helpers for benchmark scripts: run a grid of `avem train` jobs in parallel, tabulate, record the commit."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from avem.train import rundir
from avem.train.provenance import git_commit


def run_jobs(jobs: list[dict], out_root: Path, workers: int = 2) -> pd.DataFrame:
    """Each job: ``{"agent", "task", "seed", "steps", "sets": [..]}`` and optionally ``"label"`` (its run
    directory's agent part, default the agent: ``NAME.TAG`` for overridden runs); returns one row per job
    with the final evaluation return (mean over its episodes) and the wall-clock. A run found
    already finished is reused (``reused=True``) and its ``wall_s`` is NaN: this call did not time it."""
    def one(job: dict) -> dict:
        out = rundir.run_path(out_root, job["task"], job.get("label", job["agent"]), job["seed"])
        reused = (out / "run.json").exists() and json.loads((out / "run.json").read_text()).get("status") == "finished"
        cmd = [sys.executable, "-m", "avem.cli", "train", "--agent", job["agent"], "--task", job["task"],
               "--seed", str(job["seed"]), "--steps", str(job["steps"]), "--out", str(out),
               *sum((["--set", s] for s in job.get("sets", [])), [])]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            return {**job, "final_return": float("nan"), "wall_s": wall, "reused": reused, "error": proc.stderr[-500:]}
        ev = pd.read_csv(out / "eval.csv")
        final = ev[ev["step"] == ev["step"].max()]["return"].mean()
        return {**job, "final_return": final, "wall_s": float("nan") if reused else wall, "reused": reused,
                "error": ""}

    with ThreadPoolExecutor(workers) as pool:
        rows = list(pool.map(one, jobs))
    return pd.DataFrame(rows).drop(columns=["sets"], errors="ignore")


def header(name: str) -> str:
    info = git_commit()
    return f"# {name} | commit {info['commit'][:12]}{' (dirty)' if info['dirty'] else ''} | {time.strftime('%Y-%m-%d %H:%M')}"


def dump(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(df.to_dict(orient="records"), indent=1, default=str))
