"""From tidy evaluation rows to per-run scores: learning-curve points and scores at a fixed budget.

Normalised score = episode return / 1000 (dm-control returns lie in [0, 1000]). A run's value at
an evaluation step is the mean return over that evaluation's episodes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.tidy import FAILED_RUN

MAX_RETURN = 1000.0
KEY = ["task", "agent", "seed"]


def domain_task(task_id: str) -> str:
    """``'cartpole-swingup-pos'`` -> ``'cartpole-swingup'`` (the anchors' task key)."""
    return task_id.rsplit("-", 1)[0] if task_id.count("-") >= 2 else task_id


def per_run_steps(eval_df: pd.DataFrame) -> pd.DataFrame:
    """One row per (task, agent, seed, step): ``return`` = mean over that evaluation's episodes."""
    if eval_df.empty:
        return pd.DataFrame(columns=KEY + ["step", "return"])
    out = eval_df.groupby(KEY + ["step"], as_index=False)["return"].mean()
    return out.sort_values(KEY + ["step"]).reset_index(drop=True)


def failed_keys(runs_table: pd.DataFrame | None) -> frozenset[tuple[str, str, int]]:
    """``(task, agent, seed)`` of the runs whose ``runs.csv`` status is ``failed`` (they diverged and ended)."""
    if runs_table is None or runs_table.empty:
        return frozenset()
    f = runs_table[runs_table["status"] == FAILED_RUN]
    return frozenset(zip(f["task"], f["agent"], f["seed"].astype(int)))


def at_budget(eval_df: pd.DataFrame, budget: int, failed: frozenset = frozenset()) -> pd.DataFrame:
    """Per run, the last evaluation at or below ``budget`` among runs that REACHED it or FAILED before it.

    A run reaches the budget when its last evaluation step is >= ``budget``; a run still running or
    cut off short of it is not scored. A run in ``failed`` (``failed_keys``: it diverged and ended) is
    scored at every budget by its last evaluation before it diverged: leaving it out would score only
    the runs that survived, so an agent that diverges more often would look better.
    Columns: ``task, agent, seed, step, return, score``.
    """
    pts = per_run_steps(eval_df)
    if pts.empty:
        return pd.DataFrame(columns=KEY + ["step", "return", "score"])
    reached = pts.groupby(KEY)["step"].transform("max") >= budget
    if failed:
        reached |= pts.set_index(KEY).index.isin(failed)
    pts = pts[reached & (pts["step"] <= budget)]
    out = pts.sort_values("step").groupby(KEY, as_index=False).last()
    out["score"] = out["return"] / MAX_RETURN
    return out.sort_values(KEY).reset_index(drop=True)


def matrix(scores: pd.DataFrame, agent: str, tasks: list[str]) -> tuple[np.ndarray | None, str]:
    """The ``(runs, tasks)`` score matrix of ``agent`` over ``tasks`` for ``analysis.stats``.

    The statistics need the same number of runs on every task. When seeds differ between tasks
    (a missing run), each task keeps its ``n = min`` lowest seeds and the note says which runs were
    set aside. Returns ``(None, reason)`` when the agent has no run on some task.
    """
    sub = scores[scores["agent"] == agent]
    cols, notes = [], []
    per_task = {t: sub[sub["task"] == t].sort_values("seed") for t in tasks}
    absent = [t for t, d in per_task.items() if d.empty]
    if absent:
        return None, f"{agent}: no run reached the budget on {', '.join(absent)}"
    n = min(len(d) for d in per_task.values())
    for t, d in per_task.items():
        if len(d) > n:
            notes.append(f"{t} seeds {d['seed'].iloc[n:].tolist()}")
        cols.append(d["score"].to_numpy()[:n])
    note = f"{agent}: set aside " + ", ".join(notes) if notes else ""
    return np.stack(cols, axis=1), note


def set_aside_note(notes) -> str | None:
    """One sentence from :func:`matrix` notes (de-duplicated, order kept)."""
    notes = [n for n in dict.fromkeys(notes) if n]
    if not notes:
        return None
    return "equal runs per task needed, so the extra runs were set aside: " + "; ".join(notes)
