"""One agent's throughput in this process: ``python throughput_worker.py AGENT TASK BUDGET_S [KEY=VALUE ...]``
-> one JSON line (``KEY=VALUE``: agent config overrides, as ``avem train --set``).

Imports whichever ``avem`` is first on ``sys.path`` (``bench_throughput.py`` sets ``PYTHONPATH`` to
the tree under test), so it uses only interfaces that commit 81a92ea already had: ``resolve``,
``make_envs``, ``registry.build``, ``ReplayBuffer``, ``agent.act`` / ``agent.update``.

Measured on one thread, after 4 random episodes fill the replay buffer and one warm-up call each:
- ``decisions_per_s``: ``agent.act(obs, state, explore=True)`` inside an episode;
- ``updates_per_s``: single gradient updates (``_update_once`` where the agent has it, as at 81a92ea, else ``update``: one update);
- ``env_steps_per_s``: ``env.step`` with random actions (agent steps; each is ``action_repeat`` simulator steps);
- ``flops_per_decision`` / ``flops_per_update``: counted by ``torch.utils.flop_counter`` (matmuls,
  convolutions; elementwise work is not counted);
- ``peak_gflops``: float32 1024^3 matmul in this process, the machine's one-core bound.
Agent steps per second are derived by the driver from these and the agent's update schedule.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode


def timed(fn, budget_s: float, min_calls: int = 2, max_calls: int = 10_000) -> tuple[float, int]:
    """Seconds per call of ``fn()`` over at least ``budget_s`` seconds (or ``max_calls``), after one warm-up call."""
    fn()
    calls, t0 = 0, time.perf_counter()
    while calls < min_calls or (time.perf_counter() - t0 < budget_s and calls < max_calls):
        fn()
        calls += 1
    return (time.perf_counter() - t0) / calls, calls


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def peak_gflops(n: int = 1024, budget_s: float = 1.0) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    sec, _ = timed(lambda: a @ b, budget_s)
    return 2 * n ** 3 / sec / 1e9


def main() -> None:
    agent_name, task, budget = sys.argv[1], sys.argv[2], float(sys.argv[3])
    sets = dict(item.split("=", 1) for item in sys.argv[4:])
    torch.set_num_threads(1)
    import avem
    from avem.agents import registry
    from avem.train.config import resolve
    from avem.train.loop import make_envs
    from avem.train.replay import ReplayBuffer

    run, cfg = resolve(agent_name, task, seed=0, sets=sets)
    env, _ = make_envs(run, cfg)
    agent = registry.build(agent_name, env.observation_space, env.action_space, cfg, 0)
    act_dim = int(env.action_space.shape[0])
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(env.observation_space.shape, act_dim)
    episode_steps = 0
    for ep in range(4):  # random episodes: the replay every update samples from
        obs, _ = env.reset(seed=ep)
        buffer.add(obs, None, 0.0, True, False)
        done = False
        while not done:
            action = rng.uniform(-1.0, 1.0, act_dim).astype(np.float32)
            obs, reward, terminated, truncated, _ = env.step(action)
            buffer.add(obs, action, float(reward), False, terminated)
            done = terminated or truncated
            episode_steps += ep == 0


    def decide():
        t0 = time.perf_counter()
        action, cur["state"] = agent.act(cur["obs"], cur["state"], explore=True)[:2]  # 81a92ea returns 2 values
        cur["act_s"] += time.perf_counter() - t0
        cur["obs"], _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            cur["obs"], cur["state"] = env.reset()[0], agent.initial_state()

    def env_step():
        *_, terminated, truncated, _ = env.step(rng.uniform(-1.0, 1.0, act_dim).astype(np.float32))
        if terminated or truncated:
            env.reset()

    env.reset(seed=11)
    env_sec, _ = timed(env_step, min(budget, 1.0))
    cur = {"obs": env.reset(seed=10)[0], "state": agent.initial_state(), "act_s": 0.0}
    _, decisions = timed(decide, budget)
    act_sec = cur["act_s"] / (decisions + 1)  # the warm-up call included
    one_update = getattr(agent, "_update_once", None) or agent.update
    has_updates = bool(one_update(buffer)) or hasattr(agent, "num_updates")  # the random agent has none
    upd_sec, updates = timed(lambda: one_update(buffer), budget)
    out = {"agent": agent_name + "".join(f" {k}={v}" for k, v in sets.items()), "task": task, "avem": avem.__file__, "action_repeat": run.action_repeat,
           "episode_agent_steps": episode_steps, "env_steps_per_s": 1.0 / env_sec,
           "decisions_per_s": 1.0 / act_sec, "decisions_timed": decisions,
           "updates_per_s": 1.0 / upd_sec if has_updates else float("nan"), "updates_timed": updates,
           "flops_per_decision": flops(lambda: agent.act(cur["obs"], cur["state"], explore=True)),
           "flops_per_update": flops(lambda: one_update(buffer)) if has_updates else 0.0,
           "updates_per_step": getattr(cfg, "updates_per_step", None),
           "updates_per_episode": getattr(cfg, "updates_per_episode", None),
           "peak_gflops": peak_gflops()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
