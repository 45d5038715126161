"""The training loop: act, store, update, evaluate, checkpoint, track.

Every step count is in SIMULATOR steps. Checkpoints are taken at episode boundaries and hold
everything that moves (agent, optimisers, replay buffer, the environment's RNG, the loop's
RNG, torch's RNG, the rows written so far), so a run killed at any point and started again
with the same command ends with the same ``eval.csv`` as an uninterrupted one (on the CPU; CUDA
runs are not bit-reproducible).

How a run ends early (divergence, SIGTERM) and how damaged checkpoints are survived:
``avem.train.faults``, ``avem.train.checkpoint``.

Device (``RunConfig.device``): resolved before anything is written; ``run.json``'s ``devices``
lists the devices the run ran on, in order, so a run resumed on another device (a job requeued
on a machine without a GPU under ``device=auto``) shows it. Checkpoints load on either device;
such a run continues with its agent's torch generator reseeded (``AgentBase``), not bit-identical
to one that stayed put.
"""
from __future__ import annotations

import csv
import io
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from avem.agents import registry
from avem.config_tree import flatten
from avem.envs import make_env, parse_task_id
from avem.models.diagnostics import episode_rows, openloop_errors
from avem.models.rssm import RSSM
from avem.train import checkpoint, faults, rundir
from avem.train.config import RunConfig, to_dict
from avem.train.provenance import provenance
from avem.train.replay import ReplayBuffer
from avem.train.schedule import EpisodeMeans, UpdateSchedule, mean_metrics, scalar_extras
from avem.train.tracking import RUN_DIR_TAG, Tracker, Untracked, adopt_run, tracking_uri

HELDOUT_EPISODES = 5
"""Evaluation episodes kept (per evaluation) as held-out data for the model diagnostics."""


@dataclass
class LoopState:
    """The loop's own progress (saved in every checkpoint)."""

    sim_step: int = 0
    episode: int = 0
    last_checkpoint: int = 0
    evaluations: int = 0
    eval_rows: list = field(default_factory=list)
    metric_rows: list = field(default_factory=list)
    heldout: list = field(default_factory=list)
    """The latest evaluation's first episodes as replay rows: held-out data for the model diagnostics."""
    update_credit: float = 0.0
    """Updates accrued but not yet run (``avem.train.schedule``)."""


def env_task(run: RunConfig, agent_cfg) -> str:
    """The task id the agent actually sees: the full-state variant for oracle agents."""
    return _env_task(run.task, getattr(agent_cfg, "oracle_state", False))


def _env_task(task: str, oracle_state: bool) -> str:
    if oracle_state:
        spec = parse_task_id(task)
        return f"{spec.domain}-{spec.task}-full"
    return task


def run_identity(resolved: dict, out: Path) -> tuple[str, dict[str, object]]:
    """The MLflow run name and tags of the run in directory ``out`` from its resolved config
    (``{"run": ..., "agent": ...}``, as in config.yaml): ``task/agent/seedN``; task, agent, seed,
    obs, domain, env_task and ``run_dir`` (the directory's absolute path: one directory, one run)."""
    run, agent = resolved["run"], resolved["agent"]
    spec = parse_task_id(run["task"])
    return (rundir.run_name(run["task"], run["agent"], run["seed"]),
            {"task": run["task"], "agent": run["agent"], "seed": run["seed"], "obs": spec.obs, "domain": spec.domain,
             "env_task": _env_task(run["task"], bool(agent.get("oracle_state", False))),
             RUN_DIR_TAG: str(Path(out).resolve())})


def make_envs(run: RunConfig, agent_cfg):
    """``(train_env, eval_env)`` for a resolved run; the evaluation env has its own seed stream."""
    kw = dict(action_repeat=run.action_repeat, flicker_prob=run.flicker_prob,
              noise_std=run.noise_std, distract_dims=run.distract_dims)
    task = env_task(run, agent_cfg)
    return make_env(task, run.seed, **kw), make_env(task, run.seed + 1_000_003, **kw)


