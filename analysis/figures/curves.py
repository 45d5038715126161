"""Figure 1: learning curves, evaluation return vs simulator steps, small multiples by agent family.

One panel per agent family (``analysis.agents.by_family``: baselines, discriminative AVEM,
generative AVEM without and with planning, model-based baselines) and task, every panel on the
same y axis (0-1000) and, within a task, the same x axis, so panels compare at a glance and no
panel holds more than a family's few lines. With one task the families wrap into ``MAX_COLUMNS``
columns; with several, rows are families and columns tasks (the figure grows down, not across).
Each panel carries its own legend (short labels, the title names the family's name pattern).

One line per agent: the mean over seeds of each seed's mean evaluation return, with a 95%
percentile-bootstrap band over seeds (``analysis.stats.bootstrap_mean_ci``, seeded). Published
anchors of the same domain-task are drawn as grey reference marks at their step counts in every
panel of that task. A run that ended early as failed (it diverged: ``runs.csv`` status ``failed``,
reason in ``note``) is drawn as a cross in its agent's colour at its last evaluation, so the mean
line's later points are visibly over fewer seeds; the caption names each failed run and why.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.lines import Line2D

from analysis import agents as A
from analysis import style, tidy
from analysis.figures import anchors as anchor_marks
from analysis.scores import domain_task, per_run_steps
from analysis.stats import bootstrap_mean_ci
from avem.train import rundir

CURVE_COLUMNS = ["task", "agent", "step", "n_seeds", "mean", "ci_low", "ci_high"]
KEY_COLUMNS = ["task", "agent", "seed"]


def curve_table(points: pd.DataFrame, seed: int, reps: int) -> pd.DataFrame:
    """Mean and 95% bootstrap CI over seeds at every (task, agent, evaluation step); ``points``: one row per run and
    evaluation step (``analysis.scores.per_run_steps``)."""
    rows = []
    for (task, agent, step), g in points.groupby(["task", "agent", "step"], sort=True):
        m, lo, hi = bootstrap_mean_ci(g["return"].to_numpy(), reps=reps, seed=seed)
        rows.append({"task": task, "agent": agent, "step": int(step), "n_seeds": len(g), "mean": m,
                     "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=CURVE_COLUMNS)


def seeds_text(eval_df: pd.DataFrame) -> str:
    """'seeds per agent: sac 3, avem-... 2-3 (min-max over tasks)' for captions."""
    if eval_df.empty:
        return "no seeds"
    n = eval_df.groupby(["agent", "task"])["seed"].nunique()
    parts = []
    for agent in A.order(n.index.get_level_values(0)):
        lo, hi = int(n[agent].min()), int(n[agent].max())
        parts.append(f"{agent} {lo}" if lo == hi else f"{agent} {lo}-{hi}")
    return "seeds per agent and task: " + ", ".join(parts)


def failed_points(points: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Each run that ended as failed (diverged) with evaluations: ``task, agent, seed, step, return, note`` of
    its last evaluation; ``points``: one row per run and evaluation step (``analysis.scores.per_run_steps``, whose
    ``return`` is the mean over that evaluation's episodes)."""
    cols = KEY_COLUMNS + ["step", "return", "note"]
    if runs.empty or points.empty:
        return pd.DataFrame(columns=cols)
    failed = runs[runs["status"] == tidy.FAILED_RUN][KEY_COLUMNS + ["note"]]
    last = points.sort_values(KEY_COLUMNS + ["step"]).groupby(KEY_COLUMNS, as_index=False).last()
    return last.merge(failed, on=KEY_COLUMNS)[cols]


MAX_COLUMNS = 2
"""Family panels per row when the study has one task (two keep each panel wide enough for the README)."""
PANEL_WIDTH = 4.0
"""Inches per panel column."""
ANCHOR_OFFSET = 0.012
"""Spacing of the published-anchor marks at one step count, as a fraction of the x range."""


