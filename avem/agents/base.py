"""The agent interface every registered agent implements, and the base most agents build on.

The training loop (``avem.train.loop``) owns the environment, the replay buffer and the
schedule; an agent owns its networks, optimisers and random number generators.

``AgentBase`` gives an agent its seeded generators and a checkpoint built from what it declares
(``modules``, ``optimizers``, ``generators``, ``plain_state``), so no agent lists its
``state_dict`` by hand.

Device: an agent built with ``device="cuda"`` keeps its networks, its torch generator ``gen`` and its
replay batches there; ``act`` takes and returns numpy arrays on the host whatever the device.

Shapes: ``obs`` is one observation as the environment returns it, ``(obs_dim,)`` float32
(``(3, 64, 64)`` for pixels); ``action`` is ``(act_dim,)`` float32 in [-1, 1].
"""
from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
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

    - ``gen`` (``torch.Generator`` on ``device``) and ``rng`` (``np.random.Generator``), both seeded with
      ``seed``: every random number an agent draws comes from them (never from the global generators);
    - ``device``: where the networks live; an agent builds them on the CPU (``seeded_init``: the same initial
      weights on every device), then calls ``to_device()``, which moves every declared module;
    - ``modules()``: name -> ``nn.Module`` (parameters and buffers);
    - ``optimizers()``: name -> ``torch.optim.Optimizer``;
    - ``learners()``: name -> an ``nn.Module`` that owns its optimisers (``optimizers()``: name -> optimiser),
      e.g. the soft actor-critic: declared once, checkpointed as module ``name`` and optimisers ``name.<key>``;
    - ``generators()``: name -> torch or numpy generator (default: ``gen`` and ``rng``);
    - ``plain_state``: attribute paths (``"num_updates"``, ``"ac.num_updates"``) of plain values, deep-copied:
      counters, the last metrics. An attribute is reassigned on load, so name only plain values, never an
      object something else holds a reference to (a tensor an optimiser steps).

    ``parts()`` (name -> an object with ``modules()`` and ``optimizers()``) adds each part's modules and
    optimisers to the agent's own, under ``part.name``. A checkpoint is
    ``{"modules": .., "optimizers": .., "generators": .., "plain": .., "device": ..}``; ``load_state_dict``
    refuses one whose names differ from what the agent declares. Tensors may come from either device (load
    the file with ``map_location="cpu"``); a torch generator saved on another device cannot be restored (CPU
    and CUDA generators differ), so it is reseeded from its saved state, and the run continues, no longer
    bit-identical to an uninterrupted one.
    """

    plain_state: ClassVar[tuple[str, ...]] = ()

    def __init__(self, seed: int, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.gen = torch.Generator(device=self.device).manual_seed(seed)
        self.rng = np.random.default_rng(seed)

    def to_device(self) -> None:
        """Move every declared module to ``device`` (call once the networks are built)."""
        for m in self.modules().values():
            m.to(self.device)

    def tensor(self, x: np.ndarray) -> torch.Tensor:
        """A numpy array (an observation, replay windows) as a tensor on ``device``; shares memory on the CPU."""
        return torch.as_tensor(x, device=self.device)

    @staticmethod
    @contextlib.contextmanager
    def seeded_init(seed: int) -> Iterator[None]:
        """Context for building networks: torch's global CPU generator seeded with ``seed`` inside, restored after,
        so the initial weights depend on the seed only (networks are built on the CPU; CUDA generators are left alone)."""
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield

    def initial_state(self) -> Any:
        return None

    def parts(self) -> dict[str, Any]:
        return {}

    def learners(self) -> dict[str, nn.Module]:
        return {}

    def modules(self) -> dict[str, nn.Module]:
        return {**self.learners(),
                **{f"{p}.{k}": m for p, part in self.parts().items() for k, m in part.modules().items()}}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {**{f"{n}.{k}": o for n, m in self.learners().items() for k, o in m.optimizers().items()},
                **{f"{p}.{k}": o for p, part in self.parts().items() for k, o in part.optimizers().items()}}

    def generators(self) -> dict[str, Generator]:
        return {"gen": self.gen, "rng": self.rng}

    def state_dict(self) -> dict:
        return {"modules": {k: m.state_dict() for k, m in self.modules().items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
                "generators": {k: _generator_state(g) for k, g in self.generators().items()},
                "plain": {k: copy.deepcopy(_get(self, k)) for k in self.plain_state}, "device": self.device.type}

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
        same_device = state.get("device", "cpu") == self.device.type
        for k, g in declared["generators"].items():
            if isinstance(g, torch.Generator) and not same_device:
                g.manual_seed(_seed_from(state["generators"][k]))
            else:
                _set_generator_state(g, state["generators"][k])
        for k in self.plain_state:
            owner, _, attr = k.rpartition(".")
            setattr(_get(self, owner) if owner else self, attr, copy.deepcopy(state["plain"][k]))


def _get(obj: Any, path: str) -> Any:
    """``obj.a.b`` for ``path = "a.b"``."""
    return functools.reduce(getattr, path.split("."), obj)


def _generator_state(g: Generator):
    return g.get_state() if isinstance(g, torch.Generator) else g.bit_generator.state


def _seed_from(state: torch.Tensor) -> int:
    """A seed derived from a torch generator's saved state (for a generator moved to another device)."""
    return int.from_bytes(hashlib.sha256(state.cpu().numpy().tobytes()).digest()[:8], "little")


def _set_generator_state(g: Generator, state) -> None:
    if isinstance(g, torch.Generator):
        g.set_state(state)
    else:
        g.bit_generator.state = state