def load_trained(run_dir: str | Path, agent_sets: dict | None = None):
    """A trained run directory (``config.yaml`` + ``checkpoint.pt``) -> ``(run, agent_cfg, agent, eval_env)``.

    ``agent_sets``: agent-config overrides (``--set`` keys of the agent, bare or dotted; unknown ones
    raise ``ValueError``) applied before the agent is built, e.g. another acting rule."""
    from avem.train.config import from_dict

    run_dir = Path(run_dir)
    for name in (rundir.CONFIG, rundir.CHECKPOINT):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir / name} not found: a trained run directory is needed")
    data = yaml.safe_load((run_dir / rundir.CONFIG).read_text())
    run, agent_cfg = from_dict(data, agent_sets)
    torch.set_num_threads(run.threads)
    torch.manual_seed(run.seed)
    _, eval_env = make_envs(run, agent_cfg)
    agent = registry.build(run.agent, eval_env.observation_space, eval_env.action_space, agent_cfg, run.seed)
    agent.load_state_dict(checkpoint.read(run_dir / rundir.CHECKPOINT)["agent"])  # the final one, never the previous
    return run, agent_cfg, agent, eval_env


def eval_seed(run_seed: int, evaluation: int, episode: int) -> int:
    """Seed of evaluation episode ``episode`` of evaluation number ``evaluation``: independent of resumes."""
    return int(np.random.SeedSequence([run_seed, evaluation, episode, 1]).generate_state(1)[0])


def evaluate(agent, env, run: RunConfig, evaluation: int, check=None, record: list | None = None) -> list[dict]:
    """``run.eval_episodes`` episodes with deterministic actions; one tidy row per episode.

    ``check()``, if given, runs after every step (the loop's stop-signal check). ``record``: if given,
    the first ``HELDOUT_EPISODES`` episodes are appended to it as replay rows
    (``avem.models.diagnostics.episode_rows``): the held-out data of the model diagnostics."""
    rows = []
    obs_mode = parse_task_id(run.task).obs
    for e in range(run.eval_episodes):
        obs, _ = env.reset(seed=eval_seed(run.seed, evaluation, e))
        state, ret, length, done = agent.initial_state(), 0.0, 0, False
        trace = ([obs], [], [])
        while not done:
            action, state, _ = agent.act(obs, state, explore=False)
            obs, reward, terminated, truncated, _ = env.step(action)
            ret, length, done = ret + float(reward), length + 1, terminated or truncated
            for seq, item in zip(trace, (obs, action, reward)):
                seq.append(item)
            if check is not None:
                check()
        if record is not None and e < HELDOUT_EPISODES:
            record.append(episode_rows(*trace))
        rows.append({"task": run.task, "agent": run.agent, "seed": run.seed, "obs": obs_mode,
                     "step": None, "episode": e, "return": round(ret, 6), "length": length})
    return rows


def eval_metrics(returns: list[float]) -> dict[str, float]:
    """What MLflow gets per evaluation: ``eval/return_mean`` and ``eval/return_std`` of its episodes' returns."""
    return {"eval/return_mean": float(np.mean(returns)), "eval/return_std": float(np.std(returns))}


def world_model(agent) -> RSSM | None:
    """The agent's world model (an ``RSSM`` at ``agent.model``), or None."""
    model = getattr(agent, "model", None)
    return model if isinstance(model, RSSM) else None


def model_diagnostics(agent, heldout: list) -> dict[str, float]:
    """Open-loop errors of an agent's world model on the held-out episodes, as ``train/<key>``;
    {} for agents without one or before the first evaluation."""
    model = world_model(agent)
    if model is None or not heldout:
        return {}
    return {f"train/{k}": v for k, v in openloop_errors(model, heldout).items()}


def _csv(rows: list[dict], columns) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _metric_columns(rows: list[dict]) -> list[str]:
    keys = {k for r in rows for k in r}
    first = [k for k in ("step", "episode", "train_return", "steps_per_second") if k in keys]
    return first + sorted(keys - set(first))


