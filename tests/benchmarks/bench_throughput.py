"""Throughput of every registered agent at its default sizes, one thread, beside a reference commit.

For each agent, ``throughput_worker.py`` runs once on this tree and once on the reference commit
(extracted with ``git archive``; default 81a92ea, the commit the speed issue was measured at),
alternately, one process at a time, so both see the same machine load. Printed per agent:
decisions/s (``act``), gradient updates/s, agent steps/s (derived: one decision, one env step and
the agent's updates per agent step, from its config: ``updates_per_step``, or
``updates_per_episode`` spread over an episode), the minutes a 100k-simulator-step run would take
on one core (training plus the study's 10 x 10 evaluation episodes; an estimate from these rates,
start-up excluded), the achieved GFLOP/s of acting and of updating (matmul FLOPs counted by
``torch.utils.flop_counter``) against the machine's one-core float32 matmul peak measured in the
same worker, and the ratios to the reference commit. ``sac`` is also compared with ``sb3-sac``.
Each (agent, tree) is measured ``--repeats`` times, the trees alternating; the table shows medians.
``--preset AGENT:KEY=VALUE`` adds a row for an agent with config overrides (a CPU preset such as
``dreamer:imagine_starts=256``).

Usage: ``python3 tests/benchmarks/bench_throughput.py [--agents A ...] [--preset AGENT:KEY=VALUE ...]
[--task cartpole-swingup-pos] [--ref 81a92ea] [--budget 3] [--repeats 3] [--out /tmp/bench_throughput.json]``
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(ROOT)]  # this tree's avem, whatever is installed
from common import header  # noqa: E402

from avem.train.schedule import UpdateSchedule  # noqa: E402

WORKER = Path(__file__).resolve().parent / "throughput_worker.py"
EVAL_EPISODES = 100
"""Evaluation episodes of a 100k run at the study's settings (every 10k steps, 10 episodes)."""


def extract(ref: str, dest: Path) -> Path:
    """The ``avem`` package of commit ``ref`` under ``dest`` (``git archive``)."""
    archive = dest / "ref.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), ref, "avem"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return dest


def measure(tree: Path, agent: str, task: str, budget: float, sets: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(WORKER), agent, task, str(budget), *sets], capture_output=True,
                          text=True, env=env, cwd=tree)
    if proc.returncode != 0:
        return {"agent": agent, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    if not row["avem"].startswith(str(tree)):
        raise RuntimeError(f"the worker imported {row['avem']}, not the tree {tree}")
    return row


def derive(row: dict) -> dict:
    """Agent steps/s and 100k-run minutes from the measured rates and the agent's update schedule."""
    if "error" in row:
        return row
    fields = {k: row[k] for k in ("updates_per_step", "updates_per_episode") if row[k] is not None}
    schedule = UpdateSchedule.of(SimpleNamespace(**fields))  # the loop's rule, from the recorded config fields
    has_updates = row["updates_per_s"] == row["updates_per_s"]  # NaN: the agent has no gradient update (random)
    per_step = schedule.per_step + schedule.per_episode / row["episode_agent_steps"] if has_updates else 0.0
    upd = per_step / row["updates_per_s"] if per_step else 0.0
    step_s = 1.0 / row["decisions_per_s"] + 1.0 / row["env_steps_per_s"] + upd
    agent_steps = 100_000 / row["action_repeat"]
    eval_s = EVAL_EPISODES * row["episode_agent_steps"] * (1.0 / row["decisions_per_s"] + 1.0 / row["env_steps_per_s"])
    act_gf = row["flops_per_decision"] * row["decisions_per_s"] / 1e9
    upd_gf = row["flops_per_update"] * row["updates_per_s"] / 1e9 if per_step else float("nan")
    return {**row, "agent_steps_per_s": 1.0 / step_s, "min_per_100k": (agent_steps * step_s + eval_s) / 60,
            "act_gflops": act_gf, "update_gflops": upd_gf}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", nargs="*", default=None)
    p.add_argument("--task", default="cartpole-swingup-pos")
    p.add_argument("--ref", default="81a92ea")
    p.add_argument("--budget", type=float, default=3.0, help="seconds per timed quantity")
    p.add_argument("--repeats", type=int, default=3, help="measurements per (agent, tree); medians are shown")
    p.add_argument("--preset", nargs="*", default=[], help="AGENT:KEY=VALUE rows with config overrides")
    p.add_argument("--out", type=Path, default=Path("/tmp/bench_throughput.json"))
    args = p.parse_args()
    from avem.agents import registry
    entries = [(a, []) for a in (args.agents if args.agents is not None else registry.names())]
    for item in args.preset:
        agent, _, kv = item.partition(":")
        entries.append((agent, kv.split(",")))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ref_tree = extract(args.ref, Path(tmp))
        for rep in range(args.repeats):
            for i, (agent, sets) in enumerate(entries):
                trees = [("new", ROOT), ("ref", ref_tree)]
                for label, tree in trees if (i + rep) % 2 == 0 else trees[::-1]:
                    rows.append({"tree": label, "repeat": rep, **derive(measure(tree, agent, args.task, args.budget, sets))})
                    print(f"{rows[-1]['agent']} ({label}, {rep}): " + json.dumps({k: rows[-1].get(k) for k in (
                        "agent_steps_per_s", "decisions_per_s", "updates_per_s", "error")}), file=sys.stderr, flush=True)
    df = pd.DataFrame(rows)
    args.out.write_text(json.dumps(rows, indent=1))
    print(header("bench_throughput"), f"| task {args.task} | one thread | reference {args.ref}")
    print(table(df).to_markdown(index=False, floatfmt=".3g"))
    new = medians(df, "new")
    if {"sac", "sb3-sac"} <= set(new.index):
        print(f"\nsac / sb3-sac updates per second: {new.loc['sac', 'updates_per_s'] / new.loc['sb3-sac', 'updates_per_s']:.2f}")
    print(f"one-core float32 matmul peak (1024^3, median over workers): {df['peak_gflops'].median():.1f} GFLOP/s")


def medians(df: pd.DataFrame, tree: str) -> pd.DataFrame:
    """Per agent, the median of each numeric column over the repeats of ``tree`` (the first error, if any)."""
    part = df[df["tree"] == tree]
    out = part.groupby("agent", sort=False).median(numeric_only=True)
    if "error" in part:
        out["error"] = part.groupby("agent", sort=False)["error"].first()
    return out


def table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per agent: this tree's median rates, GFLOP/s, and the ratios of medians to the reference."""
    new = medians(df, "new")
    ref = medians(df, "ref").reindex(new.index)
    out = pd.DataFrame({
        "agent steps/s": new["agent_steps_per_s"], "decisions/s": new["decisions_per_s"],
        "updates/s": new["updates_per_s"], "min per 100k (est.)": new["min_per_100k"],
        "act GFLOP/s": new["act_gflops"], "update GFLOP/s": new["update_gflops"],
        "steps/s vs ref": new["agent_steps_per_s"] / ref.get("agent_steps_per_s"),
        "decisions/s vs ref": new["decisions_per_s"] / ref.get("decisions_per_s"),
        "updates/s vs ref": new["updates_per_s"] / ref.get("updates_per_s"),
    })
    if "error" in new:
        out["error"] = new["error"].fillna("")
    return out.reset_index()


if __name__ == "__main__":
    main()
