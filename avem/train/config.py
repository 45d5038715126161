"""Run configuration: the run-level dataclass, ``--set`` overrides, and resolution.

The resolved configuration is ``{"run": RunConfig fields, "agent": agent config}`` (the agent's own
settings, and its blocks as nested mappings: ``avem.config_tree``);
derived values (the task's action repeat) are resolved into ``run`` before anything runs and
never written back into a dataclass default.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

import yaml

from avem import config_tree
from avem.agents import registry
from avem.checks import at_least, fields, non_negative, one_of, positive, require, within
from avem.envs import parse_task_id
from avem.envs.tasks import EPISODE_SIM_STEPS


DEVICES = ("cpu", "cuda", "auto")
"""The values of ``RunConfig.device``."""


@dataclass(frozen=True)
class RunConfig:
    """Run-level settings. Every step count is in SIMULATOR steps (agent steps x action repeat)."""

    task: str
    """Task id ``DOMAIN-TASK-OBS`` (``avem tasks`` lists them)."""
    agent: str
    """Registered agent name (``avem agents`` lists them)."""
    seed: int = 0
    """Seed of the training environment, the agent and the exploration; evaluation uses its own seeds."""
    steps: int = 100_000
    """Training budget in simulator steps."""
    eval_every: int = 10_000
    """Evaluate every this many simulator steps (and at step 0 and at the end)."""
    eval_episodes: int = 10
    """Evaluation episodes per evaluation (deterministic actions, separately seeded env)."""
    seed_steps: int = 5_000
    """Simulator steps of uniformly random actions before the agent acts and learns (whole episodes)."""
    checkpoint_every: int = 10_000
    """Checkpoint at the first episode boundary after this many simulator steps since the last one."""
    action_repeat: int = 0
    """Simulator steps per agent step; 0 means the task's customary value (resolved before the run)."""
    flicker_prob: float = 0.2
    """``flicker`` tasks: probability that the whole observation is zeroed at an agent step."""
    noise_std: float = 0.1
    """``noisy`` tasks: standard deviation of the Gaussian sensor noise."""
    distract_dims: int = 4
    """``distract`` tasks: number of task-irrelevant observation dimensions."""
    threads: int = 1
    """torch CPU threads (fixed, so results are reproducible on CPU)."""
    experiment: str = "avem"
    """MLflow experiment name."""
    device: str = "cpu"
    """Where the agent's networks, generators and replay batches live: ``cpu``, ``cuda`` or ``auto`` (``cuda``
    if ``torch.cuda.is_available()`` and the agent's constructor takes a device, else ``cpu``). CPU runs are bit-reproducible; CUDA runs are not.
    Not part of a run's identity: a run may be resumed on another device (``avem.train.loop``)."""

    def validate(self) -> None:
        """Raise ``ValueError`` naming the bad field; called before any output is written."""
        spec = parse_task_id(self.task)
        registry.get(self.agent)
        ar = self.action_repeat or spec.action_repeat
        checks = [
            *fields(self, steps=positive, eval_every=positive, eval_episodes=at_least(1), seed_steps=non_negative,
                    checkpoint_every=positive, action_repeat=non_negative, flicker_prob=within(0, 1, "[)"),
                    noise_std=non_negative, distract_dims=at_least(1), threads=at_least(1), seed=non_negative,
                    device=one_of(DEVICES)),
            (self.steps % ar == 0, f"steps={self.steps} is not a multiple of the action repeat {ar}"),
            (self.eval_every % ar == 0, f"eval_every={self.eval_every} is not a multiple of the action repeat {ar}"),
            (EPISODE_SIM_STEPS % ar == 0, f"action_repeat={ar} does not divide dm-control's {EPISODE_SIM_STEPS}-step "
                                          "episode (its last agent step would be cut short and the step counts drift)"),
        ]
        require(checks)

    def resolved_device(self) -> str:
        """``cpu`` or ``cuda``: ``device`` with ``auto`` resolved (CUDA where torch finds a device and the agent's
        constructor takes one, else the CPU, so a requeued job runs on any node). Raises ``ValueError`` (one
        line) for ``device=cuda`` without a CUDA device, or for an agent that cannot run on CUDA; checked before
        any output is written (not in ``validate``: a study is resolved on machines without a GPU)."""
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() and registry.takes_device(self.agent) else "cpu"
        device = self.device
        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device=cuda but torch finds no CUDA device (torch.cuda.is_available() is False); "
                             "use device=cpu or device=auto")
        if device != "cpu" and not registry.takes_device(self.agent):
            raise ValueError(f"agent {self.agent!r} cannot run on {device}: its constructor takes no device "
                             "argument; use device=cpu")
        return device