def draw_curves(ax, table: pd.DataFrame, agents: list[str]) -> None:
    """One line per agent (mean over seeds, markers every few points) with its 95% band; legend labels are the
    agents' short labels (``analysis.agents.short_label``)."""
    for agent in agents:
        c = table[table["agent"] == agent]
        if c.empty:
            continue
        ax.plot(c["step"], c["mean"], color=A.colour(agent), ls=A.linestyle(agent, agents), lw=1.8, marker=A.marker(agent),
                ms=3.5, markevery=max(1, len(c) // 8), label=A.short_label(agent))
        ax.fill_between(c["step"], c["ci_low"], c["ci_high"], color=A.colour(agent), alpha=0.18, lw=0)


def x_right(xmax: float, n_anchors: int, offset: float) -> float:
    """Right end of a panel's x axis: 5% beyond the last evaluation, or far enough that ``n_anchors`` marks
    spread ``offset`` apart around ``xmax`` (``anchors.draw_marks``) all lie inside."""
    if xmax <= 0:
        return 1.0
    return max(1.05 * xmax, xmax + (n_anchors / 2 + 0.5) * offset)


def figure(eval_df: pd.DataFrame, anchors: pd.DataFrame, out_dir: Path, tables_dir: Path, seed: int,
           reps: int, note: str | None, runs: pd.DataFrame | None = None) -> dict:
    """Write ``curves.{png,pdf}`` and the table ``curves.{csv,md}``; returns files and caption.

    Small multiples: one panel per agent family (``analysis.agents.by_family``) and task, all on one y
    axis (0-1000) and, per task, one x axis; published anchors are drawn in every panel of their task.
    ``runs``: ``runs.csv``, whose failed (diverged) runs are marked.
    """
    style.setup()
    points = per_run_steps(eval_df)
    table = curve_table(points, seed, reps)
    failed = failed_points(points, runs if runs is not None else pd.DataFrame())
    if table.empty:
        files = style.placeholder(out_dir, "curves", "Learning curves", "No evaluation data: " + (note or ""))
        files += style.write_table(table, tables_dir, "curves", "Learning curves")
        return {"files": files, "caption": "Learning curves: no evaluation data was collected."}
    tasks = sorted(table["task"].unique())
    families = A.by_family(table["agent"].unique())
    xmax_of = table.groupby("task")["step"].max()
    shown_anchors = pd.concat([anchors[(anchors["task"] == domain_task(t)) & (anchors["steps"] <= 1.05 * xmax_of[t])]
                               for t in tasks]) if not anchors.empty else anchors
    shared_labels = [anchor_marks.anchor_label(r) for r in shown_anchors.drop_duplicates("agent").itertuples()]
    nrows, ncols, cells = style.panel_cells(tasks, [f for f, _ in families], MAX_COLUMNS)
    legend_rows = max(-(-len(members) // 2) + 1 for _, members in families) + (len(tasks) > 1)
    omitted_any = {int(s) for t in tasks for s in anchors.loc[anchors["task"] == domain_task(t), "steps"]
                   if s > 1.05 * xmax_of[t]} if not anchors.empty else set()
    omitted_text = ("Published anchors at " + ", ".join(style.fmt_steps(s) for s in sorted(omitted_any))
                    + " steps lie beyond this range (anchors figure)." if omitted_any else None)
    frame = style.Frame(max(PANEL_WIDTH * ncols + 0.5, 7.5), (2.5 + 0.2 * legend_rows + 0.35) * nrows + 0.45,
                        shared_labels + (["failed run (diverged): its last evaluation"] if not failed.empty else []),
                        " | ".join(n for n in (note, omitted_text) if n) or None)
    axes = frame.main.subplots(nrows, ncols, squeeze=False, sharey=True, sharex=len(tasks) == 1 or "col")
    members_of = dict(families)
    shared: dict = {}
    for i, j, task, fam in cells:
        title = A.family_title(fam, "\n") + ("" if len(tasks) == 1 else f"\non {task}")
        draw_panel(axes[i, j], table[table["task"] == task], members_of[fam], title,
                   failed[(failed["task"] == task) & failed["agent"].isin(members_of[fam])], anchors, task,
                   float(xmax_of[task]), shared)
        if j == 0:
            axes[i, j].set_ylabel("evaluation return")
        if style.is_lowest(cells, i, j):
            axes[i, j].set_xlabel("simulator steps")
            axes[i, j].xaxis.set_tick_params(labelbottom=True)
        style.steps_axis(axes[i, j])
    style.hide_unused(axes, cells)
    frame.main.suptitle("Learning curves" + (f" on {tasks[0]}" if len(tasks) == 1 else "")
                        + ": mean evaluation return, 95% bootstrap CI over seeds")
    frame.legend(list(shared.values()), list(shared.keys()))
    files = frame.save(out_dir, "curves")
    files += style.write_table(table, tables_dir, "curves", "Learning curves (mean return, 95% bootstrap CI)")
    return {"files": files, "caption": caption_text(eval_df, tasks, families, failed, shown_anchors, anchors,
                                                    omitted_any, seed, reps)}


def draw_panel(ax, table: pd.DataFrame, members: list[str], title: str, failed: pd.DataFrame, anchors: pd.DataFrame,
               task: str, xmax: float, shared: dict) -> None:
    """One family's panel on one task: its curves, its failed runs' crosses, the task's anchor marks, the
    shared y range and an x range that holds the marks. ``shared``: legend handles, filled in here."""
    draw_curves(ax, table, members)
    if not table["agent"].isin(members).any():
        ax.text(0.5, 0.5, "no run of this family\non this task", ha="center", va="center", transform=ax.transAxes,
                fontsize=style.NOTE_SIZE, color="#777777")
    style.panel_legend(ax, title, PANEL_WIDTH)
    for r in failed.to_dict("records"):
        ax.plot([r["step"]], [r["return"]], ls="none", marker="X", ms=9, mec="black", mew=0.8,
                color=A.colour(r["agent"]), zorder=5)
        shared.setdefault("failed run (diverged): its last evaluation",
                          Line2D([], [], ls="none", marker="X", ms=9, mec="black", mew=0.8, color="white"))
    anchor_marks.draw_marks(ax, anchors, task, xmax * 1.05, shared, offset=ANCHOR_OFFSET * xmax)
    ax.set_ylim(0, 1000)
    task_anchors = anchors[anchors["task"] == domain_task(task)]
    n_marks = len({anchor_marks.anchor_label(r) for r in task_anchors.itertuples()})
    ax.set_xlim(0, x_right(xmax, n_marks, ANCHOR_OFFSET * xmax))


def caption_text(eval_df: pd.DataFrame, tasks: list[str], families: list, failed: pd.DataFrame,
                 shown_anchors: pd.DataFrame, anchors: pd.DataFrame, omitted_any: set, seed: int, reps: int) -> str:
    """The figure's caption: layout, families, estimator, seeds, failed runs and where the anchors are."""
    anchors_text = anchor_marks.sources_sentence(shown_anchors)
    if shown_anchors.empty and not anchors.empty:
        anchors_text = ("No published anchor lies within the plotted range (anchors are full-state or pixel results, "
                        "shown in the anchors figure).")
    if omitted_any:
        anchors_text += (" Anchors at " + ", ".join(style.fmt_steps(s) for s in sorted(omitted_any))
                         + " steps lie beyond the plotted range and are shown in the anchors figure.")
    failed_text = ("" if failed.empty else " Crosses: runs that failed (diverged) at their last evaluation: " + "; ".join(
        f"{rundir.run_name(r.task, r.agent, r.seed)} at {style.fmt_steps(r.step)} steps ({r.note})"
        for r in failed.itertuples()) + ".")
    caption = (f"Learning curves on {len(tasks)} task(s), one panel per agent family"
               + ("" if len(tasks) == 1 else " (rows) and task (columns)") + " ("
               + "; ".join(f"{fam}: {', '.join(m)}" for fam, m in families)
               + "), all on one y axis (and, per task, one x axis): evaluation return (deterministic policy) against "
               f"simulator steps; line = mean over seeds, band = 95% percentile bootstrap CI ({reps} resamples, seed "
               f"{seed}); {seeds_text(eval_df)}. Dashed: AVEM variants without planning." + failed_text + " "
               + anchors_text)
    return caption.strip()
