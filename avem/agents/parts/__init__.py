"""The parts of the AVEM agent (``avem.agents.avem``), one per switch, each owning its networks,
optimiser, losses and metrics:

- ``belief``: the latent state, an RSSM (``model='generative'``) or a GRU history encoder
  (``'discriminative'``), behind one interface: observe replay windows, filter one step;
- ``action_prior``: ``p_a``, uniform or learned, with its consolidation loss; it is also the
  action-KL rule of the soft actor-critic (``avem.nets.action_kl``);
- ``actor``: what picks ``q(a_t)`` at acting time, the amortised policy or the planner.

Every part lists its ``modules()`` and ``optimizers()`` (name -> object), from which the agent
builds its checkpoint generically.
"""
from avem.agents.parts.action_prior import LearnedPrior, UniformPrior, make_prior
from avem.agents.parts.actor import PlanningActor, PolicyActor, make_actor
from avem.agents.parts.belief import Observed, RecurrentBelief, RSSMBelief, make_belief

__all__ = ["LearnedPrior", "Observed", "PlanningActor", "PolicyActor", "RSSMBelief", "RecurrentBelief",
           "UniformPrior", "make_actor", "make_belief", "make_prior"]
