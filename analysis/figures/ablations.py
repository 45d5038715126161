"""Figure 3: paired ablations, probability of improvement P(with > without) with 95% CIs.

A pair is two AVEM variants that differ in exactly ONE switch (``avem/objective/README.md``), all
others held fixed: marginal-likelihood term (ml vs elbo), action prior (learned vs uniform),
model (generative vs discriminative; the discriminative agent has no marginal-likelihood term and
no planning, so its partner is the generative ELBO agent without planning), planning (plan vs
noplan), and the information gain in planning (``ml.control_info_gain``: a study variant
``avem-gen-ml-*-plan.TAG`` with it false, against its registered agent). A study variant ``NAME.TAG``
pairs with NAME, as its ``set`` may change more than switches; one whose switches equal NAME's (its
``set`` changes other settings, e.g. ``ml.beta_ml_end``) is paired with NAME in the panel ``study_variant``.
Two variants of one NAME pair when one's ``set`` is the other's plus ONE setting (``runs.csv``'s ``set``
column, from the study config): in that switch's panel when the setting changes a switch (e.g.
``.beta01-noig`` = ``.beta01`` + ``ml.control_info_gain: false``), else in ``study_variant`` with the
variant holding the extra setting as "with". A pair appears only when both sides have runs that reached the
budget, on the tasks they share. P(X > Y) and its CI are ``analysis.stats.probability_of_improvement_ci``
(stratified, independent bootstrap of both sides; Agarwal et al. 2021); ``p_value`` is the two-sided stratified
permutation p of P under no effect (``analysis.stats.probability_of_improvement_pvalue``), since with few
runs the percentile CI has zero width whenever one side's runs all beat the other's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import agents as A
from analysis import stats, style
from analysis.scores import matrix, set_aside_note

# switch -> (value that counts as "with", value that counts as "without", panel title)
ABLATIONS: dict[str, tuple] = {
    "marginal_likelihood": (True, False, "Marginal-likelihood term: with (ml) vs without (elbo)"),
    "action_prior": ("learned", "uniform", "Action prior: learned vs uniform"),
    "model": ("generative", "discriminative", "Model: generative vs discriminative"),
    "planning": (True, False, "Planning: with (plan) vs none (noplan)"),
    "control_info_gain": (True, False, "Information gain in planning: with vs without (model keeps the term)"),
    "study_variant": (None, None, "Study variant vs its registered agent or a variant one setting apart"),
}
POI_COLUMNS = ["budget", "switch", "with_agent", "without_agent", "poi", "ci_low", "ci_high", "p_value", "n_tasks",
               "n_runs_with", "n_runs_without", "tasks"]


def switch_table(runs: pd.DataFrame, agents) -> dict[str, A.Switches]:
    """``{agent: Switches}`` for AVEM agents: from ``runs.csv``'s switch columns (config wins), else the name."""
    out = {}
    for agent in agents:
        sw = None
        if not runs.empty and "model" in runs.columns:
            r = runs[(runs["agent"] == agent) & (runs["switch_source"].astype(object).fillna("") != "")]
            if not r.empty:
                r = r.iloc[0]
                sw = A.Switches(str(r["model"]), _bool(r["marginal_likelihood"]), str(r["action_prior"]),
                                _bool(r["planning"]), _bool(r.get("control_info_gain", True)))  # older runs.csv: no column
        out[agent] = sw or A.switches_from_name(agent)
    return {a: s for a, s in out.items() if s is not None}


def set_table(runs: pd.DataFrame, agents) -> dict[str, dict[str, str]]:
    """``{agent: its study entry's set}`` from ``runs.csv``'s ``set`` column (older tables: no column, {})."""
    if runs.empty or "set" not in runs.columns:
        return {}
    first = runs.drop_duplicates("agent").set_index("agent")["set"]
    return {a: A.parse_set(first[a]) for a in agents if a in first.index}


def _bool(v) -> bool:
    return bool(v) if isinstance(v, (bool, np.bool_)) else str(v).strip().lower() in ("true", "1", "yes")


