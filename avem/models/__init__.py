"""Latent models: the RSSM (generative) and the recurrent history encoder (discriminative)."""
from avem.models.recurrent import RecurrentEncoder
from avem.models.rssm import RSSM, ModelLoss, RSSMConfig

__all__ = ["RSSM", "ModelLoss", "RSSMConfig", "RecurrentEncoder"]
