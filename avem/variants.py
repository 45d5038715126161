"""The AVEM family's naming rule: one registry name per valid combination of the four switches.

``avem-disc-{uniform|learned}`` and ``avem-gen-{ml|elbo}-{uniform|learned}-{plan|noplan}``. The
agents (``avem.agents.avem`` registers one agent per name) and the analysis (``analysis.agents``
reads a run's switches from its name when its config is absent) both use these functions. Kept
free of torch so the analysis can import it cheaply.
"""
from __future__ import annotations

SWITCHES: tuple[str, ...] = ("model", "marginal_likelihood", "action_prior", "planning")
"""The four ablation switches of an AVEM agent (fields of ``AVEMConfig``)."""
MODELS = ("discriminative", "generative")
ACTION_PRIORS = ("uniform", "learned")


def variant_name(model: str, marginal_likelihood: bool, action_prior: str, planning: bool) -> str:
    """The registry name of a switch combination (raises for the invalid discriminative ones)."""
    if model == "discriminative":
        if planning or marginal_likelihood:
            raise ValueError("model='discriminative' conflicts with planning / marginal_likelihood")
        return f"avem-disc-{action_prior}"
    return f"avem-gen-{'ml' if marginal_likelihood else 'elbo'}-{action_prior}-{'plan' if planning else 'noplan'}"


def variants() -> dict[str, dict]:
    """Every valid combination: ``name -> switch values`` (2 discriminative + 8 generative)."""
    out = {}
    for prior in ACTION_PRIORS:
        out[variant_name("discriminative", False, prior, False)] = dict(
            model="discriminative", marginal_likelihood=False, action_prior=prior, planning=False)
    for ml in (True, False):
        for prior in ACTION_PRIORS:
            for plan in (True, False):
                out[variant_name("generative", ml, prior, plan)] = dict(
                    model="generative", marginal_likelihood=ml, action_prior=prior, planning=plan)
    return out


def study_agent(label: str) -> tuple[str, str]:
    """A study's agent label -> ``(registered agent, tag)``. ``NAME`` is the registered agent itself (tag "");
    ``NAME.TAG`` runs the registered agent NAME with its study entry's ``set`` (a variant with its own runs,
    tables rows and pairs, e.g. ``avem-gen-ml-learned-plan.noig`` with ``ml.control_info_gain=false``)."""
    name, _, tag = label.partition(".")
    return name, tag