def pairs(switches: dict[str, A.Switches], sets: dict[str, dict] | None = None) -> list[tuple[str, str, str]]:
    """``[(switch, with_agent, without_agent)]``: agents differing in exactly that switch, in display order, then
    the pairs of study variants of one agent whose ``sets`` (``set_table``) differ by one added setting."""
    out = []
    for name, (on, off, _) in ABLATIONS.items():
        if name == "study_variant":  # not a switch: a variant whose switches equal its registered agent's
            out += [(name, a, A.base(a)) for a in A.order(switches)
                    if A.is_variant(a) and switches.get(A.base(a)) == switches[a]]
            continue
        for a in A.order(switches):
            if getattr(switches[a], name) != on:
                continue
            for b in A.order(switches):
                sa, sb = switches[a], switches[b]
                others = [s for s in A.SWITCHES if s != name]
                if (A.is_variant(a) or A.is_variant(b)) and b != A.base(a) and a != A.base(b):
                    continue  # a variant's set may change more than its switches: it pairs with its registered agent only
                if getattr(sb, name) == off and all(getattr(sa, s) == getattr(sb, s) for s in others):
                    out.append((name, a, b))
    return out + variant_pairs(switches, sets or {})


def variant_pairs(switches: dict[str, A.Switches], sets: dict[str, dict]) -> list[tuple[str, str, str]]:
    """Pairs of two study variants of one registered agent where ``sets[a]`` is ``sets[b]`` plus one setting:
    ``(switch, with, without)`` when that setting changes exactly one switch, else ``("study_variant", a, b)``."""
    out = []
    names = [a for a in A.order(switches) if A.is_variant(a) and a in sets]
    for a in names:
        for b in names:
            sa, sb = sets[a], sets[b]
            if (A.base(a) != A.base(b) or len(sa) != len(sb) + 1
                    or any(k not in sa or sa[k] != v for k, v in sb.items())):
                continue
            changed = [s for s in A.SWITCHES if getattr(switches[a], s) != getattr(switches[b], s)]
            if not changed:
                out.append(("study_variant", a, b))
            elif len(changed) == 1:
                name = changed[0]
                out.append((name, a, b) if getattr(switches[a], name) == ABLATIONS[name][0] else (name, b, a))
    return out


def poi_rows(scores: pd.DataFrame, switches: dict, sets: dict, budget: int, seed: int,
             reps: int) -> tuple[list[dict], list[str]]:
    """One row per pair present at this budget (see module docstring); notes on pairs left out."""
    rows, notes = [], []
    for name, a, b in pairs(switches, sets):
        tasks = sorted(set(scores.loc[scores["agent"] == a, "task"]) & set(scores.loc[scores["agent"] == b, "task"]))
        if not tasks:
            notes.append(f"{a} vs {b}: no shared task reached the budget")
            continue
        x, nx = matrix(scores, a, tasks)
        y, ny = matrix(scores, b, tasks)
        notes += [n for n in (nx, ny) if n]
        p, ci = stats.probability_of_improvement_ci(x, y, reps=reps, seed=seed)
        rows.append({"budget": budget, "switch": name, "with_agent": a, "without_agent": b, "poi": p,
                     "ci_low": ci[0], "ci_high": ci[1],
                     "p_value": stats.probability_of_improvement_pvalue(x, y, reps=reps, seed=seed),
                     "n_tasks": len(tasks), "n_runs_with": x.shape[0],
                     "n_runs_without": y.shape[0], "tasks": " ".join(tasks)})
    return rows, notes


def _short(agent: str) -> str:
    return agent.removeprefix("avem-")