class _Progress:
    """A tqdm bar on a terminal only."""

    def __init__(self, total: int, initial: int, desc: str):
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True)

    def update(self, n: int, **postfix) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass
class _Training:
    """The parts of one run the loop moves, passed around as one."""

    run: RunConfig
    out: Path
    agent: object
    env: object
    eval_env: object
    buffer: ReplayBuffer
    rng: np.random.Generator
    tracker: Tracker | Untracked
    state: LoopState
    progress: _Progress
    stop: faults.StopSignals
    schedule: UpdateSchedule


def train(run: RunConfig, agent_cfg, out: str | Path, tracking: bool = True) -> dict:
    """Train ``run`` into directory ``out`` (resuming from its checkpoint if present); ``tracking=False``:
    no MLflow run, only the run directory (``avem mlflow-import`` loads it later).

    Returns ``run.json``'s content. Raises ``rundir.RunDirError`` before writing anything if
    ``out`` holds another configuration, ``faults.AlreadyFailed`` if its run failed, and
    ``checkpoint.CheckpointError`` if none of its checkpoints loads, ``ValueError`` (before writing anything)
    for ``device=cuda`` without a CUDA device. A run that diverges or gets
    SIGTERM/SIGINT writes what it has, marks run.json and the MLflow run, and raises
    ``faults.Diverged`` / ``faults.Interrupted`` (see ``avem.train.faults``).
    """
    out = Path(out)
    device = run.resolved_device()
    resolved = to_dict(run, agent_cfg)
    status = rundir.check_existing(out, resolved)
    if status == "finished":
        print(f"{out}: run already finished; nothing to do", file=sys.stderr)
        return rundir.read_run_json(out)
    if status == "failed":
        raise faults.AlreadyFailed(f"this run failed ({rundir.read_run_json(out).get('reason')}) and would fail "
                                   f"again: change its config, or delete {out} to start over")
    out.mkdir(parents=True, exist_ok=True)
    if status == "new":
        rundir.atomic_text(out / rundir.CONFIG, yaml.safe_dump({**resolved, "provenance": provenance()},
                                                               sort_keys=False))
    t = _start(run, agent_cfg, out, device, resume=status == "resume", tracking=tracking)
    try:
        with t.stop, faults.nan_guard(lambda: t.state.sim_step):
            _train_episodes(t)
    except faults.RunEnded as e:
        _end_early(t, e)
        raise
    finally:
        t.progress.close()
    return _finish(t)


