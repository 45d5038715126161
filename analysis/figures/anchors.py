"""Figure 6: this study's returns at the fixed budgets next to published anchors (reference marks).

A horizontal dot plot: one panel per task (rows of panels) and budget (columns), x = evaluation
return, one labelled y row per entry: this study's agents (grouped by ``analysis.agents.by_family``,
every other family shaded), then, below a line, the published anchors. A task's panels share the y axis, so the rows are
labelled once, on the left; no legend is needed.

The anchors (``workflows/config/anchors.csv``: ``task, agent, observation, steps,
mean, sd, source``) are FULL-STATE or PIXEL results on the plain dm-control tasks; this study's
tasks are partially observed (position-only, distractors, ...). They are drawn as grey reference
marks, labelled with observation type and source, never as competitors. The same marks appear on
the learning curves (``curves.py`` calls :func:`draw_marks`).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import agents as A
from analysis import style
from analysis.scores import at_budget, domain_task
from analysis.stats import bootstrap_mean_ci

ANCHOR_COLUMNS = ("task", "agent", "observation", "steps", "mean", "sd", "source")
_MARKERS = {"SAC-state": "*", "PlaNet": "P", "Dreamer": "X", "SLACv1": "8", "CURL": "p", "DrQ": "d",
            "DreamerV3": "^", "D4PG": "s", "DMPO": "v", "DrQ-v2": "o", "SAC (pixels)": "<"}
_FALLBACK_MARKERS = ["<", ">", "8", "H", "1", "2"]


def load(path: str | Path | None) -> pd.DataFrame:
    """The anchors CSV (empty frame if ``path`` is None); ValueError naming missing columns."""
    if path is None:
        return pd.DataFrame(columns=list(ANCHOR_COLUMNS))
    df = pd.read_csv(path)
    lacking = [c for c in ANCHOR_COLUMNS if c not in df.columns]
    if lacking:
        raise ValueError(f"{path}: anchors CSV lacks column(s) {lacking}; expected {list(ANCHOR_COLUMNS)}")
    return df[list(ANCHOR_COLUMNS)]


def marker(agent: str) -> str:
    """Marker of a published agent (stable per name)."""
    if agent in _MARKERS:
        return _MARKERS[agent]
    return _FALLBACK_MARKERS[sum(map(ord, agent)) % len(_FALLBACK_MARKERS)]


def short_source(source: str) -> str:
    """'Laskin et al. 2020 (CURL), Table 1' -> 'Laskin et al. 2020, Tab. 1'."""
    s = str(source).replace("Table ", "Tab. ")
    if "(" in s and ")" in s:
        s = s[: s.index("(")].rstrip() + s[s.index(")") + 1:]
    return s.strip()


def anchor_label(row) -> str:
    """Full label of one published agent: name, observation type, source (the curves' legend; the anchors
    figure's row key)."""
    return f"{row.agent} ({row.observation}; {short_source(row.source)})"


def row_label(row) -> str:
    """Short row label of one published agent: ``'CURL (pixels; Laskin 2020)'``, ``'D4PG (proprio;
    danijar/dreamerv3)'`` (observation without its parenthesis; source as first author and year, else its first
    word)."""
    obs = str(row.observation).split(" (")[0]
    src = short_source(row.source)
    m = re.match(r"(\S+) et al\. (\d{4})", src)
    src = f"{m.group(1)} {m.group(2)}" if m else src.split()[0]
    return f"{str(row.agent).removesuffix(f' ({obs})')} ({obs}; {src})"


def sources_sentence(anchors: pd.DataFrame) -> str:
    """Caption sentence naming every source drawn."""
    if anchors.empty:
        return ""
    srcs = "; ".join(sorted(anchors["source"].astype(str).unique()))
    obs = " and ".join(sorted(anchors["observation"].astype(str).unique()))
    return (f"Grey marks: published anchors ({obs} observations; mean +/- sd as printed in {srcs}); "
            "they are NOT position-only results and serve only as reference marks.")


def draw_marks(ax, anchors: pd.DataFrame, task_id: str, xmax: float, handles: dict,
               offset: float = 0.0) -> list[int]:
    """Draw the anchors of ``task_id``'s domain-task whose steps are <= ``xmax``; return the omitted steps.

    Published agents at the same step are spread ``offset`` apart on the x axis so they do not hide each other.
    """
    rows = anchors[anchors["task"] == domain_task(task_id)]
    omitted = sorted({int(s) for s in rows["steps"] if s > xmax})
    names = list(dict.fromkeys(anchor_label(r) for r in rows.itertuples()))
    for r in rows[rows["steps"] <= xmax].itertuples():
        filled = "state" in str(r.observation)
        k = names.index(anchor_label(r)) - (len(names) - 1) / 2
        h = ax.errorbar([r.steps + k * offset], [r.mean], yerr=[[r.sd], [r.sd]], fmt=marker(r.agent), ms=7, color="#555555",
                        mfc="#555555" if filled else "white", mec="#333333", ecolor="#aaaaaa", elinewidth=1,
                        capsize=2, zorder=4, alpha=0.9)
        handles.setdefault(anchor_label(r), h)
    return omitted


ROW_IN = 0.19
"""Height of one dot-plot row, inches."""
PANEL_IN = 2.05
"""Width of one budget panel, inches."""


def rows_of(agents: list[str], task_anchors: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """A task's dot-plot rows: ``(agents grouped by family, anchor keys (:func:`anchor_label`), y labels)``;
    the labels are the agents' then the anchors' (:func:`row_label`, or the key where two would coincide), or
    'no published anchor'."""
    grouped = [a for _, members in A.by_family(agents) for a in members]
    firsts = {}
    for r in task_anchors.itertuples():
        firsts.setdefault(anchor_label(r), r)
    short = [row_label(r) for r in firsts.values()]
    marks = short if len(set(short)) == len(short) else list(firsts)
    return grouped, list(firsts), [A.label(a) for a in grouped] + (marks or ["no published anchor"])


def _draw(ax, y: float, m: float, lo: float, hi: float, fmt: str, colour: str, **kw) -> None:
    ax.errorbar([m], [y], xerr=[[m - lo], [hi - m]], fmt=fmt, color=colour, ms=5.5, capsize=2, **kw)


def _rows_axis(ax, labels: list[str], ys: list[int], n_a: int) -> None:
    """Label every row on ``ax`` (the task's left-most panel; the others share it); anchors' labels in grey."""
    ax.set_yticks(ys, labels)
    ax.set_ylim(ys[-1] + 0.6, -0.6)
    ax.tick_params(axis="y", length=0)
    for t in ax.get_yticklabels()[n_a:]:
        t.set_color("#555555")
    ax.text(-0.04, n_a, "published anchors (not position-only)", ha="right", va="center", fontsize=8,
            style="italic", color="#555555", transform=ax.get_yaxis_transform())


def _budget_panel(ax, task: str, b: int, sc: pd.DataFrame, agents: list[str], layout: tuple, ys: list[int],
                  sizes: np.ndarray, task_anchors: pd.DataFrame, seed: int, reps: int) -> list[dict]:
    """One task's panel at budget ``b``: family shading, our agents' means with CIs (``sc``: their scores),
    the anchors published at ``b``; returns the table rows it drew."""
    grouped, keys, _ = layout
    n_a, rows = len(grouped), []
    for i in range(1, len(sizes) - 1, 2):  # every other family shaded
        ax.axhspan(sizes[i] - 0.5, sizes[i + 1] - 0.5, color="#efefef", zorder=0, lw=0)
    ax.axhline(n_a, color="#888888", lw=0.8)
    if sc.empty:
        ax.text(500, (n_a - 1) / 2, f"no run of this study\nreached {style.fmt_steps(b)} steps", ha="center",
                va="center", fontsize=style.NOTE_SIZE, color="#b2182b")
    for agent in agents:
        vals = sc.loc[sc["agent"] == agent, "return"].to_numpy()
        if len(vals) == 0:
            continue
        m, lo, hi = bootstrap_mean_ci(vals, reps=reps, seed=seed)
        _draw(ax, grouped.index(agent), m, lo, hi, A.marker(agent), A.colour(agent), elinewidth=1.2)
        rows.append({"task": task, "budget": b, "kind": "this study", "agent": agent, "observation":
                     task.rsplit("-", 1)[-1], "mean": m, "ci_low": lo, "ci_high": hi, "sd": np.nan,
                     "n": len(vals), "source": "this study"})
    for r in task_anchors[task_anchors["steps"] == b].itertuples():
        filled = "state" in str(r.observation)
        _draw(ax, ys[n_a + keys.index(anchor_label(r))], r.mean, r.mean - r.sd, r.mean + r.sd,
              marker(r.agent), "#555555", mfc="#555555" if filled else "white", mec="#333333",
              ecolor="#aaaaaa", elinewidth=1)
        rows.append({"task": task, "budget": b, "kind": "published anchor", "agent": r.agent,
                     "observation": r.observation, "mean": float(r.mean), "ci_low": np.nan,
                     "ci_high": np.nan, "sd": float(r.sd), "n": np.nan, "source": r.source})
    ax.set_title(f"{style.fmt_steps(b)} steps", fontsize=10)
    ax.set_xlim(-30, 1030)
    ax.set_xticks([0, 500, 1000])
    ax.set_xticks([250, 750], minor=True)
    ax.grid(True, axis="x", which="both")
    ax.set_xlabel("evaluation return")
    return rows


def figure(eval_df: pd.DataFrame, anchors: pd.DataFrame, budgets: list[int], out_dir: Path, tables_dir: Path,
           seed: int, reps: int, note: str | None, seeds_text: str, failed: frozenset = frozenset()) -> dict:
    """Dot plot per task and budget: our agents' mean return (95% bootstrap CI over seeds), anchors below
    (``failed`` runs scored at their last evaluation: ``scores.at_budget``)."""
    style.setup()
    tasks = sorted(eval_df["task"].unique()) if not eval_df.empty else []
    if not tasks:
        files = style.placeholder(out_dir, "anchors", "Published anchors", "No evaluation data to compare.")
        return {"files": files, "caption": "Published anchors: no evaluation data."}
    shown = anchors[anchors["task"].isin({domain_task(t) for t in tasks})]
    # one column per budget and per published step count, so the anchors always appear
    budgets = sorted(set(budgets) | {int(s) for s in shown["steps"]})
    per_budget = {b: at_budget(eval_df, b, failed) for b in budgets}
    agents_of = {t: A.order(eval_df.loc[eval_df["task"] == t, "agent"]) for t in tasks}
    anchors_of = {t: shown[shown["task"] == domain_task(t)] for t in tasks}
    layout = {t: rows_of(agents_of[t], anchors_of[t]) for t in tasks}
    longest = max(len(x) for t in tasks for x in layout[t][2])
    width = min(9.0, 0.4 + longest * 9 * 0.56 / 72 + PANEL_IN * len(budgets))
    heights = [ROW_IN * (len(layout[t][2]) + 1) + 0.75 for t in tasks]
    frame = style.Frame(width, sum(heights) + 0.45, (), note)
    frame.main.suptitle("Return at fixed budgets: this study (colour, 95% CI) and published anchors (grey, +/- sd)")
    subs = frame.main.subfigures(len(tasks), 1, height_ratios=heights, squeeze=False).flat
    rows = []
    for task, sub in zip(tasks, subs):
        agents, task_anchors = agents_of[task], anchors_of[task]
        grouped, _, labels = layout[task]
        n_a = len(grouped)
        ys = list(range(n_a)) + list(range(n_a + 1, len(labels) + 1))  # a gap row between the two blocks
        sizes = np.cumsum([0] + [len(m) for _, m in A.by_family(agents)])
        sub.suptitle(task, fontsize=11)
        axes = sub.subplots(1, len(budgets), sharey=True, squeeze=False)[0]
        for ax, b in zip(axes, budgets):
            sc = per_budget[b]
            rows += _budget_panel(ax, task, b, sc[sc["task"] == task], agents, layout[task], ys, sizes, task_anchors,
                                  seed, reps)
        _rows_axis(axes[0], labels, ys, n_a)
    files = frame.save(out_dir, "anchors")
    table = pd.DataFrame(rows, columns=["task", "budget", "kind", "agent", "observation", "mean", "ci_low",
                                        "ci_high", "sd", "n", "source"])
    files += style.write_table(table, tables_dir, "anchors", "This study vs published anchors (returns)")
    caption = (f"Evaluation return at the fixed budgets and the published step counts, one column of panels each "
               f"({', '.join(style.fmt_steps(b) for b in budgets)} simulator steps; each run's last evaluation at or "
               "below the budget, runs that stopped short are not scored), one row of panels per task and one labelled "
               "row per entry: above the line, this study's agents (coloured marker = mean over seeds, bar = 95% "
               f"bootstrap CI; {seeds_text}; shading groups them by agent family); below it, published anchors. "
               + sources_sentence(shown) + " Grey bar: +/- sd; filled grey markers: full state; hollow: pixels.")
    return {"files": files, "caption": caption}
