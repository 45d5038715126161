"""``AgentBase``: seeded generators and the checkpoint built from what an agent declares."""
from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from avem.agents import registry
from avem.agents.base import AgentBase

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


class Counter(AgentBase):
    plain_state = ("steps", "net_meta.last")

    def __init__(self, seed: int):
        super().__init__(seed)
        with self.seeded_init(seed):
            self.net = torch.nn.Linear(2, 2)
        self.opt = torch.optim.Adam(self.net.parameters())
        self.net_meta = type("Meta", (), {})()
        self.steps, self.net_meta.last = 0, {"loss": 0.0}

    def modules(self) -> dict:
        return {"net": self.net}

    def optimizers(self) -> dict:
        return {"net": self.opt}


def test_checkpoint_round_trip_restores_everything_declared():
    a = Counter(0)
    a.rng.normal(size=3), torch.randn(2, generator=a.gen)
    a.net(torch.ones(1, 2)).sum().backward()
    a.opt.step()
    a.steps, a.net_meta.last["loss"] = 7, 1.5
    state = copy.deepcopy(a.state_dict())
    b = Counter(1)
    b.load_state_dict(state)
    assert b.steps == 7 and b.net_meta.last == {"loss": 1.5} and b.net_meta.last is not state["plain"]["net_meta.last"]
    assert torch.equal(a.net.weight, b.net.weight) and b.opt.state_dict()["state"].keys() == a.opt.state_dict()["state"].keys()
    assert a.rng.normal() == b.rng.normal() and torch.equal(torch.randn(3, generator=a.gen), torch.randn(3, generator=b.gen))


def test_initialisation_depends_on_the_seed_only():
    torch.manual_seed(1)
    a = Counter(3)
    torch.manual_seed(2)
    assert torch.equal(a.net.weight, Counter(3).net.weight)


def test_a_checkpoint_of_other_pieces_is_refused():
    state = Counter(0).state_dict()
    del state["optimizers"]["net"]
    with pytest.raises(KeyError, match="optimizers"):
        Counter(0).load_state_dict(state)


def test_a_checkpoint_of_another_layout_is_refused_naming_why():
    old = {"ac": {}, "model": {}, "ac_optim": {}, "gen": None, "rng": None, "num_updates": 3}  # a flat layout
    with pytest.raises(KeyError, match="another version of avem wrote it"):
        Counter(0).load_state_dict(old)


class WithLearner(AgentBase):
    """A module that owns its optimisers (as ``SoftActorCritic``), declared once."""

    def __init__(self, seed: int):
        super().__init__(seed)
        self.learner = torch.nn.Linear(2, 1)
        self.learner_opt = torch.optim.Adam(self.learner.parameters())
        self.learner.optimizers = lambda: {"adam": self.learner_opt}

    def learners(self) -> dict:
        return {"learner": self.learner}


def test_a_learner_is_checkpointed_with_its_optimisers():
    state = WithLearner(0).state_dict()
    assert list(state["modules"]) == ["learner"] and list(state["optimizers"]) == ["learner.adam"]
    WithLearner(1).load_state_dict(state)
    sac = registry.get("sac")
    state = sac.factory(OBS, ACT, sac.make_config(sac.tiny()), 0).state_dict()
    assert list(state["modules"]) == ["ac"] and list(state["optimizers"]) == ["ac.actor", "ac.critic", "ac.alpha"]
    old = {"ac": state["modules"]["ac"], "ac_optim": {}, "gen": None, "rng": None, "num_updates": 3}
    with pytest.raises(KeyError, match="another version of avem wrote it"):
        sac.factory(OBS, ACT, sac.make_config(sac.tiny()), 0).load_state_dict(old)


@pytest.mark.parametrize("name", registry.names())
def test_every_agent_round_trips_its_checkpoint(name):
    spec = registry.get(name)
    cfg = spec.make_config(spec.tiny())
    state = copy.deepcopy(spec.factory(OBS, ACT, cfg, 0).state_dict())
    other = spec.factory(OBS, ACT, cfg, 5)
    other.load_state_dict(state)
    for k, m in other.state_dict()["modules"].items():
        for (p, va), vb in zip(m.items(), state["modules"][k].values()):
            assert torch.equal(va, vb), (k, p)
