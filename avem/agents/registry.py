"""The agent registry: a name -> (class, config dataclass, description, default overrides).

Adding an agent is one class plus one ``register(...)`` call (see README, "Adding a baseline").
Unknown names fail loudly and list what exists.
"""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym

from avem import config_tree


@dataclass(frozen=True)
class AgentSpec:
    """One registry entry."""

    name: str
    factory: Callable[..., Any]
    """``factory(obs_space, act_space, cfg, seed) -> Agent`` (usually the agent class); a factory that also
    takes ``device=`` (every built-in agent) can run on CUDA (``RunConfig.device``)."""
    config_cls: type
    """Frozen dataclass holding every hyperparameter, one docstring per field; blocks are nested dataclasses
    (``avem.config_tree``)."""
    description: str
    """One line for ``avem agents``."""
    defaults: dict = field(default_factory=dict)
    """Overrides of ``config_cls``'s own settings for this entry (variants share one config class)."""

    def tiny(self, overrides: dict | None = None) -> dict:
        """The ``tiny`` preset (small sizes for smoke tests, the quick and CI studies, ``avem train --tiny``):
        ``{key: value}`` over the blocks this entry holds with ``overrides``' switches (``avem.config_tree.tiny``)."""
        values = config_tree.resolve_keys(self.config_cls, {**self.defaults, **(overrides or {})})
        return config_tree.tiny(config_tree.provisional(self.config_cls, values))

    def make_config(self, overrides: dict | None = None):
        """The entry's config with ``defaults`` then ``overrides`` applied (typed; keys bare or dotted:
        ``avem.config_tree``), validated."""
        cfg = config_tree.make(self.config_cls, {**self.defaults, **(overrides or {})})
        validate = getattr(cfg, "validate", None)
        if validate is not None:
            validate()
        return cfg


_REGISTRY: dict[str, AgentSpec] = {}


def register(name: str, factory, config_cls: type, description: str, **defaults) -> AgentSpec:
    """Register an agent under ``name``. ``defaults`` override settings of ``config_cls`` (not of its blocks)."""
    if name in _REGISTRY:
        raise ValueError(f"agent {name!r} is already registered")
    if not dataclasses.is_dataclass(config_cls):
        raise TypeError(f"config_cls for {name!r} must be a dataclass, got {config_cls!r}")
    known = config_tree.own_settings(config_cls)
    unknown = sorted(set(defaults) - known)
    if unknown:
        raise ValueError(f"agent {name!r}: defaults name unknown config fields {unknown}; known: {sorted(known)}")
    spec = AgentSpec(name, factory, config_cls, description, dict(defaults))
    _REGISTRY[name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove an entry (tests register throwaway agents)."""
    _REGISTRY.pop(name, None)


def get(name: str) -> AgentSpec:
    """The entry for ``name``; raises ``KeyError`` listing every registered agent."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown agent {name!r}; registered agents: {', '.join(sorted(_REGISTRY))}") from None


def names() -> list[str]:
    """Every registered agent name, sorted."""
    _load_builtin()
    return sorted(_REGISTRY)


def takes_device(name: str) -> bool:
    """Whether the factory of ``name`` takes a ``device`` keyword (an agent without one runs on the CPU only)."""
    return "device" in inspect.signature(get(name).factory).parameters


def build(name: str, obs_space: gym.Space, act_space: gym.Space, cfg, seed: int, device: str = "cpu"):
    """Instantiate the agent ``name`` with a resolved config on ``device`` (``cpu`` or ``cuda``; an agent
    whose factory takes no ``device`` is built as before and must run on the CPU)."""
    if takes_device(name):
        return get(name).factory(obs_space, act_space, cfg, seed, device=device)
    if device != "cpu":
        raise ValueError(f"agent {name!r} cannot run on {device}: its constructor takes no device argument")
    return get(name).factory(obs_space, act_space, cfg, seed)


def _load_builtin() -> None:
    # Importing the package registers the built-in agents (each module calls ``register``).
    import avem.agents  # noqa: F401
