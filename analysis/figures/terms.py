"""Figure 4: the objective's own terms over training, per variant (and the other training losses).

``metrics.csv`` holds one row per training episode with a ``train/<term>`` column for every term
an agent reports (the set is open). The objective's terms (``OBJECTIVE_TERMS``: kl_z, kl_a,
conditional and marginal log-likelihood, information gain, reward) get the ``terms`` figure;
every other ``train/*`` column (critic loss, temperature, ...) the ``losses`` figure. Panels:
rows = terms, columns = agent families (small multiples, one y axis per row; with several tasks a block of
term rows per task, under its name, the figure no wider than ``MAX_WIDTH``; ``losses`` with one task: a grid of
terms, every agent in each); x = simulator steps binned on a common grid (each seed
averaged within a bin first), line = mean over seeds, band = 95% bootstrap CI over seeds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
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
"""Inches per column of the family small multiples (at most: with several tasks the columns narrow to fit
``MAX_WIDTH``)."""
MAX_WIDTH = 9.0
"""Inches: the widest :func:`line_panels` draws with several tasks (the README's width)."""
MAX_COLUMNS = 4
"""With several tasks, at most this many family columns; further families get a further block of rows."""
PANEL_HEIGHT = 2.1
"""Inches per row of panels."""
HEADING_HEIGHT = 0.3
"""Inches per row that only carries a task's name (several tasks)."""


def columns(table: pd.DataFrame) -> list[tuple[str, str, list[str]]]:
    """``[(task, family, agents)]``: one column per task and agent family present in it (``analysis.agents.by_family``)."""
    out = []
    for task in sorted(table["task"].unique()):
        out += [(task, fam, members) for fam, members in A.by_family(table.loc[table["task"] == task, "agent"])]
    return out


def family_blocks(agents) -> list[list[tuple[str, list[str]]]]:
    """``agents``' families (``analysis.agents.by_family``) split into as few blocks of at most ``MAX_COLUMNS`` as
    possible, of near-equal size (5 families: 3 + 2)."""
    fams = A.by_family(agents)
    size = -(-len(fams) // -(-len(fams) // MAX_COLUMNS))
    return [fams[k:k + size] for k in range(0, len(fams), size)]


@dataclass
class Layout:
    """Where :func:`line_panels` puts its panels. ``cols``: ``[(task, family, agents)]`` (family '' in the wrapped
    grid); ``cells``: ``[(grid row, grid column, term, index into cols)]``; ``headings``: ``{grid row: task}`` for
    the rows that carry only a task's name; ``legend_rows``: the grid rows whose panels carry their family's legend;
    ``ratios``: the rows' relative heights (None: equal); ``col_width``: inches per column; ``same_y``:
    ``[(grid row, grid row above)]`` pairs of rows (one task and term in two blocks of families) on one y axis."""

    frame: style.Frame
    nrows: int
    ncols: int
    cols: list
    cells: list
    headings: dict = field(default_factory=dict)
    legend_rows: tuple = (0,)
    ratios: list | None = None
    col_width: float = COLUMN_WIDTH
    same_y: list = field(default_factory=list)


def _grid_layout(task: str, terms: list[str], agents: list[str], wrap: int, note: str | None) -> Layout:
    """One task, ``wrap`` > 1: term k in panel k of a grid ``wrap`` wide, every agent in each, one shared legend."""
    ncols, nrows = wrap, -(-len(terms) // wrap)
    cells = [(k // wrap, k % wrap, term, 0) for k, term in enumerate(terms)]
    frame = style.Frame(3.3 * ncols + 0.6, 2.3 * nrows + 0.5, [A.label(a) for a in agents], note)
    return Layout(frame, nrows, ncols, [(task, "", agents)], cells, legend_rows=())


def _family_layout(table: pd.DataFrame, terms: list[str], note: str | None) -> Layout:
    """One task: rows = terms, columns = the agent families (``COLUMN_WIDTH`` each)."""
    cols = columns(table)
    ncols, nrows = len(cols), len(terms)
    cells = [(i, j, term, j) for i, term in enumerate(terms) for j in range(ncols)]
    legend_rows = max(-(-len(m) // 2) + 1 for _, _, m in cols)
    frame = style.Frame(max(COLUMN_WIDTH * ncols + 0.8, 7.5), PANEL_HEIGHT * nrows + 0.2 * legend_rows + 0.6,
                        note=note)
    return Layout(frame, nrows, ncols, cols, cells)


def _legend_lines(block: list[tuple[str, list[str]]], width: float) -> int:
    """Text lines of the tallest family legend of ``block`` in columns ``width`` inches wide (title included)."""
    def lines(fam, members):
        title, labels = _legend_text(fam, members, width)
        ncol = min(2, style.legend_columns(labels, width))
        rows = [max(x.count("\n") + 1 for x in labels[k:k + ncol]) for k in range(0, len(labels), ncol)]
        return title.count("\n") + 1 + sum(rows)
    return max(lines(fam, members) for fam, members in block)


def _task_layout(table: pd.DataFrame, terms: list[str], tasks: list[str], note: str | None) -> Layout:
    """Several tasks: columns = agent families (``family_blocks``; at most ``MAX_COLUMNS``, narrowed to fit
    ``MAX_WIDTH``); per block of families, per task, a heading row with the task's name, then one row per term."""
    blocks = family_blocks(table["agent"])
    ncols = max(len(b) for b in blocks)
    width = min(COLUMN_WIDTH, (MAX_WIDTH - 0.8) / ncols)
    cols, cells, headings, legend_rows, ratios, first_row = [], [], {}, [], [], {}
    for block in blocks:
        legend_rows.append(len(ratios) + 1)
        for task in tasks:
            headings[len(ratios)] = task
            ratios.append(HEADING_HEIGHT)
            for term in terms:
                cells += [(len(ratios), j, term, len(cols) + j) for j in range(len(block))]
                first_row.setdefault((task, term), len(ratios))
                ratios.append(PANEL_HEIGHT)
            cols += [(task, fam, members) for fam, members in block]
    legend_h = 0.2 * sum(_legend_lines(b, width) for b in blocks)
    ticks_h = 0.4 * (len(blocks) * len(tasks) - 1)  # each task's lowest row: step ticks and label
    frame = style.Frame(max(width * ncols + 0.8, 7.5), sum(ratios) + legend_h + ticks_h + 0.6, note=note)
    rows = {(i, cols[c][0], term) for i, _, term, c in cells}
    same_y = sorted((i, first_row[(task, term)]) for i, task, term in rows if i != first_row[(task, term)])
    return Layout(frame, len(ratios), ncols, cols, cells, headings, tuple(legend_rows), ratios, width, same_y)


def _legend_text(fam: str, members: list[str], width: float) -> tuple[str, list[str]]:
    """A family legend's title (``analysis.agents.family_title`` on two lines) and its agents' labels
    (``analysis.agents.short_label``); in columns narrower than ``COLUMN_WIDTH`` each wrapped to fit ``width``
    inches (10-pt bold title, 9-pt labels after their line handle)."""
    title, labels = A.family_title(fam, "\n"), [A.short_label(a) for a in members]
    if width >= COLUMN_WIDTH:
        return title, labels
    return (style.wrap(title, max(12, int(width * 72 / (10 * 0.68)))),
            [style.wrap(x, max(10, int((width - 0.6) * 72 / (9 * 0.6)))) for x in labels])


def _draw(ax, t: pd.DataFrame, members: list[str], handles: dict, reference: float | None, log_y: bool) -> None:
    """One panel: a line and 95% band per agent of ``members`` in ``t`` (one task and term); 'not reported' when
    none is there."""
    for agent in members:
        c = t[t["agent"] == agent]
        if c.empty:
            continue
        (line,) = ax.plot(c["step"], c["mean"], color=A.colour(agent), ls=A.linestyle(agent, members), lw=1.6,
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


def _arrange(frame: style.Frame, axes, lay: Layout) -> None:
    """Put the rows of ``lay.same_y`` on one y axis, and replace each heading row's axes by one spanning the row
    that shows only its task's name, in bold."""
    for row, above in lay.same_y:
        axes[row, 0].sharey(axes[above, 0])
    for row, task in lay.headings.items():
        gs = axes[row, 0].get_subplotspec().get_gridspec()
        for ax in axes[row]:
            ax.remove()
        ax = frame.main.add_subplot(gs[row, :])
        ax.axis("off")
        ax.text(0.0, 0.0, task, transform=ax.transAxes, ha="left", va="bottom", fontsize=11, fontweight="bold")


def layout_words(table: pd.DataFrame, single: str, rows: str) -> str:
    """Caption words for :func:`line_panels`' layout of ``table``: ``single`` with one task; with several, the
    family columns and the rows per task and ``rows`` (what a task's rows are, e.g. 'term')."""
    if table["task"].nunique() == 1:
        return single
    return f"per agent family (columns) and task and {rows} (rows: each task's block under its name, one y axis per row)"


def line_panels(table: pd.DataFrame, terms: list[str], labels: dict, title: str, stem: str, out_dir: Path,
                note: str | None, reference: float | None = None, log_y: bool = False, wrap: int = 1) -> list[Path]:
    """One line per agent. One task: rows = terms; columns = agent families, each column with its own legend and
    every row on one y axis, so a term compares across families and no panel holds more than a family's lines.
    Several tasks: the same family columns (at most ``MAX_COLUMNS``, the figure at most ``MAX_WIDTH`` wide; more
    families continue in a further block of rows with its own legends); rows = (task, term) pairs, each task's
    rows under a heading with its name; one y axis per (task, term) row (shared with that row in a further block),
    so the same term has its own y axis on each task (their scales differ); every column one x axis.
    ``reference``: a dashed horizontal line at that value; ``log_y``: a logarithmic y axis (for ratios).
    ``wrap``: with a single task, the terms instead fill a grid of ``wrap`` columns, each panel titled with its
    term and holding every agent (a column of 20 panels is unreadable)."""
    style.setup()
    tasks = sorted(table["task"].unique())
    agents = A.order(table["agent"].unique())
    grid = len(tasks) == 1 and wrap > 1 and len(terms) > wrap
    if grid:
        lay = _grid_layout(tasks[0], terms, agents, wrap, note)
    else:
        lay = _family_layout(table, terms, note) if len(tasks) == 1 else _task_layout(table, terms, tasks, note)
    frame = lay.frame
    extra = {"gridspec_kw": {"height_ratios": lay.ratios}} if lay.ratios else {}
    axes = frame.main.subplots(lay.nrows, lay.ncols, squeeze=False, sharex="all" if grid else "col",
                               sharey=False if grid else "row", **extra)
    _arrange(frame, axes, lay)
    handles: dict = {}
    for i, j, term, col in lay.cells:
        ax = axes[i, j]
        task, fam, members = lay.cols[col]
        _draw(ax, table[(table["term"] == term) & (table["task"] == task)], members, handles, reference, log_y)
        if grid:
            ax.set_title(style.wrap(labels.get(term, term), 34), fontsize=9)
        else:
            if i in lay.legend_rows:
                proxies = [Line2D([], [], color=A.colour(a), ls=A.linestyle(a, members), lw=1.6) for a in members]
                legend_title, names = _legend_text(fam, members, lay.col_width)
                style.panel_legend(ax, legend_title, lay.col_width, proxies, names)
            if j == 0:
                ax.set_ylabel(style.wrap(labels.get(term, term), 22), fontsize=9)
        if style.is_lowest(lay.cells, i, j):  # with several tasks: each task's lowest row
            ax.set_xlabel("simulator steps")
            ax.xaxis.set_tick_params(labelbottom=True)
        style.steps_axis(ax)
    style.hide_unused(axes, lay.cells)
    frame.main.suptitle(title + (f"\n{tasks[0]}" if len(tasks) == 1 else ""))
    if grid:
        keys = [A.label(a) for a in agents if A.label(a) in handles]
        frame.legend([handles[k] for k in keys], keys)
    return frame.save(out_dir, stem)


def figures(metrics: pd.DataFrame, out_dir: Path, tables_dir: Path, seed: int, reps: int, note: str | None,
            seeds_text: str, stems: tuple[str, ...] = ("terms", "losses")) -> list[dict]:
    """The ``terms`` and ``losses`` figures (those named in ``stems``), ``terms``/``terms_final``/``losses``
    tables; manifest entries."""
    objective, other = term_names(metrics) if not metrics.empty else ([], [])
    entries = []
    for stem, terms, labels, title in (
            ("terms", objective, OBJECTIVE_TERMS, "The objective's terms over training (per training episode)"),
            ("losses", other, {}, "Other training losses and diagnostics (per training episode)")):
        if stem not in stems:
            continue
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
            one = "per task and agent family (columns, one y axis per row) and term (rows)"
            caption = (f"The bound's terms during training, {layout_words(table, one, 'term')}, for every agent that reports them ({agents}): per-episode averages binned into {BINS} step bins, mean over seeds "
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