def _start(run: RunConfig, agent_cfg, out: Path, device: str, resume: bool, tracking: bool = True) -> _Training:
    """Everything a run moves, built (from the run's checkpoint if ``resume``); run.json and MLflow say it runs."""
    torch.set_num_threads(run.threads)
    torch.manual_seed(run.seed)
    env, eval_env = make_envs(run, agent_cfg)
    agent = registry.build(run.agent, env.observation_space, env.action_space, agent_cfg, run.seed, device)
    buffer = ReplayBuffer(env.observation_space.shape, int(env.action_space.shape[0]),
                          capacity=run.steps // run.action_repeat + run.steps // 1000 + 2)
    rng = np.random.default_rng([run.seed, 7])  # the loop's own generator: warm-up actions
    state = _restore(out, agent, buffer, env, rng, device) if resume else LoopState()
    devices = _devices(out, device)
    tracker = _tracker(run, to_dict(run, agent_cfg), out) if tracking else Untracked()
    tracker.set_tag("device", ",".join(devices))
    rundir.write_run_json(out, mlflow_run_id=tracker.run_id, tracking_uri=tracker.uri, experiment=run.experiment,
                          status="running", reason=None, devices=devices)
    return _Training(run, out, agent, env, eval_env, buffer, rng, tracker, state,
                     _Progress(run.steps, state.sim_step, f"{run.agent} {run.task} s{run.seed}"),
                     faults.StopSignals(), UpdateSchedule.of(agent_cfg))


def _restore(out: Path, agent, buffer: ReplayBuffer, env, rng: np.random.Generator, device: str) -> LoopState:
    """Load the run's checkpoint into what moves; rewrite the tables without rows written after it."""
    ckpt = checkpoint.load(out)
    state = LoopState(**ckpt["loop"])
    agent.load_state_dict(ckpt["agent"])
    buffer.load_state_dict(ckpt["buffer"])
    env.set_rng_state(ckpt["env_rng"])
    rng.bit_generator.state = ckpt["loop_rng"]
    torch.set_rng_state(ckpt["torch_rng"])
    if device == "cuda" and "cuda_rng" in ckpt:
        torch.cuda.set_rng_state(ckpt["cuda_rng"])
    _write_tables(out, state)  # drop rows written after the checkpoint
    return state


def _finish(t: _Training) -> dict:
    """The final checkpoint, tables and artifacts; MLflow and run.json say finished. Returns run.json."""
    out, state = t.out, t.state
    if not (out / rundir.CHECKPOINT).exists():  # a finished run always leaves its final checkpoint
        _checkpoint(t)
    _write_tables(out, state)
    t.tracker.log_artifact(out / rundir.CONFIG)
    t.tracker.log_artifact(out / rundir.CHECKPOINT, "checkpoint")
    t.tracker.finish()
    rundir.write_run_json(out, status="finished", steps=state.sim_step,
                          final_eval_return=float(np.mean([r["return"] for r in state.eval_rows
                                                           if r["step"] == state.sim_step])))
    (out / rundir.CHECKPOINT_PREV).unlink(missing_ok=True)  # only an unfinished run may need it
    return rundir.read_run_json(out)


def _devices(out: Path, device: str) -> list[str]:
    """run.json's ``devices`` with this session's ``device`` appended where it differs from the last one
    (said in one line on stderr: the run is then no longer bit-identical to one that stayed put)."""
    before = rundir.read_run_json(out).get("devices", [])
    if before and before[-1] != device:
        print(f"avem: {out}: resuming on {device} a run that ran on {before[-1]}: it continues, but is not "
              f"bit-identical to a run that stayed on one device", file=sys.stderr)
    return before if before[-1:] == [device] else [*before, device]


def _tracker(run: RunConfig, resolved: dict, out: Path) -> Tracker:
    """The run's MLflow run: run.json's (same store), or one a kill left RUNNING, or a new one."""
    uri, info = tracking_uri(out), rundir.read_run_json(out)
    known = info.get("mlflow_run_id") if info.get("tracking_uri") == uri else None
    name, tags = run_identity(resolved, out)
    return Tracker(uri, run.experiment, run_name=name, tags=tags, params=flatten(resolved),
                   run_id=adopt_run(uri, run.experiment, out, known))


def _end_early(t: _Training, e: faults.RunEnded) -> None:
    """Write the rows the run has, then mark run.json and the MLflow run with how and why it ended."""
    _write_tables(t.out, t.state, always_metrics=True)
    rundir.write_run_json(t.out, status=e.status, reason=str(e))
    t.tracker.set_tag("end_reason", str(e))
    t.tracker.finish(e.mlflow_status)


def _evaluate(t: _Training) -> None:
    """One evaluation at the current step: rows into the loop state, summary into MLflow, tables rewritten."""
    state = t.state
    state.heldout = []  # kept (and checkpointed) only for agents with a world model to diagnose
    rows = evaluate(t.agent, t.eval_env, t.run, state.evaluations, check=lambda: t.stop.check(state.sim_step),
                    record=state.heldout if world_model(t.agent) is not None else None)
    for r in rows:
        r["step"] = state.sim_step
    state.eval_rows.extend(rows)
    state.evaluations += 1
    t.tracker.log_metrics(eval_metrics([r["return"] for r in rows]), state.sim_step)
    _write_tables(t.out, state)


def _train_episodes(t: _Training) -> None:
    """Episodes until the budget: act, store, update, evaluate, log, checkpoint at episode ends."""
    run, state, agent, buffer, env = t.run, t.state, t.agent, t.buffer, t.env
    act_dim = int(env.action_space.shape[0])
    if state.sim_step == 0 and state.evaluations == 0:
        _evaluate(t)
    while state.sim_step < run.steps:
        obs, _ = env.reset(seed=run.seed if state.sim_step == 0 else None)
        buffer.add(obs, None, 0.0, True, False)
        random_episode = state.sim_step < run.seed_steps
        learning = state.sim_step >= run.seed_steps and state.episode >= 1
        agent_state, ep_return, means = agent.initial_state(), 0.0, EpisodeMeans()
        t0, start_step, done, first_step = time.perf_counter(), state.sim_step, False, True
        while not done:
            if random_episode:
                action, extras = t.rng.uniform(-1.0, 1.0, act_dim).astype(np.float32), {}
            else:
                action, agent_state, extras = agent.act(obs, agent_state, explore=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            state.sim_step += run.action_repeat
            buffer.add(obs, action, float(reward), False, terminated, extras)
            ep_return += float(reward)
            means.add(faults.check_finite(scalar_extras(extras), state.sim_step))
            if learning:
                means.add(faults.check_finite(_update(t, first_step), state.sim_step))
            first_step = False
            t.progress.update(run.action_repeat)
            if state.sim_step % run.eval_every == 0 or state.sim_step == run.steps:
                _evaluate(t)
            t.stop.check(state.sim_step)
            done = terminated or truncated or state.sim_step >= run.steps
        state.episode += 1
        elapsed = max(time.perf_counter() - t0, 1e-9)
        row = {"step": state.sim_step, "episode": state.episode, "train_return": round(ep_return, 6),
               "steps_per_second": (state.sim_step - start_step) / elapsed,
               **{f"train/{k}": v for k, v in means.means().items()}, **model_diagnostics(agent, state.heldout)}
        state.metric_rows.append(row)
        t.tracker.log_metrics({k: v for k, v in row.items() if k not in ("step",)}, state.sim_step)
        t.progress.update(0, ret=f"{ep_return:.0f}")
        if state.sim_step - state.last_checkpoint >= run.checkpoint_every or state.sim_step >= run.steps:
            state.last_checkpoint = state.sim_step
            _checkpoint(t)


def _update(t: _Training, first_step: bool) -> dict[str, float]:
    """The updates due after this agent step (``avem.train.schedule``); their metrics' mean ({} for none).

    A stop signal is honoured before each update, not only after the step: a burst of
    ``updates_per_episode`` (Dreamer: 100 updates of seconds each on CPU) would outlast SLURM's grace
    period before SIGKILL. Stopping mid-burst loses nothing: the rerun resumes from the last checkpoint."""
    n, t.state.update_credit = t.schedule.due(t.state.update_credit, first_step)
    rows = []
    for _ in range(n):
        t.stop.check(t.state.sim_step)
        rows.append(t.agent.update(t.buffer))
    return mean_metrics(rows)


def _write_tables(out: Path, state: LoopState, always_metrics: bool = False) -> None:
    """``eval.csv`` and ``metrics.csv`` from the loop state (``metrics.csv`` header-only if
    ``always_metrics`` and no episode has ended yet, else written once there are rows)."""
    rundir.atomic_text(out / rundir.EVAL, _csv(state.eval_rows, rundir.EVAL_COLUMNS))
    if state.metric_rows or always_metrics:
        columns = _metric_columns(state.metric_rows) if state.metric_rows else ("step", "episode")
        rundir.atomic_text(out / rundir.METRICS, _csv(state.metric_rows, columns))


def _checkpoint(t: _Training) -> None:
    payload = {"loop": asdict(t.state), "agent": t.agent.state_dict(), "buffer": t.buffer.state_dict(),
               "env_rng": t.env.get_rng_state(), "loop_rng": t.rng.bit_generator.state,
               "torch_rng": torch.get_rng_state()}
    if torch.cuda.is_initialized():  # sb3-sac draws from torch's global CUDA generator
        payload["cuda_rng"] = torch.cuda.get_rng_state()
    checkpoint.save(t.out, payload)
