"""Agent names -> ablation switches, display order, labels and colours (one mapping for every figure).

AVEM variant names encode their four switches: ``avem-disc-{uniform|learned}`` and
``avem-gen-{ml|elbo}-{uniform|learned}-{plan|noplan}`` (the naming rule: ``avem.variants``). A run's
``config.yaml`` agent section (fields ``model``, ``marginal_likelihood``, ``action_prior``,
``planning``) overrides the name when present; the name is used only when the config is absent.

Colours depend on the agent's NAME only, never on which other agents are present, so the same
agent has the same colour in every figure of every study: baselines in greys/browns, the
discriminative AVEM variants in greens, generative ELBO variants in blues, generative
marginal-likelihood variants in reds; within a family the learned prior is the darker shade and
planning the solid line (no planning: dashed).
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from avem.variants import SWITCHES as NAMED_SWITCHES
from avem.variants import study_agent, variants

_VARIANTS = variants()

# Baselines in a fixed order and colour (model-free browns, model-based purple/pink, the oracle
# black); any other name gets a stable fallback colour.
BASELINES: dict[str, str] = {"random": "#9e9e9e", "sac": "#8c564b", "sb3-sac": "#c49c94", "sac-state": "#222222",
                             "planet": "#9467bd", "dreamer": "#e377c2"}
_BASELINE_MARKERS = {"random": "x", "sac": "s", "sb3-sac": "s", "sac-state": "h", "planet": "<", "dreamer": ">"}
ORACLES: frozenset[str] = frozenset({"sac-state"})
MODEL_BASED: frozenset[str] = frozenset({"planet", "dreamer"})
"""The baselines that learn a world model and plan or imagine with it."""

FAMILIES: tuple[str, ...] = ("baselines", "discriminative AVEM", "generative AVEM, no planning",
                             "generative AVEM, planning", "model-based baselines", "other")
"""Agent families in panel order (small multiples: one panel per family, see :func:`family`)."""

_FAMILY = {  # (model, marginal_likelihood) -> shades [uniform-noplan, uniform-plan, learned-noplan, learned-plan]
    ("discriminative", False): ["#74c476", "#74c476", "#238b45", "#238b45"],
    ("generative", False): ["#6baed6", "#4292c6", "#2171b5", "#08306b"],
    ("generative", True): ["#fc9272", "#fb6a4a", "#cb181d", "#67000d"],
}
_FALLBACK = ["#bcbd22", "#17becf", "#ff7f0e", "#7f7f7f", "#dbdb8d", "#9edae5"]


@dataclass(frozen=True)
class Switches:
    """The ablation switches of an AVEM agent (``None`` for a non-AVEM agent): the four its name encodes, and
    whether its planner is paid the information gain."""

    model: str
    marginal_likelihood: bool
    action_prior: str
    planning: bool
    control_info_gain: bool = True
    """``ml.control_info_gain``; only a planning marginal-likelihood agent can be without it (every other agent's
    planner, if any, has no information gain to drop), so it is True for all others."""


SWITCHES: tuple[str, ...] = (*NAMED_SWITCHES, "control_info_gain")
"""The switches, as columns of runs.csv and as the ablations pair them."""


def switches_from_name(agent: str) -> Switches | None:
    """The switches of an AVEM variant name (``avem.variants``; a study variant ``NAME.TAG`` counts as NAME,
    its config tells the rest); None for baselines and unknown names."""
    sw = _VARIANTS.get(base(agent))
    return Switches(**sw) if sw is not None else None


def base(agent: str) -> str:
    """The registered agent of a study label (``NAME.TAG`` -> ``NAME``): what its colour and family follow."""
    return study_agent(agent)[0]


def is_variant(agent: str) -> bool:
    """A study variant ``NAME.TAG`` of a registered agent (drawn dash-dotted, paired only with NAME)."""
    return base(agent) != agent


def parse_set(text) -> dict[str, str]:
    """A ``set`` cell of ``expected.csv`` / ``runs.csv`` (``key=value; ...``, written by
    ``avem.study.AgentEntry.set_text``) -> ``{key: value}``, values as text; {} for an empty or missing cell.
    Items split only at a ``; `` followed by a setting key and ``=``, so a value may hold ``; `` itself."""
    if not isinstance(text, str) or not text.strip():
        return {}
    items = re.split(r"; (?=[A-Za-z_][\w.]*=)", text)
    return {k.strip(): v.strip() for k, _, v in (item.partition("=") for item in items)}


def switches_from_config(agent_section: dict | None) -> Switches | None:
    """Switches from a run's ``config.yaml`` ``agent`` section; None when it lacks any of them."""
    if not isinstance(agent_section, dict) or not all(k in agent_section for k in NAMED_SWITCHES):
        return None
    ml, plan = bool(agent_section["marginal_likelihood"]), bool(agent_section["planning"])
    ml_block = agent_section.get("ml") if isinstance(agent_section.get("ml"), dict) else agent_section  # nested or flat
    info_gain = bool(ml_block.get("control_info_gain", True)) or not (ml and plan)
    return Switches(str(agent_section["model"]), ml, str(agent_section["action_prior"]), plan, info_gain)


