"""Figure 2: aggregate performance at fixed budgets (Agarwal et al. 2021) and performance profiles.

For each budget: median, IQM, mean and optimality gap of the normalised score (return / 1000)
with 95% stratified-bootstrap CIs across tasks and seeds, and the score distribution
(performance profile) with its bootstrap band. Every statistic is ``analysis.stats``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import agents as A
from analysis import stats, style
from analysis.scores import KEY, at_budget, matrix, set_aside_note

METRIC_LABELS = {"median": "Median", "iqm": "IQM", "mean": "Mean", "optimality_gap": "Optimality gap"}
AGG_COLUMNS = ["budget", "agent", "metric", "value", "ci_low", "ci_high", "n_tasks", "n_runs_per_task", "note"]
PROFILE_COLUMNS = ["budget", "agent", "tau", "fraction", "ci_low", "ci_high"]
TAUS = np.linspace(0.0, 1.0, 41)


def score_dict(scores: pd.DataFrame, agents: list[str], tasks: list[str]) -> tuple[dict, list[str]]:
    """``{agent: (runs, tasks)}`` for every agent with a run on every task, and notes on the rest."""
    out, notes = {}, []
    for agent in agents:
        m, note = matrix(scores, agent, tasks)
        if note:
            notes.append(note)
        if m is not None:
            out[agent] = m
    return out, notes


def budget_tables(eval_df: pd.DataFrame, budget: int, seed: int, reps: int, failed: frozenset = frozenset()):
    """``(scores at budget, aggregates rows, profile rows, score dict, notes)`` for one budget; ``failed``:
    ``scores.at_budget``."""
    sc = at_budget(eval_df, budget, failed)
    if sc.empty:
        note = f"no run reached {budget} simulator steps"
        row = {"budget": budget, "agent": "", "metric": "", "value": np.nan, "ci_low": np.nan, "ci_high": np.nan,
               "n_tasks": 0, "n_runs_per_task": 0, "note": note}
        return sc, [row], [], {}, [note]
    tasks = sorted(sc["task"].unique())
    data, notes = score_dict(sc, A.order(sc["agent"].unique()), tasks)
    rows, prof_rows = [], []
    if data:
        points, cis = stats.stratified_bootstrap_ci(data, stats.aggregate_metrics, reps=reps, seed=seed)
        profiles, pcis = stats.performance_profile_ci(data, TAUS, reps=reps, seed=seed)
        for agent in data:
            for k, name in enumerate(stats.AGGREGATE_NAMES):
                rows.append({"budget": budget, "agent": agent, "metric": name, "value": points[agent][k],
                             "ci_low": cis[agent][0, k], "ci_high": cis[agent][1, k], "n_tasks": len(tasks),
                             "n_runs_per_task": data[agent].shape[0], "note": ""})
            for k, tau in enumerate(TAUS):
                prof_rows.append({"budget": budget, "agent": agent, "tau": tau, "fraction": profiles[agent][k],
                                  "ci_low": pcis[agent][0, k], "ci_high": pcis[agent][1, k]})
    for note in notes:
        rows.append({"budget": budget, "agent": note.split(":")[0], "metric": "", "value": np.nan, "ci_low": np.nan,
                     "ci_high": np.nan, "n_tasks": len(tasks), "n_runs_per_task": np.nan, "note": note})
    return sc, rows, prof_rows, data, notes


def _join(*notes) -> str | None:
    return " | ".join(n for n in notes if n) or None


def aggregate_figure(rows: pd.DataFrame, budget: int, out_dir: Path, note: str | None) -> list[Path]:
    """Four panels (median, IQM, mean, optimality gap): point + 95% CI per agent."""
    style.setup()
    rows = rows[rows["metric"] != ""]
    agents = A.order(rows["agent"].unique())
    frame = style.Frame(13.0, 1.3 + 0.42 * len(agents), note=note)
    axes = frame.main.subplots(1, 4, sharey=True)
    y = np.arange(len(agents))[::-1]
    for ax, metric in zip(axes, stats.AGGREGATE_NAMES):
        r = rows[rows["metric"] == metric].set_index("agent")
        for yi, agent in zip(y, agents):
            v = r.loc[agent]
            ax.plot([v["ci_low"], v["ci_high"]], [yi, yi], color=A.colour(agent), lw=6, alpha=0.45,
                    solid_capstyle="butt")
            ax.plot([v["value"]], [yi], marker="|", ms=14, mew=2.2, color=A.colour(agent))
        ax.set_title(METRIC_LABELS[metric] + (" (lower is better)" if metric == "optimality_gap" else ""))
        ax.set_xlabel("normalised score")
        ax.set_xlim(-0.02, 1.02)
    axes[0].set_yticks(y, [A.label(a) for a in agents])
    for tick, agent in zip(axes[0].get_yticklabels(), agents):
        tick.set_color(A.colour(agent))
    frame.main.suptitle(f"Aggregate normalised score (return / 1000) at {style.fmt_steps(budget)} simulator steps, "
                        "95% stratified bootstrap CI")
    return frame.save(out_dir, f"aggregates_{style.fmt_steps(budget)}")


PROFILE_COLUMNS_PER_ROW = 3
"""Family panels per row of the performance-profile figure."""
PROFILE_PANEL = (3.3, 2.5)
"""Inches per profile panel (width, height without its legend)."""


def profile_figure(prof: pd.DataFrame, budget: int, out_dir: Path, note: str | None) -> list[Path]:
    """Performance profiles, fraction of runs with normalised score > tau with 95% bootstrap bands: one panel per
    agent family (``analysis.agents.by_family``), all on the same axes."""
    style.setup()
    families = A.by_family(prof["agent"].unique())
    nrows, ncols, cells = style.panel_cells(["all"], [f for f, _ in families], PROFILE_COLUMNS_PER_ROW)
    members_of = dict(families)
    legend_rows = max(-(-len(m) // 2) + 1 for m in members_of.values())
    width, height = PROFILE_PANEL
    frame = style.Frame(max(width * ncols + 0.6, 7.5), (height + 0.2 * legend_rows + 0.35) * nrows + 0.45,
                        note=note)
    axes = frame.main.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
    for i, j, _, fam in cells:
        ax = axes[i, j]
        for agent in members_of[fam]:
            p = prof[prof["agent"] == agent]
            ax.plot(p["tau"], p["fraction"], color=A.colour(agent), ls=A.linestyle(agent, members_of[fam]), lw=1.8,
                    label=A.short_label(agent))
            ax.fill_between(p["tau"], p["ci_low"], p["ci_high"], color=A.colour(agent), alpha=0.15, lw=0)
        style.panel_legend(ax, A.family_title(fam, "\n"), width)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        if j == 0:
            ax.set_ylabel(r"fraction of runs with score > $\tau$")
        if style.is_lowest(cells, i, j):
            ax.set_xlabel(r"threshold $\tau$ (return / 1000)")
            ax.xaxis.set_tick_params(labelbottom=True)
    style.hide_unused(axes, cells)
    frame.main.suptitle(f"Performance profiles at {style.fmt_steps(budget)} simulator steps, 95% stratified "
                        "bootstrap bands")
    return frame.save(out_dir, f"profiles_{style.fmt_steps(budget)}")


def figures(eval_df: pd.DataFrame, budgets: list[int], out_dir: Path, tables_dir: Path, seed: int, reps: int,
            missing: str | None, seeds_text: str, failed: frozenset = frozenset()) -> tuple[list[dict], dict]:
    """All budgets: figures, ``aggregates``/``profiles``/``budget_scores`` tables, and the score dicts
    (``failed`` runs scored at their last evaluation: ``scores.at_budget``).

    Returns ``(manifest entries, {budget: scores at budget})``.
    """
    entries, all_rows, all_prof, all_scores, per_budget = [], [], [], [], {}
    for b in budgets:
        sc, rows, prof, data, notes = budget_tables(eval_df, b, seed, reps, failed)
        per_budget[b] = sc
        all_rows += rows
        all_prof += prof
        all_scores.append(sc.assign(budget=b))
        tag = style.fmt_steps(b)
        if not data:
            msg = (f"No run reached {b} simulator steps, so there is nothing to aggregate at this budget."
                   if sc.empty else "No agent has a run on every task at this budget: " + "; ".join(notes))
            for stem, what in ((f"aggregates_{tag}", "Aggregate scores"), (f"profiles_{tag}", "Performance profiles")):
                files = style.placeholder(out_dir, stem, f"{what} at {tag} simulator steps", msg)
                entries.append({"file": files[0].name, "files": [f.name for f in files],
                                "caption": f"{what} at {b} simulator steps: skipped. {msg}"})
            continue
        note = _join(missing, *[n for n in notes if "set aside" not in n],
                     set_aside_note(n for n in notes if "set aside" in n))
        n_tasks = len(sc["task"].unique())
        runs = ", ".join(f"{a} {m.shape[0]}" for a, m in data.items())
        df = pd.DataFrame(rows, columns=AGG_COLUMNS)
        files = aggregate_figure(df, b, out_dir, note)
        entries.append({"file": files[0].name, "files": [f.name for f in files], "caption": (
            f"Aggregate performance at {b} simulator steps (the last evaluation at or below the budget of each "
            f"run that reached it): median, interquartile mean (IQM), mean and optimality gap (1 - mean of "
            f"min(score, 1)) of the normalised score return/1000 over {n_tasks} task(s); bars are 95% stratified "
            f"bootstrap CIs ({reps} resamples, seed {seed}; Agarwal et al. 2021). Runs per task: {runs}; "
            f"{seeds_text}.")})
        files = profile_figure(pd.DataFrame(prof, columns=PROFILE_COLUMNS), b, out_dir, note)
        entries.append({"file": files[0].name, "files": [f.name for f in files], "caption": (
            f"Performance profiles at {b} simulator steps, one panel per agent family on the same axes: fraction "
            f"of runs (all tasks x seeds) whose normalised score exceeds tau, with 95% stratified bootstrap bands ({reps} resamples, seed {seed}); "
            f"runs per task: {runs}.")})
    scores = pd.concat(all_scores, ignore_index=True) if all_scores else pd.DataFrame()
    scores = scores.reindex(columns=["budget"] + KEY + ["step", "return", "score"])
    style.write_table(pd.DataFrame(all_rows, columns=AGG_COLUMNS), tables_dir, "aggregates",
                      "Aggregate normalised scores with 95% stratified bootstrap CIs")
    style.write_table(pd.DataFrame(all_prof, columns=PROFILE_COLUMNS), tables_dir, "profiles",
                      "Performance profiles")
    style.write_table(scores, tables_dir, "budget_scores",
                      "Per-run scores at each budget (last evaluation at or below the budget)")
    return entries, per_budget
