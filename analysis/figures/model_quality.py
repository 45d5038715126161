"""Figure 7: what the world model predicts (the open-loop diagnostics of ``avem.models.diagnostics``).

Every generative agent logs, per training episode, the mean squared error of its prior's
open-loop predictions on held-out evaluation episodes, and the same error of the naive
"the last value repeats" prediction. The figure shows their ratio at 5 agent steps ahead
(below 1: the model has learned dynamics; above 1: it predicts worse than standing still), for
observations (top row) and rewards (bottom row); one column per agent family (with several tasks:
these two rows per task, ``terms.line_panels``), one line per agent, binned and bootstrapped over
seeds as in the terms figure.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import agents as A
from analysis import style
from analysis.figures import terms as T

RATIOS: dict[str, tuple[str, str, str]] = {  # name -> (error column, baseline column, panel label)
    "openloop_obs_ratio_h5": ("openloop_obs_err_h5", "openloop_obs_err_h5_baseline",
                              "observation error at 5 steps / last-obs baseline"),
    "openloop_reward_ratio_h5": ("openloop_reward_err_h5", "openloop_reward_err_h5_baseline",
                                 "reward error at 5 steps / last-reward baseline"),
}


def ratios(metrics: pd.DataFrame) -> pd.DataFrame:
    """``metrics`` with a ``train/<ratio>`` column per entry of ``RATIOS`` (NaN where the baseline is 0 or absent)."""
    out = metrics.copy()
    for name, (err, base) in ((n, v[:2]) for n, v in RATIOS.items()):
        e, b = f"train/{err}", f"train/{base}"
        out[f"train/{name}"] = (out[e] / out[b].where(out[b] > 0)) if e in out and b in out else float("nan")
    return out


def figure(metrics: pd.DataFrame, out_dir: Path, tables_dir: Path, seed: int, reps: int, note: str | None,
           seeds_text: str) -> dict:
    """The ``model_quality`` figure and table; a manifest entry."""
    title = "World-model quality: open-loop prediction error relative to the naive baseline"
    names = list(RATIOS)
    table = pd.DataFrame(columns=T.TERM_COLUMNS)
    if not metrics.empty and f"train/{RATIOS[names[0]][0]}" in metrics:
        table = T.binned(ratios(metrics), names, seed, reps)
    style.write_table(table, tables_dir, "model_quality", title + ": binned mean, 95% bootstrap CI over seeds")
    if table.empty:
        msg = "no agent reported open-loop errors (train/openloop_*) in metrics.csv"
        return {"files": style.placeholder(out_dir, "model_quality", title, f"Nothing to plot: {msg}."),
                "caption": f"{title}: {msg}."}
    files = T.line_panels(table, names, {n: v[2] for n, v in RATIOS.items()}, title, "model_quality", out_dir, note,
                          reference=1.0, log_y=True)
    agents = ", ".join(A.order(table["agent"].unique()))
    one = "per task and agent family (columns, one y axis per row)"
    caption = (f"How well each generative agent's world model ({agents}) predicts, {T.layout_words(table, one, 'ratio')}: the mean "
               "squared error of the prior's open-loop prediction 5 agent steps ahead, started from posterior "
               "states of held-out evaluation episodes and driven by their true actions, divided by the error of "
               "repeating the last observation (top) or reward (bottom), on a log scale; the dashed line at 1 is that naive "
               f"baseline, below it the model has learned dynamics. Binned into {T.BINS} step bins, mean over "
               f"seeds with 95% bootstrap band ({reps} resamples, seed {seed}); {seeds_text}. The raw errors at "
               "1, 5 and 15 steps are in metrics.csv (train/openloop_*).")
    return {"files": files, "caption": caption}