def sort_key(agent: str) -> tuple:
    """Display order: baselines (random, sac, sb3-sac, sac-state, planet, dreamer), AVEM variants by family, others;
    a study variant ``NAME.TAG`` right after NAME (names sort before their ``.TAG`` variants)."""
    if base(agent) in BASELINES:
        return (0, list(BASELINES).index(base(agent)), agent)
    sw = switches_from_name(agent)
    if sw is not None:
        fam = list(_FAMILY).index((sw.model, sw.marginal_likelihood))
        return (1, fam, sw.action_prior != "uniform", sw.planning, agent)
    return (2, 0, agent)


def order(agents) -> list[str]:
    """``agents`` (any iterable, duplicates allowed) in display order."""
    return sorted(set(agents), key=sort_key)


def colour(agent: str) -> str:
    """The agent's colour: a pure function of its name (see the module docstring); a variant has NAME's."""
    if base(agent) in BASELINES:
        return BASELINES[base(agent)]
    sw = switches_from_name(agent)
    if sw is not None:
        shades = _FAMILY[(sw.model, sw.marginal_likelihood)]
        return shades[2 * (sw.action_prior == "learned") + sw.planning]
    return _FALLBACK[zlib.crc32(agent.encode()) % len(_FALLBACK)]


VARIANT_STYLES: tuple = ("-.", (0, (6, 1.5, 1, 1.5, 1, 1.5)), (0, (1, 1)))
"""Line styles of the study variants of one agent, in their tags' sorted order: dash-dot, dash-dot-dot, dense dots."""


def linestyle(agent: str, drawn=()) -> str | tuple:
    """Solid for planning agents and baselines, dashed for AVEM variants without planning, dotted for sb3-sac;
    a study variant ``NAME.TAG`` has NAME's colour and marker and the ``VARIANT_STYLES`` entry of its rank among
    the variants of NAME in ``drawn`` (the agents of the panel; dash-dotted when it is the only one)."""
    if is_variant(agent):
        peers = sorted({a for a in (*drawn, agent) if is_variant(a) and base(a) == base(agent)})
        return VARIANT_STYLES[peers.index(agent) % len(VARIANT_STYLES)]
    if agent == "sb3-sac":
        return ":"
    sw = switches_from_name(agent)
    return "--" if sw is not None and not sw.planning else "-"


def marker(agent: str) -> str:
    """Marker shape, distinct per switch combination so colour is not the only cue."""
    sw = switches_from_name(agent)
    if sw is None:
        return _BASELINE_MARKERS.get(base(agent), "H")
    return {("uniform", False): "o", ("uniform", True): "^",
            ("learned", False): "D", ("learned", True): "v"}[(sw.action_prior, sw.planning)]


def label(agent: str) -> str:
    """Legend label: the name, with ORACLE marked (it sees the full state on every task)."""
    return f"{agent} (ORACLE, full state)" if agent in ORACLES else agent


def family(agent: str) -> str:
    """The agent's family (one of ``FAMILIES``): model-free and model-based baselines, and the AVEM variants
    grouped by model and planning as their name encodes them (``avem.variants``); unknown names: 'other'."""
    if base(agent) in MODEL_BASED:
        return "model-based baselines"
    if base(agent) in BASELINES:
        return "baselines"
    sw = switches_from_name(agent)
    if sw is None:
        return "other"
    if sw.model == "discriminative":
        return "discriminative AVEM"
    return "generative AVEM, planning" if sw.planning else "generative AVEM, no planning"


def by_family(agents) -> list[tuple[str, list[str]]]:
    """``[(family, its agents in display order)]`` for the families present in ``agents``, in ``FAMILIES`` order."""
    present = order(agents)
    groups = [(f, [a for a in present if family(a) == f]) for f in FAMILIES]
    return [(f, members) for f, members in groups if members]


def _shared_tokens(fam: str) -> list[str | None]:
    """Per position of the ``-``-separated name, the token every registered AVEM variant of ``fam`` has there
    (None where they differ); [] for a family without registered variants."""
    names = [n.split("-") for n in _VARIANTS if family(n) == fam]
    if not names or len({len(n) for n in names}) != 1:
        return []
    return [col[0] if len(set(col)) == 1 else None for col in zip(*names)]


def family_title(fam: str, sep: str = " ") -> str:
    """Panel title: the family and, for AVEM families, the name pattern after ``sep``
    (``generative AVEM, planning (avem-gen-*-*-plan)``)."""
    shared = _shared_tokens(fam)
    return f"{fam}{sep}({'-'.join(t or '*' for t in shared)})" if shared else fam


def short_label(agent: str) -> str:
    """Legend label inside its family's panel: an AVEM variant's name without the tokens its whole family
    shares (``avem-gen-ml-learned-plan`` -> ``ml-learned``, the title gives the pattern); others: :func:`label`."""
    name, tag = study_agent(agent)
    shared = _shared_tokens(family(agent))
    tokens = name.split("-")
    if not shared or len(tokens) != len(shared):
        return label(agent)
    return "-".join(t for t, s in zip(tokens, shared) if s is None) + (f".{tag}" if tag else "")
