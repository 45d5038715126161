"""Figure 5: task-specificity of the learned model, as linear-probe R^2 from the agent's latent state.

``probe.csv`` (``avem probe``, collected) gives, per run and target group, the held-out R^2 of a
ridge probe from the agent's latent features to (a) the hidden velocities the observation masks,
(b) the task-irrelevant distractor dimensions, (c) the observed positions. The paper's claim
(the marginal-likelihood term keeps only task-relevant information) predicts a LOW distractor
R^2 for the ``ml`` variants compared with their ELBO partners, with velocity R^2 kept high.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from analysis import agents as A
from analysis import style
from analysis.stats import bootstrap_mean_ci
from avem.train import rundir

GROUPS: dict[str, str] = {
    "velocity": "hidden velocities\n(masked from the observation)",
    "distractor": "distractor dims\n(task-irrelevant)",
    "position": "positions\n(observed)",
}
R2_FLOOR = -0.5
SUMMARY_COLUMNS = ["agent", "target_group", "n_runs", "mean_r2", "ci_low", "ci_high", "tasks"]


def _group_order(groups) -> list[str]:
    """Target groups in ``GROUPS`` order, then any others sorted."""
    groups = set(groups)
    return [g for g in GROUPS if g in groups] + sorted(groups - set(GROUPS))


def summary(probe: pd.DataFrame, seed: int, reps: int) -> pd.DataFrame:
    """Mean held-out R^2 over runs (all tasks and seeds pooled) per agent and group, 95% bootstrap CI."""
    ok = probe[(probe["status"] == "ok") & probe["r2"].notna()]
    rows = []
    for agent in A.order(ok["agent"].unique()):
        for group in _group_order(ok["target_group"]):
            v = ok[(ok["agent"] == agent) & (ok["target_group"] == group)]
            if v.empty:
                continue
            m, lo, hi = bootstrap_mean_ci(v["r2"].to_numpy(float), reps=reps, seed=seed)
            rows.append({"agent": agent, "target_group": group, "n_runs": len(v), "mean_r2": m, "ci_low": lo,
                         "ci_high": hi, "tasks": " ".join(sorted(v["task"].unique()))})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def _notes(probe: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    notes = []
    na = probe[probe["status"] == "not_applicable"]
    if not na.empty:
        notes.append("no latent state to probe (not applicable): " + ", ".join(A.order(na["agent"].unique())))
    nt = probe[probe["status"] == "no_target"]
    probed = set(probe.loc[probe["status"] == "ok", "target_group"])
    for group in _group_order(nt["target_group"]):
        if group not in probed:  # one line, not one entry per agent, when no env of the study has the target
            notes.append(f"no {group} panel: no probed run's env has {group} dims")
        else:
            notes.append(f"{group} target absent from the env the agent saw: "
                         + ", ".join(A.order(nt.loc[nt["target_group"] == group, "agent"].unique())))
    failed = probe[probe["status"] == "run_failed"]
    if not failed.empty:
        notes.append("not probed, the run failed (missing_runs.csv): "
                     + ", ".join(sorted({rundir.run_name(r.task, r.agent, r.seed) for r in failed.itertuples()})[:3]))
    bad = probe[~probe["status"].isin(["ok", "not_applicable", "no_target", "run_failed"])]
    if not bad.empty:
        notes.append(f"{bad[['task', 'agent', 'seed']].drop_duplicates().shape[0]} probe file(s) failed: "
                     + ", ".join(sorted({rundir.run_name(r.task, r.agent, r.seed) for r in bad.itertuples()})[:3]))
    if not runs.empty:
        finished = runs[runs["status"] == "finished"][["task", "agent", "seed"]]
        have = probe[["task", "agent", "seed"]].drop_duplicates()
        lacking = finished.merge(have, how="left", indicator=True)
        lacking = lacking[lacking["_merge"] == "left_only"]
        if len(lacking):
            notes.append(f"{len(lacking)} finished run(s) without probe.csv ({', '.join(A.order(lacking['agent'].unique()))})")
    return notes


def figure(probe: pd.DataFrame, runs: pd.DataFrame, out_dir: Path, tables_dir: Path, seed: int, reps: int,
           missing: str | None) -> list[dict]:
    """Write ``probes.{png,pdf}`` and ``probes.{csv,md}``; returns manifest entries."""
    style.setup()
    table = summary(probe, seed, reps)
    style.write_table(table, tables_dir, "probe_summary", "Linear-probe held-out R^2 from the latent state")
    notes = _notes(probe, runs)
    if table.empty:
        msg = "No probe results (run `avem probe` on the runs; collect gathers RUN_DIR/probe.csv)."
        files = style.placeholder(out_dir, "probes", "Linear probes of the latent state",
                                  msg + (" " + "; ".join(notes) if notes else ""))
        return [{"files": files, "caption": "Linear probes of the latent state: " + msg}]
    groups = _group_order(table["target_group"])
    agents = A.order(table["agent"].unique())
    ok = probe[(probe["status"] == "ok") & probe["r2"].notna()]
    tasks = sorted(ok["task"].unique())
    text = " | ".join(n for n in [missing, *notes] if n) or None
    frame = style.Frame(3.4 * len(groups) + 3.0, 1.5 + 0.42 * len(agents),
                        [f"single run on {t}" for t in tasks] if len(tasks) > 1 else [], text)
    axes = frame.main.subplots(1, len(groups), sharey=True, squeeze=False)
    y = {a: i for i, a in enumerate(agents[::-1])}
    task_markers = dict(zip(tasks, ["o", "s", "^", "D", "v", "P", "X", "h"] * 4))
    lo_x = -0.12 if ok["r2"].min() >= -0.1 and table["ci_low"].min() >= -0.1 else R2_FLOOR - 0.03
    for ax, g in zip(axes[0], groups):
        for r in table[table["target_group"] == g].itertuples():
            c = A.colour(r.agent)
            ax.plot([max(r.ci_low, R2_FLOOR), max(r.ci_high, R2_FLOOR)], [y[r.agent]] * 2, color=c, lw=6, alpha=0.4,
                    solid_capstyle="butt")
            ax.plot([max(r.mean_r2, R2_FLOOR)], [y[r.agent]], marker="|", ms=14, mew=2.2, color=c)
            pts = ok[(ok["agent"] == r.agent) & (ok["target_group"] == g)]
            for p in pts.itertuples():
                ax.plot([max(p.r2, R2_FLOOR)], [y[r.agent] + 0.22], marker=task_markers[p.task], ms=4, ls="none",
                        color=c, alpha=0.8, mec="none")
        ax.axvline(0, color="#444444", lw=0.8, ls=":")
        ax.set_xlim(lo_x, 1.03)
        ax.set_title(GROUPS.get(g, g))
        ax.set_xlabel("held-out R$^2$ of a linear probe")
    axes[0, 0].set_yticks(list(y.values()), [A.label(a) for a in y])
    axes[0, 0].set_ylim(-0.6, len(agents) - 0.4)
    for tick, agent in zip(axes[0, 0].get_yticklabels(), y):
        tick.set_color(A.colour(agent))
    if len(tasks) > 1:
        hs = [plt.Line2D([], [], marker=task_markers[t], ls="none", color="#555555") for t in tasks]
        frame.legend(hs, [f"single run on {t}" for t in tasks])
    frame.main.suptitle("What the latent state encodes: linear-probe R$^2$ (mean over runs, 95% bootstrap CI)")
    files = frame.save(out_dir, "probes")
    n = ok.groupby("agent")[["task", "seed"]].apply(lambda d: len(d.drop_duplicates()))
    caption = ("Task-specificity of the learned model (the paper's first open question): held-out R^2 of ridge "
               "probes from each agent's latent state to the hidden velocities, the task-irrelevant distractor "
               "dimensions and the observed positions (train/test split by episode; each run probed on its own task, "
               "distractors exist only on 'distract' tasks). Bars: mean over runs (tasks and seeds pooled) with 95% bootstrap CI "
               f"({reps} resamples, seed {seed}); small marks: single runs (R^2 below {R2_FLOOR} drawn at "
               f"{R2_FLOOR}). Runs per agent: " + ", ".join(f"{a} {int(n[a])}" for a in agents if a in n.index)
               + ". The paper's claim predicts lower distractor R^2 for the ml variants than for their ELBO "
               "partners. " + ("; ".join(notes) + "." if notes else ""))
    return [{"files": files, "caption": caption.strip()}]
