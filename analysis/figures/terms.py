"""Figure 4: the objective's own terms over training, per variant (and the other training losses).

``metrics.csv`` holds one row per training episode with a ``train/<term>`` column for every term
an agent reports (the set is open). The objective's terms (``OBJECTIVE_TERMS``: kl_z, kl_a,
conditional and marginal log-likelihood, information gain, reward) get the ``terms`` figure;
every other ``train/*`` column (critic loss, temperature, ...) the ``losses`` figure. Panels:
rows = terms, columns = tasks x agent families (small multiples, one y axis per row; ``losses`` with one
task: a grid of terms, every agent in each); x = simulator steps binned on a common grid (each seed
averaged within a bin first), line = mean over seeds, band = 95% bootstrap CI over seeds.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from analysis import agents as A
from analysis import style
from analysis.stats import bootstrap_mean_ci

OBJECTIVE_TERMS: dict[str, str] = {
    "kl_z": "KL(q(z) || p(z)) [kl_z]",
    "kl_a": "KL(q(a) || p(a)) [kl_a]",
    "cll": "conditional log-lik. log p(x,r|z<=t) [cll]",
    "mll": "marginal log-lik. log p(x,r|z<t) [mll]",
    "info_gain": "information gain cll - mll [info_gain]",
    "reward": "reward term [reward]",
}
BINS = 30
FINAL_FRACTION = 0.1
TERM_COLUMNS = ["task", "agent", "term", "step", "n_seeds", "mean", "ci_low", "ci_high"]
FINAL_COLUMNS = ["task", "agent", "term", "n_seeds", "final_mean", "ci_low", "ci_high", "window_start_step"]


def term_names(metrics: pd.DataFrame) -> tuple[list[str], list[str]]:
    """``(objective terms, other terms)`` present in ``metrics`` (column names without ``train/``)."""
    present = [c[len("train/"):] for c in metrics.columns if c.startswith("train/") and metrics[c].notna().any()]
    objective = [t for t in OBJECTIVE_TERMS if t in present]
    return objective, sorted(t for t in set(present) - set(objective) if not t.startswith("openloop_"))


def binned(metrics: pd.DataFrame, terms: list[str], seed: int, reps: int) -> pd.DataFrame:
    """Per (task, agent, term, step bin): mean over seeds of each seed's bin average, with 95% CI."""
    rows = []
    for task, mt in metrics.groupby("task", sort=True):
        edges = np.linspace(0.0, float(mt["step"].max()), BINS + 1)
        centre = np.searchsorted(edges, mt["step"].to_numpy(), side="left").clip(1, BINS)
        mt = mt.assign(_bin=edges[centre])  # each row labelled with its bin's right edge
        for term in terms:
            col = f"train/{term}"
            d = mt[["agent", "seed", "_bin", col]].dropna()
            per_seed = d.groupby(["agent", "_bin", "seed"], as_index=False)[col].mean()
            for (agent, step), g in per_seed.groupby(["agent", "_bin"], sort=True):
                m, lo, hi = bootstrap_mean_ci(g[col].to_numpy(), reps=reps, seed=seed)
                rows.append({"task": task, "agent": agent, "term": term, "step": float(step), "n_seeds": len(g),
                             "mean": m, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=TERM_COLUMNS)


def final_values(metrics: pd.DataFrame, terms: list[str], seed: int, reps: int) -> pd.DataFrame:
    """Each term averaged over the last 10% of each run's training steps; mean and CI over seeds."""
    rows = []
    for (task, agent), m in metrics.groupby(["task", "agent"], sort=True):
        start = float(m["step"].max()) * (1.0 - FINAL_FRACTION)
        last = m[m["step"] >= start]
        for term in terms:
            col = f"train/{term}"
            per_seed = last.groupby("seed")[col].mean().dropna()
            if per_seed.empty:
                continue
            v, lo, hi = bootstrap_mean_ci(per_seed.to_numpy(), reps=reps, seed=seed)
            rows.append({"task": task, "agent": agent, "term": term, "n_seeds": len(per_seed), "final_mean": v,
                         "ci_low": lo, "ci_high": hi, "window_start_step": start})
    df = pd.DataFrame(rows, columns=FINAL_COLUMNS)
    if not df.empty:
        df["_o"] = df["agent"].map(A.sort_key)
        df = df.sort_values(["term", "task", "_o"], kind="stable").drop(columns="_o").reset_index(drop=True)
    return df


COLUMN_WIDTH = 3.0
"""Inches per column of the family small multiples."""


def columns(table: pd.DataFrame) -> list[tuple[str, str, list[str]]]:
    """``[(task, family, agents)]``: one column per task and agent family present in it (``analysis.agents.by_family``)."""
    out = []
    for task in sorted(table["task"].unique()):
        out += [(task, fam, members) for fam, members in A.by_family(table.loc[table["task"] == task, "agent"])]
    return out


def line_panels(table: pd.DataFrame, terms: list[str], labels: dict, title: str, stem: str, out_dir: Path,
                note: str | None, reference: float | None = None, log_y: bool = False, wrap: int = 1) -> list[Path]:
    """One line per agent. Rows = terms; columns = (task, agent family) pairs, each column with its own legend and
    every row on one y axis, so a term compares across families and no panel holds more than a family's lines.
    ``reference``: a dashed horizontal line at that value; ``log_y``: a logarithmic y axis (for ratios).
    ``wrap``: with a single task, the terms instead fill a grid of ``wrap`` columns, each panel titled with its
    term and holding every agent (a column of 20 panels is unreadable)."""
    style.setup()
    tasks = sorted(table["task"].unique())
    agents = A.order(table["agent"].unique())
    grid = len(tasks) == 1 and wrap > 1 and len(terms) > wrap
    if grid:  # panel k: term k of the only task, every agent
        ncols, nrows = wrap, -(-len(terms) // wrap)
        cols = [(tasks[0], "", agents)]
        cells = [(k // wrap, k % wrap, term, 0) for k, term in enumerate(terms)]
        frame = style.Frame(3.3 * ncols + 0.6, 2.3 * nrows + 0.5, [A.label(a) for a in agents], note)
    else:
        cols = columns(table)
        ncols, nrows = len(cols), len(terms)
        cells = [(i, j, term, j) for i, term in enumerate(terms) for j in range(ncols)]
        legend_rows = max(-(-len(m) // 2) + 1 for _, _, m in cols) + (len(tasks) > 1)
        frame = style.Frame(max(COLUMN_WIDTH * ncols + 0.8, 7.5), 2.1 * nrows + 0.2 * legend_rows + 0.6, note=note)
    axes = frame.main.subplots(nrows, ncols, squeeze=False, sharex="all" if grid else "col",
                               sharey=False if grid else "row")
    handles: dict = {}
    for i, j, term, col in cells:
        ax = axes[i, j]
        task, fam, members = cols[col]
        t = table[(table["term"] == term) & (table["task"] == task)]
        for agent in members:
            c = t[t["agent"] == agent]
            if c.empty:
                continue
            (line,) = ax.plot(c["step"], c["mean"], color=A.colour(agent), ls=A.linestyle(agent), lw=1.6,
                              marker=A.marker(agent) if len(c) <= 3 else None, ms=4)
            ax.fill_between(c["step"], c["ci_low"], c["ci_high"], color=A.colour(agent), alpha=0.18, lw=0)
            handles.setdefault(A.label(agent), line)
        shown = t[t["agent"].isin(members)]
        if reference is not None:
            ax.axhline(reference, color="#555555", ls="--", lw=1.0)
        if log_y and not shown.empty:
            ax.set_yscale("log")
        if shown.empty:
            ax.text(0.5, 0.5, "not reported", ha="center", va="center", transform=ax.transAxes,
                    fontsize=style.NOTE_SIZE, color="#777777")
        if grid:
            ax.set_title(style.wrap(labels.get(term, term), 34), fontsize=9)
        else:
            if i == 0:
                proxies = [Line2D([], [], color=A.colour(a), ls=A.linestyle(a), lw=1.6) for a in members]
                style.panel_legend(ax, A.family_title(fam, "\n") + (f"\n{task}" if len(tasks) > 1 else ""),
                                   COLUMN_WIDTH, proxies, [A.short_label(a) for a in members])
            if j == 0:
                ax.set_ylabel(style.wrap(labels.get(term, term), 22), fontsize=9)
        if style.is_lowest(cells, i, j):
            ax.set_xlabel("simulator steps")
            ax.xaxis.set_tick_params(labelbottom=True)
        style.steps_axis(ax)
    style.hide_unused(axes, cells)
    frame.main.suptitle(title + (f"\n{tasks[0]}" if len(tasks) == 1 else ""))
    if grid:
        keys = [A.label(a) for a in agents if A.label(a) in handles]
        frame.legend([handles[k] for k in keys], keys)
    return frame.save(out_dir, stem)


def figures(metrics: pd.DataFrame, out_dir: Path, tables_dir: Path, seed: int, reps: int, note: str | None,
            seeds_text: str) -> list[dict]:
    """The ``terms`` and ``losses`` figures, ``terms``/``terms_final``/``losses`` tables; manifest entries."""
    objective, other = term_names(metrics) if not metrics.empty else ([], [])
    entries = []
    for stem, terms, labels, title in (
            ("terms", objective, OBJECTIVE_TERMS, "The objective's terms over training (per training episode)"),
            ("losses", other, {}, "Other training losses and diagnostics (per training episode)")):
        table = binned(metrics, terms, seed, reps) if terms else pd.DataFrame(columns=TERM_COLUMNS)
        final = final_values(metrics, terms, seed, reps) if terms else pd.DataFrame(columns=FINAL_COLUMNS)
        style.write_table(table, tables_dir, stem, title + ": binned mean, 95% bootstrap CI over seeds")
        if stem == "terms":
            style.write_table(final, tables_dir, "terms_final",
                              f"Objective terms averaged over the last {FINAL_FRACTION:.0%} of training")
        if table.empty:
            reporters = "no agent reported any of " + ", ".join(OBJECTIVE_TERMS) if stem == "terms" else \
                "no agent reported other train/* terms"
            files = style.placeholder(out_dir, stem, title, f"Nothing to plot: {reporters} in metrics.csv.")
            entries.append({"files": files, "caption": f"{title}: {reporters}."})
            continue
        files = line_panels(table, terms, labels, title, stem, out_dir, note, wrap=4 if stem == "losses" else 1)
        agents = ", ".join(A.order(table["agent"].unique()))
        if stem == "terms":
            caption = (f"The bound's terms during training, per task and agent family (columns, one y axis per row) and "
                       f"term (rows), for every agent that reports them ({agents}): per-episode averages binned into {BINS} step bins, mean over seeds "
                       f"with 95% bootstrap band ({reps} resamples, seed {seed}); {seeds_text}. What to look for: "
                       "the paper claims the marginal-likelihood term (red, 'ml') stops the model being paid for "
                       "modelling observations for their own sake, so compared with its ELBO partner (blue) the "
                       "conditional log-likelihood (cll) should be lower or flatter while reward is no worse; "
                       "info_gain = cll - mll is what the planner is paid for. kl_a is the KL itself for the AVEM "
                       "agents (>= 0; the uniform prior's d log 2 included) and -entropy for the plain SAC agents "
                       "(sac, sac-state: the KL to the uniform prior minus d log 2). terms_final.csv gives the "
                       "values over the last 10% of training.")
        else:
            caption = (f"Other training losses reported by the agents ({agents}), binned as in the terms figure; "
                       f"mean over seeds with 95% bootstrap band; {seeds_text}.")
        entries.append({"files": files, "caption": caption})
    return entries