def figure(rows: pd.DataFrame, budget: int, out_dir: Path, note: str | None) -> list[Path]:
    """Forest plot: one panel per switch, one row per pair; dotted line at P = 0.5 (no difference)."""
    style.setup()
    groups = [s for s in ABLATIONS if (rows["switch"] == s).any()]
    heights = [max(1, int((rows["switch"] == s).sum())) for s in groups]
    frame = style.Frame(9.0, 0.9 + 0.75 * len(groups) + 0.5 * sum(heights), note=note)
    axes = frame.main.subplots(len(groups), 1, sharex=True, squeeze=False,
                               gridspec_kw={"height_ratios": [h + 0.8 for h in heights]})
    for ax, s in zip(axes[:, 0], groups):
        r = rows[rows["switch"] == s].reset_index(drop=True)
        y = np.arange(len(r))[::-1]
        for yi, row in zip(y, r.itertuples()):
            c = A.colour(row.with_agent)
            ax.plot([row.ci_low, row.ci_high], [yi, yi], color=c, lw=6, alpha=0.45, solid_capstyle="butt")
            ax.plot([row.poi], [yi], marker="|", ms=14, mew=2.2, color=c)
        ax.axvline(0.5, color="#444444", ls=":", lw=1)
        ax.set_yticks(y, [f"{_short(row.with_agent)}  vs  {_short(row.without_agent)}\n(tasks {row.n_tasks}, "
                          f"runs per task {row.n_runs_with} vs {row.n_runs_without})" for row in r.itertuples()])
        ax.set_ylim(-0.6, len(r) - 0.4)
        ax.set_title(ABLATIONS[s][2], loc="left")
    axes[-1, 0].set_xlim(-0.02, 1.02)
    axes[-1, 0].set_xlabel("probability of improvement P(with > without)")
    frame.main.suptitle(f"Paired ablations at {style.fmt_steps(budget)} simulator steps (95% stratified bootstrap CI)")
    return frame.save(out_dir, f"ablations_{style.fmt_steps(budget)}")


def figures(per_budget: dict, runs: pd.DataFrame, out_dir: Path, tables_dir: Path, seed: int, reps: int,
            missing: str | None) -> list[dict]:
    """Every budget's ablation figure and the ``ablations`` table; returns manifest entries."""
    entries, all_rows = [], []
    for b, scores in per_budget.items():
        tag = style.fmt_steps(b)
        agents = scores["agent"].unique() if not scores.empty else []
        switches, sets = switch_table(runs, agents), set_table(runs, agents)
        rows, notes = poi_rows(scores, switches, sets, b, seed, reps) if not scores.empty else ([], [])
        all_rows += rows
        if not rows:
            why = (f"no run reached {b} simulator steps" if scores.empty else
                   "no pair of AVEM variants differing in exactly one switch has runs at this budget"
                   + (" (" + "; ".join(notes) + ")" if notes else ""))
            all_rows.append({"budget": b, "switch": "", "with_agent": "", "without_agent": "", "poi": np.nan,
                             "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan, "n_tasks": 0, "n_runs_with": 0,
                             "n_runs_without": 0, "tasks": why})
            files = style.placeholder(out_dir, f"ablations_{tag}", f"Paired ablations at {tag} simulator steps",
                                      why[0].upper() + why[1:] + ".")
            entries.append({"files": files, "caption": f"Paired ablations at {b} simulator steps: skipped, {why}."})
            continue
        df = pd.DataFrame(rows, columns=POI_COLUMNS)
        note = " | ".join(n for n in [missing, *[n for n in notes if "set aside" not in n],
                                      set_aside_note(n for n in notes if "set aside" in n)] if n) or None
        files = figure(df, b, out_dir, note)
        entries.append({"files": files, "caption": (
            f"Paired ablations at {b} simulator steps: probability that the variant WITH the switch scores higher "
            f"than the variant WITHOUT it on a randomly drawn task and pair of runs (normalised score, the last "
            f"evaluation at or below the budget), with 95% stratified bootstrap CIs ({reps} resamples, seed {seed}); "
            f"pairs differ in exactly one switch (or are a study variant and its registered agent, or two variants one "
            f"setting apart). P > 0.5 favours the switch. "
            f"With few runs the percentile CI understates the uncertainty (it has zero width when every run of one side "
            f"beats every run of the other), so ablations.csv also gives the two-sided stratified permutation p of P "
            f"(exact where the relabellings are few: 3 vs 3 runs on one task cannot go below 0.1, 4 vs 4 below 0.029). Row labels give the "
            f"tasks and runs per side.")})
    style.write_table(pd.DataFrame(all_rows, columns=POI_COLUMNS), tables_dir, "ablations",
                      "Paired ablations: probability of improvement with 95% CI")
    return entries
