"""The agent interface every registered agent implements, and the base most agents build on.

The training loop (``avem.train.loop``) owns the environment, the replay buffer and the
schedule; an agent owns its networks, optimisers and random number generators.

``AgentBase`` gives an agent its seeded generators and a checkpoint built from what it declares
(``modules``, ``optimizers``, ``generators``, ``plain_state``), so no agent lists its
``state_dict`` by hand.

Shapes: ``obs`` is one observation as the environment returns it, ``(obs_dim,)`` float32
(``(3, 64, 64)`` for pixels); ``action`` is ``(act_dim,)`` float32 in [-1, 1].
"""
from __future__ import annotations

import contextlib
import copy
import functools
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn

if TYPE_CHECKING:  # the agents package does not depend on the training package
    from avem.train.replay import ReplayBuffer


@runtime_checkable
class Agent(Protocol):
    """What the training loop calls. Constructor: ``Agent(obs_space, act_space, cfg, seed)``."""

    def initial_state(self) -> Any:
        """Per-episode recurrent state (frame stack, RNN state, planner warm start); None if stateless."""

    def act(self, obs: np.ndarray, state: Any, explore: bool) -> tuple[np.ndarray, Any, dict[str, np.ndarray]]:
        """``obs: (obs_dim,)`` -> ``(action: (act_dim,) float32 in [-1,1], next state, extras)``.

        ``explore=False`` is evaluation: the deterministic (mean / planned-mean) action.
        ``extras``: per-step data the loop stores in replay beside the transition (``{}`` for most
        agents; the AVEM planners keep the planned ``q(a_t)`` there for the action prior's consolidation).
        The loop also logs the scalar ones (0-d) as episode means, ``train/<name>`` (``avem.train.schedule``).
        """

    def update(self, buffer: ReplayBuffer) -> dict[str, float]:
        """One gradient update from the buffer; returns scalar metrics (every loss term, by name)."""

    def state_dict(self) -> dict:
        """Everything needed to resume exactly: networks, optimisers, RNG states."""

    def load_state_dict(self, state: dict) -> None:
        """Inverse of ``state_dict``."""


def obs_dim(space: gym.Space) -> int:
    """Flat size of a Box observation space."""
    return int(np.prod(space.shape))


def flat_obs_dim(space: gym.Space, agent: str, hint: str = "") -> int:
    """``obs_dim`` of a flat ``(obs_dim,)`` space; any other shape (pixels) is refused, naming ``agent`` and ``hint``."""
    if len(space.shape) != 1:
        raise ValueError(f"{agent} takes flat vector observations, got shape {space.shape}{hint}")
    return obs_dim(space)


Generator = torch.Generator | np.random.Generator


class AgentBase:
    """Seeded generators and a generic checkpoint: ``state_dict`` saves what the agent declares.

    - ``gen`` (``torch.Generator``) and ``rng`` (``np.random.Generator``), both seeded with ``seed``:
      every random number an agent draws comes from them (never from the global generators);
    - ``modules()``: name -> ``nn.Module`` (parameters and buffers);
    - ``optimizers()``: name -> ``torch.optim.Optimizer``;
    - ``generators()``: name -> torch or numpy generator (default: ``gen`` and ``rng``);
    - ``plain_state``: attribute paths (``"num_updates"``, ``"ac.num_updates"``) of plain values, deep-copied:
      counters, the last metrics. An attribute is reassigned on load, so name only plain values, never an
      object something else holds a reference to (a tensor an optimiser steps).

    ``parts()`` (name -> an object with ``modules()`` and ``optimizers()``) adds each part's modules and
    optimisers to the agent's own, under ``part.name``. A checkpoint is
    ``{"modules": .., "optimizers": .., "generators": .., "plain": ..}``; ``load_state_dict`` refuses one
    whose names differ from what the agent declares.
    """

    plain_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)

    @staticmethod
    @contextlib.contextmanager
    def seeded_init(seed: int) -> Iterator[None]:
        """Context for building networks: torch's global generator seeded with ``seed`` inside, restored after,
        so the initial weights depend on the seed only."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield

    def initial_state(self) -> Any:
        return None

    def parts(self) -> dict[str, Any]:
        return {}

    def modules(self) -> dict[str, nn.Module]:
        return {f"{p}.{k}": m for p, part in self.parts().items() for k, m in part.modules().items()}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {f"{p}.{k}": o for p, part in self.parts().items() for k, o in part.optimizers().items()}

    def generators(self) -> dict[str, Generator]:
        return {"gen": self.gen, "rng": self.rng}

    def state_dict(self) -> dict:
        return {"modules": {k: m.state_dict() for k, m in self.modules().items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
                "generators": {k: _generator_state(g) for k, g in self.generators().items()},
                "plain": {k: copy.deepcopy(_get(self, k)) for k in self.plain_state}}

    def load_state_dict(self, state: dict) -> None:
        declared = {"modules": self.modules(), "optimizers": self.optimizers(), "generators": self.generators(),
                    "plain": dict.fromkeys(self.plain_state)}
        if not set(declared) <= set(state):
            raise KeyError(f"the checkpoint's layout (keys {', '.join(sorted(state))}) is not this code's: another "
                           "version of avem wrote it (the run's config.yaml records its commit); use that commit")
        for section, items in declared.items():
            if set(items) != set(state[section]):
                raise KeyError(f"checkpoint {section} {sorted(state[section])} differ from the agent's {sorted(items)}")
        for k, m in declared["modules"].items():
            m.load_state_dict(state["modules"][k])
        for k, o in declared["optimizers"].items():
            o.load_state_dict(state["optimizers"][k])
        for k, g in declared["generators"].items():
            _set_generator_state(g, state["generators"][k])
        for k in self.plain_state:
            owner, _, attr = k.rpartition(".")
            setattr(_get(self, owner) if owner else self, attr, copy.deepcopy(state["plain"][k]))


def _get(obj: Any, path: str) -> Any:
    """``obj.a.b`` for ``path = "a.b"``."""
    return functools.reduce(getattr, path.split("."), obj)


def _generator_state(g: Generator):
    return g.get_state() if isinstance(g, torch.Generator) else g.bit_generator.state


def _set_generator_state(g: Generator, state) -> None:
    if isinstance(g, torch.Generator):
        g.set_state(state)
    else:
        g.bit_generator.state = state