def parse_sets(items: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` -> ``{key: raw value}``; malformed items raise ``ValueError``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise ValueError(f"malformed --set {item!r}: expected key=value")
        out[key] = value.strip()
    return out


def _coerce(cls: type, name: str, raw: Any) -> Any:
    """Convert ``raw`` (a string from the command line or a YAML value) to the type of field ``name``."""
    hint = typing.get_type_hints(cls)[name]
    value = yaml.safe_load(raw) if isinstance(raw, str) else raw
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else hint
    if value is None and optional:
        return None
    if isinstance(value, str) and base in (int, float):
        try:  # YAML reads "1e-3" as a string
            value = base(value)
        except ValueError:
            pass
    if base is bool and isinstance(value, bool):
        return value
    if base is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if base is str:
        return str(value)
    if typing.get_origin(base) is tuple and isinstance(value, list):
        return tuple(value)
    raise ValueError(f"{cls.__name__}.{name} expects {getattr(base, '__name__', base)}, got {raw!r}")


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def resolve(agent: str, task: str, seed: int = 0, steps: int = 100_000,
            sets: dict[str, Any] | None = None, tiny: bool = False) -> tuple[RunConfig, Any]:
    """Build and validate ``(RunConfig, agent config)``. ``sets`` keys: ``run.FIELD``, the agent's keys
    (``FIELD``, ``BLOCK.FIELD``, optionally after ``agent.``), or a bare name that names one field of
    either; unknown or ambiguous keys raise ``ValueError`` listing the valid ones. ``tiny``: the agent's
    ``tiny`` preset (``AgentSpec.tiny``) under ``sets``."""
    spec = registry.get(agent)
    run_kw, agent_raw = _split_sets(spec, sets or {})
    try:
        agent_sets = config_tree.resolve_keys(spec.config_cls, agent_raw, _coerce, spec.defaults, f"agent {agent!r}")
    except ValueError as e:
        raise ValueError(f"{e}; run keys: {', '.join(f'run.{k}' for k in _run_keys())}") from None
    preset = spec.tiny(agent_sets) if tiny else {}
    run_kw.setdefault("seed", seed)
    run_kw.setdefault("steps", steps)
    run = RunConfig(task=task, agent=agent, **run_kw)
    run.validate()
    if not run.action_repeat:
        run = dataclasses.replace(run, action_repeat=parse_task_id(task).action_repeat)
    return run, spec.make_config({**preset, **agent_sets})


def _run_keys() -> list[str]:
    return [f.name for f in dataclasses.fields(RunConfig) if f.name not in ("task", "agent")]


def _split_sets(spec, sets: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``sets`` -> (typed run fields, raw agent keys): ``run.`` / ``agent.`` prefixes, else a bare run
    field name that is no field of the agent's config."""
    run_fields, agent_names = set(_run_keys()), config_tree.all_names(spec.config_cls)
    run_kw: dict[str, Any] = {}
    agent_raw: dict[str, Any] = {}
    for key, raw in sets.items():
        scope, dot, name = key.partition(".")
        if dot and scope == "run":
            if name not in run_fields:
                raise ValueError(f"unknown key {key!r}; run keys: {', '.join(f'run.{k}' for k in _run_keys())}")
            run_kw[name] = _coerce(RunConfig, name, raw)
        elif dot and scope == "agent":
            agent_raw[name] = raw
        elif key in run_fields and key in agent_names:
            raise ValueError(f"key {key!r} is ambiguous: write run.{key} or the agent's key")
        elif key in run_fields:
            run_kw[key] = _coerce(RunConfig, key, raw)
        else:
            agent_raw[key] = raw
    return run_kw, agent_raw


def to_dict(run: RunConfig, agent_cfg) -> dict:
    """The resolved configuration as plain data: ``{"run": {...}, "agent": {... blocks nested ...}}``."""
    return {"run": dataclasses.asdict(run), "agent": config_tree.to_dict(agent_cfg)}


def from_dict(data: dict, agent_sets: dict[str, Any] | None = None) -> tuple[RunConfig, Any]:
    """Inverse of ``to_dict`` (used by the workflow and for resuming), with ``agent_sets`` (``--set`` keys
    of the agent, e.g. another acting rule) applied over the agent section.

    Reads the nested layout and the flat one written before the blocks, whose agent section lists
    every field of the config class, read or not: there a field of a block this agent does not hold
    is left out. A field this version does not know is refused in one line."""
    unknown = sorted(set(data.get("run") or {}) - _fields(RunConfig))
    if unknown:
        raise ValueError(_not_fields("run", unknown, RunConfig, data))
    run = RunConfig(**data["run"])
    run.validate()
    spec = registry.get(run.agent)
    section = data.get("agent") or {}
    values = {**config_tree.flatten(section), **(agent_sets or {})}
    flat = not any(isinstance(v, dict) for v in section.values())
    legacy = config_tree.all_names(spec.config_cls) if flat else set()
    try:
        resolved = config_tree.resolve_keys(spec.config_cls, values, _coerce, base=spec.defaults, ignore=legacy)
    except config_tree.UnknownKeys as e:
        raise ValueError(_not_fields("agent", e.unknown, spec.config_cls, data)) from None
    return run, spec.make_config(resolved)


def _not_fields(section: str, unknown: list[str], cls: type, data: dict) -> str:
    commit = str((data.get("provenance") or {}).get("commit", "unknown"))[:12]
    return (f"{section} fields {', '.join(unknown)} are not fields of {cls.__name__} in this version of avem "
            f"(the configuration was written at commit {commit}): check that commit out to use it")
