"""The AVEM bound's terms as pure functions (``terms``); see ``avem/objective/README.md``."""
from avem.objective.terms import (
    effective_sample_size,
    free_nats,
    gaussian_kl,
    gaussian_log_prob,
    information_gain,
    iw_log_marginal,
    linear_anneal,
    normalized_weights,
    uniform_box_kl,
    weighted_sum,
)

__all__ = ["effective_sample_size", "free_nats", "gaussian_kl", "gaussian_log_prob", "information_gain",
           "iw_log_marginal", "linear_anneal", "normalized_weights", "uniform_box_kl", "weighted_sum"]
