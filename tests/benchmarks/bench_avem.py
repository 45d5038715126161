"""AVEM on cartpole-swingup (positions only): the full agent vs the generative/uniform/ELBO/no-plan one.

Two parts:
1. throughput on this CPU (1 torch thread): gradient updates per second (one ``agent.update``
   on a buffer of random episodes) and decisions per second (``agent.act``; the planner for
   planning agents);
2. training through the real loop (``avem train`` -> ``avem.train.loop.train``), 100k simulator
   steps, seeds 0 and 1 by default, plus the ``random`` agent as the floor (~110-145 on this task with action repeat 8).

Usage: ``python3 tests/benchmarks/bench_avem.py [--steps 100000] [--seeds 0 1]
[--agents avem-gen-ml-learned-plan avem-gen-elbo-uniform-noplan] [--jobs 2]
[--out /tmp/bench_avem] [--set key=value ...] [--throughput-only]``.
Throughput is reported per wall-clock second and per CPU second of the process (the second
is robust to other jobs sharing the cores; the load average is printed beside it).
Runs are resumable: start it again with the same arguments and finished runs are skipped.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import dump, header, run_jobs  # noqa: E402

TASK = "cartpole-swingup-pos"
AGENTS = ["avem-gen-ml-learned-plan", "avem-gen-elbo-uniform-noplan"]


def _check_loop() -> None:
    try:
        from avem.train.loop import train  # noqa: F401
    except ImportError as err:  # the benchmark's numbers must come from the real loop
        raise SystemExit(f"avem.train.loop.train is not available ({err}); nothing to benchmark with") from err


def throughput(agent_name: str, episodes: int = 6, updates: int = 30, decisions: int = 60) -> dict:
    """Updates/s and decisions/s of ``agent_name`` with its default config, 1 thread."""
    from avem.agents import registry
    from avem.envs import make_env
    from avem.train.replay import ReplayBuffer

    torch.set_num_threads(1)
    env = make_env(TASK, 0)
    spec = registry.get(agent_name)
    agent = registry.build(agent_name, env.observation_space, env.action_space, spec.make_config(), 0)
    act_dim = env.action_space.shape[0]
    buffer = ReplayBuffer(env.observation_space.shape, act_dim, 2048)
    rng = np.random.default_rng(0)
    for _ in range(episodes):
        obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
        buffer.add(obs, None, 0.0, True, False)
        done = False
        while not done:
            action = rng.uniform(-1, 1, act_dim).astype(np.float32)
            obs, reward, term, trunc, _ = env.step(action)
            buffer.add(obs, action, reward, False, term)
            done = term or trunc
    agent.update(buffer)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(updates):
        agent.update(buffer)
    ups, ups_cpu = updates / (time.perf_counter() - t0), updates / (time.process_time() - c0)
    obs, _ = env.reset(seed=0)
    state = agent.initial_state()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(decisions):
        _, state, _ = agent.act(obs, state, explore=True)
    dps, dps_cpu = decisions / (time.perf_counter() - t0), decisions / (time.process_time() - c0)
    planning = bool(getattr(spec.make_config(), "planning", False))
    return {"agent": agent_name, "updates_per_s": ups, "decisions_per_s": dps,
            "updates_per_cpu_s": ups_cpu, "decisions_per_cpu_s": dps_cpu,
            "decision": "planner" if planning else "policy", "load_avg_1min": os.getloadavg()[0]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--agents", nargs="+", default=AGENTS)
    p.add_argument("--jobs", type=int, default=2, help="parallel training processes (1 torch thread each)")
    p.add_argument("--out", type=Path, default=Path("/tmp/bench_avem"))
    p.add_argument("--eval-every", type=int, default=20_000)
    p.add_argument("--no-random", action="store_true", help="skip the random-agent floor")
    p.add_argument("--throughput-only", action="store_true")
    p.add_argument("--set", dest="sets", action="append", default=[])
    a = p.parse_args()
    _check_loop()

    print(header("bench_avem"), flush=True)
    tp = [throughput(name) for name in a.agents]
    for row in tp:
        print(f"throughput {row['agent']:32s} updates/s {row['updates_per_s']:6.1f} "
              f"(per CPU-s {row['updates_per_cpu_s']:6.1f})   {row['decision']} decisions/s "
              f"{row['decisions_per_s']:7.1f} (per CPU-s {row['decisions_per_cpu_s']:7.1f})   "
              f"load avg {row['load_avg_1min']:.1f} on {os.cpu_count()} cores", flush=True)
    dump(__import__("pandas").DataFrame(tp), a.out / "throughput.json")
    if a.throughput_only:
        return

    sets = [f"eval_every={a.eval_every}", *a.sets]
    jobs = [{"agent": name, "task": TASK, "seed": s, "steps": a.steps, "sets": sets}
            for s in a.seeds for name in a.agents]
    if not a.no_random:
        jobs.append({"agent": "random", "task": TASK, "seed": 0, "steps": a.steps, "sets": [f"eval_every={a.eval_every}"]})
    df = run_jobs(jobs, a.out, workers=a.jobs)
    df["sim_steps_per_s"] = df["steps"] / df["wall_s"]
    print(header("bench_avem"))
    print(df[["agent", "seed", "steps", "final_return", "wall_s", "sim_steps_per_s", "error"]].to_string(index=False))
    floor = df[df["agent"] == "random"]["final_return"].mean()
    for name in a.agents:
        r = df[df["agent"] == name]["final_return"]
        ratio = f"  = {r.mean() / floor:4.2f} x random" if np.isfinite(floor) and floor > 0 else ""
        print(f"{name:32s} final return mean {r.mean():7.1f} over seeds {[round(float(v), 1) for v in r.values]}{ratio}")
    print("floor: the random agent scores ~110-145 on cartpole-swingup-pos (action repeat 8), not 0-30; "
          "the ratios above are against the random run of this invocation")
    dump(df, a.out / "summary.json")


if __name__ == "__main__":
    main()
