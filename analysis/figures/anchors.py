"""Figure 6: this study's returns at the fixed budgets next to published anchors (reference marks).

The anchors (``shared/anchors/published_dmc_scores.csv``: ``task, agent, observation, steps,
mean, sd, source``) are FULL-STATE or PIXEL results on the plain dm-control tasks; this study's
tasks are partially observed (position-only, distractors, ...). They are drawn as grey reference
marks, labelled with observation type and source, never as competitors. The same marks appear on
the learning curves (``curves.py`` calls :func:`draw_marks`).
"""
from __future__ import annotations

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
    """Legend label of one published agent: name, observation type, source."""
    return f"{row.agent} ({row.observation}; {short_source(row.source)})"


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


def figure(eval_df: pd.DataFrame, anchors: pd.DataFrame, budgets: list[int], out_dir: Path, tables_dir: Path,
           seed: int, reps: int, note: str | None, seeds_text: str) -> dict:
    """Panels per task: our agents' mean return (95% bootstrap CI over seeds) at each budget, anchors beside."""
    style.setup()
    tasks = sorted(eval_df["task"].unique()) if not eval_df.empty else []
    if not tasks:
        files = style.placeholder(out_dir, "anchors", "Published anchors", "No evaluation data to compare.")
        return {"files": files, "caption": "Published anchors: no evaluation data."}
    agents = A.order(eval_df["agent"].unique())
    rows = []
    shown = anchors[anchors["task"].isin({domain_task(t) for t in tasks})]
    # one slot per budget and per published step count, so the anchors always appear
    budgets = sorted(set(budgets) | {int(s) for s in shown["steps"]})
    per_budget = {b: at_budget(eval_df, b) for b in budgets}
    anchor_names = list(dict.fromkeys(anchor_label(r) for r in shown.itertuples()))  # one slot per agent and source
    nrows, ncols = style.grid(len(tasks), 3)
    labels = [A.label(a) for a in agents] + anchor_names
    frame = style.Frame(max(4.6 * ncols, 1.0 + ncols * (0.8 + 2.0 * len(budgets)), 7.0), 3.4 * nrows + 0.4, labels,
                        note)
    axes = frame.main.subplots(nrows, ncols, squeeze=False)
    handles: dict = {}
    anchor_handles: dict = {}
    width = 0.84 / max(len(agents) + len(anchor_names), 1)
    for ax, task in zip(axes.flat, tasks):
        task_anchors = shown[shown["task"] == domain_task(task)]
        for bi, b in enumerate(budgets):
            sc = per_budget[b]
            sc = sc[sc["task"] == task]
            if sc.empty:
                ax.text(bi - 0.4, 0.5, f"no run of this\nstudy reached\n{style.fmt_steps(b)} steps", ha="left",
                        va="center", fontsize=style.NOTE_SIZE, color="#b2182b", transform=ax.get_xaxis_transform())
            for ai, agent in enumerate(agents):
                vals = sc.loc[sc["agent"] == agent, "return"].to_numpy()
                if len(vals) == 0:
                    continue
                m, lo, hi = bootstrap_mean_ci(vals, reps=reps, seed=seed)
                x = bi - 0.42 + width * (ai + 0.5)
                h = ax.errorbar([x], [m], yerr=[[m - lo], [hi - m]], fmt=A.marker(agent), color=A.colour(agent),
                                ms=6, capsize=2, elinewidth=1.2)
                handles.setdefault(A.label(agent), h)
                rows.append({"task": task, "budget": b, "kind": "this study", "agent": agent, "observation":
                             task.rsplit("-", 1)[-1], "mean": m, "ci_low": lo, "ci_high": hi, "sd": np.nan,
                             "n": len(vals), "source": "this study"})
            for r in task_anchors[task_anchors["steps"] == b].itertuples():
                x = bi - 0.42 + width * (len(agents) + anchor_names.index(anchor_label(r)) + 0.5)
                filled = "state" in str(r.observation)
                h = ax.errorbar([x], [r.mean], yerr=[[r.sd], [r.sd]], fmt=marker(r.agent), ms=7, color="#555555",
                                mfc="#555555" if filled else "white", mec="#333333", ecolor="#aaaaaa", capsize=2)
                anchor_handles.setdefault(anchor_label(r), h)
                rows.append({"task": task, "budget": b, "kind": "published anchor", "agent": r.agent,
                             "observation": r.observation, "mean": float(r.mean), "ci_low": np.nan,
                             "ci_high": np.nan, "sd": float(r.sd), "n": np.nan, "source": r.source})
        if task_anchors.empty:
            ax.text(0.98, 0.98, "no published anchor", ha="right", va="top", fontsize=style.NOTE_SIZE,
                    transform=ax.transAxes, color="#555555")
        for bi in range(1, len(budgets)):
            ax.axvline(bi - 0.5, color="#cccccc", lw=0.8)
        ax.set_xticks(range(len(budgets)), [f"{style.fmt_steps(b)}" for b in budgets])
        ax.set_xlim(-0.5, len(budgets) - 0.5)
        ax.grid(False, axis="x")
        ax.set_ylim(0, 1000)
        ax.set_title(task)
        ax.set_ylabel("evaluation return")
        ax.set_xlabel("budget (simulator steps)")
    for ax in axes.flat[len(tasks):]:
        ax.axis("off")
    frame.main.suptitle("Returns at fixed budgets: this study (colours) and published anchors (grey)")
    legend = {**handles, **anchor_handles}
    frame.legend(list(legend.values()), list(legend.keys()))
    files = frame.save(out_dir, "anchors")
    table = pd.DataFrame(rows, columns=["task", "budget", "kind", "agent", "observation", "mean", "ci_low",
                                        "ci_high", "sd", "n", "source"])
    files += style.write_table(table, tables_dir, "anchors", "This study vs published anchors (returns)")
    caption = (f"Evaluation return at the fixed budgets and the published step counts "
               f"({', '.join(style.fmt_steps(b) for b in budgets)} simulator steps; each run's last evaluation at or "
               f"below the budget, runs that stopped short are not scored): coloured points are this study's agents (mean over seeds, 95% bootstrap CI; {seeds_text}). "
               + sources_sentence(shown) + " Filled grey markers: full state; hollow: pixels.")
    return {"files": files, "caption": caption}
