"""Figure 1: learning curves, evaluation return vs simulator steps, one panel per task.

One line per agent: the mean over seeds of each seed's mean evaluation return, with a 95%
percentile-bootstrap band over seeds (``analysis.stats.bootstrap_mean_ci``, seeded). Published
anchors of the same domain-task are drawn as grey reference marks at their step counts. A run that
ended early as failed (it diverged: ``runs.csv`` status ``failed``, reason in ``note``) is drawn as a
cross in its agent's colour at its last evaluation, so the mean line's later points are visibly
over fewer seeds; the caption names each failed run and why.
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


def figure(eval_df: pd.DataFrame, anchors: pd.DataFrame, out_dir: Path, tables_dir: Path, seed: int,
           reps: int, note: str | None, runs: pd.DataFrame | None = None) -> dict:
    """Write ``curves.{png,pdf}`` and the table ``curves.{csv,md}``; returns files and caption.
    ``runs``: ``runs.csv``, whose failed (diverged) runs are marked."""
    style.setup()
    points = per_run_steps(eval_df)
    table = curve_table(points, seed, reps)
    failed = failed_points(points, runs if runs is not None else pd.DataFrame())
    if table.empty:
        files = style.placeholder(out_dir, "curves", "Learning curves", "No evaluation data: " + (note or ""))
        files += style.write_table(table, tables_dir, "curves", "Learning curves")
        return {"files": files, "caption": "Learning curves: no evaluation data was collected."}
    tasks = sorted(table["task"].unique())
    agents = A.order(table["agent"].unique())
    xmax_of = table.groupby("task")["step"].max()
    shown_anchors = pd.concat([anchors[(anchors["task"] == domain_task(t)) & (anchors["steps"] <= 1.05 * xmax_of[t])]
                               for t in tasks]) if not anchors.empty else anchors
    labels = [A.label(a) for a in agents] + [anchor_marks.anchor_label(r) for r in
                                             shown_anchors.drop_duplicates("agent").itertuples()]
    nrows, ncols = style.grid(len(tasks), 3)
    frame = style.Frame(max(4.6 * ncols, 7.0), 3.3 * nrows + 0.4, labels, note)
    axes = frame.main.subplots(nrows, ncols, squeeze=False)
    handles: dict = {}
    anchor_handles: dict = {}
    omitted_any = set()
    for ax, task in zip(axes.flat, tasks):
        t = table[table["task"] == task]
        for agent in agents:
            c = t[t["agent"] == agent]
            if c.empty:
                continue
            (line,) = ax.plot(c["step"], c["mean"], color=A.colour(agent), ls=A.linestyle(agent), lw=1.8,
                              marker=A.marker(agent), ms=3.5, markevery=max(1, len(c) // 8))
            ax.fill_between(c["step"], c["ci_low"], c["ci_high"], color=A.colour(agent), alpha=0.18, lw=0)
            handles.setdefault(A.label(agent), line)
        for r in failed[failed["task"] == task].to_dict("records"):
            ax.plot([r["step"]], [r["return"]], ls="none", marker="X", ms=9, mec="black", mew=0.8,
                    color=A.colour(r["agent"]), zorder=5)
            handles.setdefault("failed run (diverged), in its agent's colour: its last evaluation",
                               Line2D([], [], ls="none", marker="X", ms=9, mec="black", mew=0.8, color="white"))
        xmax = float(t["step"].max())
        omitted = anchor_marks.draw_marks(ax, anchors, task, xmax * 1.05, anchor_handles, offset=0.012 * xmax)
        if omitted:
            omitted_any.update(omitted)
            ax.text(0.02, 0.98, "published anchors at " + ", ".join(style.fmt_steps(s) for s in omitted)
                    + " steps:\nbeyond this range (see anchors figure)", ha="left", va="top", transform=ax.transAxes,
                    fontsize=style.NOTE_SIZE, color="#555555")
        ax.set_title(task)
        ax.set_xlabel("simulator steps")
        ax.set_ylabel("evaluation return")
        ax.set_ylim(0, 1000)
        ax.set_xlim(0, xmax * 1.05 if xmax > 0 else 1)
        style.steps_axis(ax)
    for ax in axes.flat[len(tasks):]:
        ax.axis("off")
    frame.main.suptitle("Learning curves: mean evaluation return, 95% bootstrap CI over seeds")
    legend = {**handles, **anchor_handles}
    frame.legend(list(legend.values()), list(legend.keys()))
    files = frame.save(out_dir, "curves")
    files += style.write_table(table, tables_dir, "curves", "Learning curves (mean return, 95% bootstrap CI)")
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
    caption = (f"Learning curves on {len(tasks)} task(s): evaluation return (deterministic policy) against "
               f"simulator steps; line = mean over seeds, band = 95% percentile bootstrap CI ({reps} resamples, "
               f"seed {seed}); {seeds_text(eval_df)}. Dashed: AVEM variants without planning." + failed_text
               + " " + anchors_text)
    return {"files": files, "caption": caption.strip()}
