"""Collect run directories into tidy tables, and say which runs are missing, unfinished or unreadable.

Input: ``RUNS/{task}/{agent}/seed{seed}/`` (``avem.train.rundir.run_path``) as written by
``avem train`` (``eval.csv``, ``metrics.csv``, ``config.yaml``, ``run.json``, optional
``probe.csv`` from ``avem probe``) and the list of expected runs (columns ``task, agent, seed``).

Output tables (``collect``):

- ``eval.csv``: every evaluation row of every readable expected run (``eval.csv``'s columns);
- ``metrics.csv``: every training-episode row, with ``task, agent, seed`` first (the ``train/*``
  columns are the union over runs: an agent that does not report a term has it empty);
- ``runs.csv``: ONE ROW PER EXPECTED RUN: ``task, agent, seed, status, final_step,
  final_return, note, preset, set`` (the study's named departure from the paper for that agent, e.g. a
  CPU size, and its entry's ``set``, ``key=value; ...``; empty if none: the study's settings today, not a
  record of the run, whose own are in its ``config.yaml``) plus the ablation switches (``model,
  marginal_likelihood, action_prior, planning, switch_source``); ``status`` is one of :data:`STATUSES`. A run that ended itself
  early is ``failed`` (it diverged) or ``interrupted`` (SIGTERM/SIGINT, resumable), with
  run.json's ``reason`` in ``note``; its rows up to that point are kept;
- ``probe.csv``: the runs' ``probe.csv`` files concatenated (header only when there are none).

A run is never dropped silently: an unreadable run is ``failed (unreadable)`` with the reason in
``note``, and its rows are left out of ``eval.csv``/``metrics.csv`` (a half-read run would bias
the curves). Runs found under RUNS but not expected are reported on stderr and not collected.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis.agents import SWITCHES, switches_from_config, switches_from_name
from avem.train import rundir
from avem.train.rundir import EVAL_COLUMNS

FINISHED, RUNNING, MISSING, FAILED = "finished", "running (incomplete)", "missing", "failed (unreadable)"
FAILED_RUN, INTERRUPTED = "failed", "interrupted"
STATUSES: tuple[str, ...] = (FINISHED, RUNNING, INTERRUPTED, MISSING, FAILED_RUN, FAILED)
ENDED_EARLY = {"failed": FAILED_RUN, "interrupted": INTERRUPTED}
"""run.json statuses of runs that ended themselves early -> their ``runs.csv`` status."""

RUN_COLUMNS = ("task", "agent", "seed", "status", "final_step", "final_return", "note", "preset", "set",
               *SWITCHES, "switch_source")
PROBE_COLUMNS = ("task", "agent", "seed", "target_group", "r2", "n_samples", "status")
KEY = ["task", "agent", "seed"]


def read_expected(path: Path) -> pd.DataFrame:
    """EXPECTED.csv (``task, agent, seed`` and optionally ``preset`` and ``set``) -> de-duplicated frame in file
    order with ``preset`` and ``set`` columns ("" where none); ValueError if malformed."""
    df = pd.read_csv(path, keep_default_na=False, dtype={"preset": str, "set": str})
    missing = [c for c in KEY if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; expected columns task,agent,seed")
    df = df.assign(**{c: "" for c in ("preset", "set") if c not in df.columns})[KEY + ["preset", "set"]].copy()
    df["seed"] = df["seed"].astype(int)
    return df.drop_duplicates(subset=KEY).reset_index(drop=True)


def discover(runs: Path) -> pd.DataFrame:
    """Every ``{task}/{agent}/seed{n}`` directory under ``runs`` (sorted)."""
    return pd.DataFrame([rundir.parse_run_path(d) for d in rundir.find_runs(runs)], columns=KEY)


def _switches(agent: str, config: dict | None) -> dict:
    sw, source = switches_from_config((config or {}).get("agent")), "config"
    if sw is None:
        sw, source = switches_from_name(agent), "name"
    if sw is None:
        return {**{k: "" for k in SWITCHES}, "switch_source": ""}
    return {**{k: getattr(sw, k) for k in SWITCHES}, "switch_source": source}


def read_run(path: Path, task: str, agent: str, seed: int) -> tuple[dict, pd.DataFrame | None, pd.DataFrame | None]:
    """One run -> ``(runs.csv row, eval rows or None, metrics rows or None)``; never raises on bad files."""
    row = {"task": task, "agent": agent, "seed": int(seed), "status": MISSING, "final_step": np.nan,
           "final_return": np.nan, "note": ""}
    config = None
    if (path / rundir.CONFIG).exists():
        try:
            config = yaml.safe_load((path / rundir.CONFIG).read_text())
        except (yaml.YAMLError, OSError, UnicodeDecodeError):
            config = None
    row.update(_switches(agent, config))
    if not path.is_dir() or not any(path.iterdir()):
        row["note"] = "no run directory" if not path.is_dir() else "empty run directory"
        return row, None, None

    problems: list[str] = []
    status, info = None, {}
    try:
        info = json.loads((path / rundir.RUN_JSON).read_text())
        status = info.get("status")
    except FileNotFoundError:
        problems.append("run.json missing")
    except (json.JSONDecodeError, OSError, UnicodeDecodeError, AttributeError) as e:
        problems.append(f"run.json unreadable ({type(e).__name__})")

    ev = _read_csv(path / rundir.EVAL, EVAL_COLUMNS, problems, required=status not in ("running", "interrupted"))
    metrics = _read_csv(path / rundir.METRICS, ("step", "episode"), problems, required=False)
    if ev is not None and not ev.empty:
        ev = ev.assign(task=task, agent=agent, seed=int(seed))  # the directory is the run's identity
        last = ev["step"].max()
        row["final_step"] = float(last)
        row["final_return"] = float(ev.loc[ev["step"] == last, "return"].mean())
    if metrics is not None:
        metrics = metrics.drop(columns=[c for c in KEY if c in metrics.columns])
        metrics.insert(0, "seed", int(seed))
        metrics.insert(0, "agent", agent)
        metrics.insert(0, "task", task)

    if problems:
        row["status"], row["note"] = FAILED, "; ".join(problems)
        return row, None, None
    if status == "finished" and (ev is None or ev.empty):
        row["status"], row["note"] = FAILED, "finished but eval.csv has no rows"
        return row, None, None
    if status == "finished":
        row["status"] = FINISHED
    elif status == "running":
        row["status"] = RUNNING
        if ev is None or ev.empty:
            row["note"] = "no evaluation yet"
    elif status in ENDED_EARLY:
        row["status"], row["note"] = ENDED_EARLY[status], str(info.get("reason") or "no reason recorded")
    else:
        row["status"], row["note"] = FAILED, f"run.json status {status!r}"
        return row, None, None
    return row, ev, metrics


def _read_csv(path: Path, columns, problems: list[str], required: bool) -> pd.DataFrame | None:
    """Read a run's CSV and check its columns; append to ``problems`` instead of raising."""
    if not path.exists():
        if required:
            problems.append(f"{path.name} missing")
        return None
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        problems.append(f"{path.name} empty")
        return None
    except (pd.errors.ParserError, OSError, UnicodeDecodeError, ValueError) as e:
        problems.append(f"{path.name} unreadable ({type(e).__name__})")
        return None
    lacking = [c for c in columns if c not in df.columns]
    if lacking:
        problems.append(f"{path.name} lacks column(s) {lacking}")
        return None
    for c in ("step", "return"):
        if c in df.columns and not pd.api.types.is_numeric_dtype(df[c]):
            problems.append(f"{path.name} column {c!r} is not numeric")
            return None
    return df


