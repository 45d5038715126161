"""Reusable network pieces: MLPs, squashed Gaussian policies, twin soft Q critics."""
from avem.nets.mlp import mlp
from avem.nets.distributions import TanhNormal
from avem.nets.actor_critic import SoftActorCritic, ActorCriticConfig

__all__ = ["mlp", "TanhNormal", "SoftActorCritic", "ActorCriticConfig"]
