"""Planning as inference of q(a_t): the importance-sampling core, action priors, the latent planner."""
from avem.planning.importance import ActionPosterior, infer_action_posterior
from avem.planning.latent import LatentPlanner
from avem.planning.priors import GaussianActionPrior, MixtureProposal, UniformActionPrior

__all__ = ["ActionPosterior", "GaussianActionPrior", "LatentPlanner", "MixtureProposal",
           "UniformActionPrior", "infer_action_posterior"]