def read_probe(path: Path, task: str, agent: str, seed: int) -> pd.DataFrame | None:
    """A run's ``probe.csv`` (None if absent); an unreadable file becomes one 'failed (unreadable)' row."""
    if not path.exists():
        return None
    try:
        df = pd.read_csv(path)
        if not set(PROBE_COLUMNS) <= set(df.columns):
            raise ValueError(f"columns {list(df.columns)}")
        return df.assign(task=task, agent=agent, seed=int(seed))[list(PROBE_COLUMNS)]
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, UnicodeDecodeError, ValueError):
        return pd.DataFrame([{"task": task, "agent": agent, "seed": int(seed), "target_group": "",
                              "r2": np.nan, "n_samples": 0, "status": FAILED}])


def collect(runs: Path, expected: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Read every expected run (all discovered runs if ``expected`` is None) into tidy tables.

    Returns ``{"eval", "metrics", "runs", "probe"}`` frames (see the module docstring).
    """
    runs = Path(runs)
    found = discover(runs) if runs.is_dir() else pd.DataFrame(columns=KEY)
    if expected is None:
        expected = found
    extra = found.merge(expected[KEY], on=KEY, how="left", indicator=True)
    extra = extra[extra["_merge"] == "left_only"]
    if len(extra):
        names = ", ".join(rundir.run_name(r.task, r.agent, r.seed) for r in extra.itertuples())
        print(f"analysis collect: ignoring {len(extra)} run(s) under {runs} not in the expected list: {names}",
              file=sys.stderr)

    rows, evals, metrics, probes = [], [], [], []
    for r in expected.itertuples(index=False):
        path = rundir.run_path(runs, r.task, r.agent, int(r.seed))
        row, ev, met = read_run(path, r.task, r.agent, r.seed)
        rows.append({**row, "preset": getattr(r, "preset", ""), "set": getattr(r, "set", "")})
        if ev is not None:
            evals.append(ev)
        if met is not None:
            metrics.append(met)
        pr = read_probe(path / rundir.PROBE, r.task, r.agent, r.seed) if row["status"] != MISSING else None
        if pr is not None:
            probes.append(pr)

    eval_df = pd.concat(evals, ignore_index=True) if evals else pd.DataFrame(columns=list(EVAL_COLUMNS))
    eval_cols = list(EVAL_COLUMNS) + sorted(set(eval_df.columns) - set(EVAL_COLUMNS))
    metrics_df = pd.concat(metrics, ignore_index=True) if metrics else pd.DataFrame(columns=KEY + ["step", "episode"])
    first = KEY + [c for c in ("step", "episode", "train_return", "steps_per_second") if c in metrics_df.columns]
    metrics_df = metrics_df[first + sorted(set(metrics_df.columns) - set(first))]
    probe_df = pd.concat(probes, ignore_index=True) if probes else pd.DataFrame(columns=list(PROBE_COLUMNS))
    return {"eval": eval_df[eval_cols], "metrics": metrics_df,
            "runs": pd.DataFrame(rows, columns=list(RUN_COLUMNS)), "probe": probe_df}


def write(tables: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    """Write the collected tables as ``out/{eval,metrics,runs,probe}.csv``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in ("eval", "metrics", "runs", "probe"):
        p = out / f"{name}.csv"
        tables[name].to_csv(p, index=False, lineterminator="\n")
        paths.append(p)
    return paths


def not_finished(runs_table: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``runs.csv`` whose status is not ``finished`` (missing, failed, incomplete)."""
    if runs_table.empty:
        return runs_table
    return runs_table[runs_table["status"] != FINISHED].reset_index(drop=True)


def missing_note(runs_table: pd.DataFrame, agents=None, tasks=None, limit: int = 3) -> str | None:
    """One line for a figure: how many runs are not finished, and the first few of them."""
    bad = not_finished(runs_table)
    if agents is not None and not bad.empty:
        bad = bad[bad["agent"].isin(list(agents))]
    if tasks is not None and not bad.empty:
        bad = bad[bad["task"].isin(list(tasks))]
    if bad.empty:
        return None
    items = [f"{rundir.run_name(r.task, r.agent, r.seed)} ({r.status}" + (f": {r.note})" if r.status == FAILED_RUN else ")")
             for r in bad.itertuples()]
    more = f" +{len(items) - limit} more" if len(items) > limit else ""
    counts = bad["status"].value_counts()
    summary = ", ".join(f"{int(counts[s])} {s}" for s in STATUSES if s in counts.index)
    return (f"{len(bad)} of {len(runs_table)} expected runs not finished ({summary}): "
            + "; ".join(items[:limit]) + more + " - see missing_runs.csv")
