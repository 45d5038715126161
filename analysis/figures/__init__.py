"""Every figure and statistics table of the study, from the collected tables (no training).

One module per question: ``curves`` (1, learning curves), ``aggregates`` (2, aggregate scores and
performance profiles at fixed budgets), ``ablations`` (3, paired probability of improvement),
``terms`` (4, the objective's terms over training), ``probes`` (5, linear probes of the latent
state), ``anchors`` (6, published anchors), ``model_quality`` (7, open-loop errors of the world models). :func:`make_all` runs them all and writes
``manifest.json`` (``avem.study.write_manifest``): ``[{"file": name, "caption": text}, ...]``, one
entry per PNG and per PDF.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis import style, tidy
from analysis.scores import failed_keys
from analysis.figures import ablations, aggregates, anchors, curves, model_quality, probes, terms
from avem.study import write_manifest


def _read(path: Path, columns) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=list(columns))
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=list(columns))


def load_tables(tables_dir: Path) -> dict[str, pd.DataFrame]:
    """The tables written by ``analysis collect`` (eval, metrics, runs, probe); absent ones are empty."""
    tables_dir = Path(tables_dir)
    if not (tables_dir / "eval.csv").exists() or not (tables_dir / "runs.csv").exists():
        raise FileNotFoundError(f"{tables_dir} lacks eval.csv/runs.csv: run `python -m analysis collect` first")
    return {"eval": _read(tables_dir / "eval.csv", tidy.EVAL_COLUMNS),
            "metrics": _read(tables_dir / "metrics.csv", tidy.KEY + ["step", "episode"]),
            "runs": _read(tables_dir / "runs.csv", tidy.RUN_COLUMNS),
            "probe": _read(tables_dir / "probe.csv", tidy.PROBE_COLUMNS)}


def presets_note(runs: pd.DataFrame) -> str:
    """`` Presets: agent: text; ...`` from runs.csv's ``preset`` column ("" if no agent has one): every
    caption names the agents that depart from the paper's setting, e.g. by a CPU size."""
    if "preset" not in runs.columns:
        return ""
    named = runs[runs["preset"].notna() & (runs["preset"].astype(str) != "")]
    items = sorted(set(zip(named["agent"], named["preset"].astype(str))))
    return " Presets: " + "; ".join(f"{agent}: {preset}" for agent, preset in items) + "." if items else ""


def _aggregates_and_ablations(ev, runs, budgets, out_dir, tables_dir, seed, reps, missing, seeds) -> list[dict]:
    entries, per_budget = aggregates.figures(ev, budgets, out_dir, tables_dir, seed, reps, missing, seeds,
                                             failed_keys(runs))
    return entries + ablations.figures(per_budget, runs, out_dir, tables_dir, seed, reps, missing)


def _as_list(fn, *args) -> list[dict]:
    out = fn(*args)
    return out if isinstance(out, list) else [out]


def make_all(tables_dir: Path, out_dir: Path, budgets: list[int], anchors_csv: Path | None = None,
             seed: int = 0, reps: int = 2000, workers: int = 1) -> list[dict]:
    """Write every figure to ``out_dir`` and every statistics table to ``tables_dir``; returns the manifest.
    ``workers`` > 1 draws independent figures in that many processes (same files: every bootstrap has its own seed)."""
    tables_dir, out_dir = Path(tables_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t = load_tables(tables_dir)
    ev, runs = t["eval"], t["runs"]
    anchor_df = anchors.load(anchors_csv)

    bad = tidy.not_finished(runs)
    style.write_table(bad[["task", "agent", "seed", "status", "final_step", "note"]] if not bad.empty else
                      pd.DataFrame(columns=["task", "agent", "seed", "status", "final_step", "note"]),
                      tables_dir, "missing_runs", "Expected runs that are missing, failed or unfinished")
    missing = tidy.missing_note(runs)
    seeds = curves.seeds_text(ev)
    common = (out_dir, tables_dir, seed, reps, missing)
    jobs = [  # (function, args) in manifest order; each writes its own files and tables
        (curves.figure, (ev, anchor_df, *common, runs)),
        (_aggregates_and_ablations, (ev, runs, budgets, *common, seeds)),
        (terms.figures, (t["metrics"], *common, seeds, ("terms",))),  # the two heaviest figures, apart
        (terms.figures, (t["metrics"], *common, seeds, ("losses",))),
        (probes.figure, (t["probe"], runs, *common)),
        (model_quality.figure, (t["metrics"], *common, seeds)),
        (anchors.figure, (ev, anchor_df, budgets, *common, seeds, failed_keys(runs))),
    ]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(min(workers, len(jobs))) as pool:
            results = [f.result() for f in [pool.submit(_as_list, fn, *args) for fn, args in jobs]]
    else:
        results = [_as_list(fn, *args) for fn, args in jobs]
    entries = [e for r in results for e in r]

    n_bad = len(bad)
    suffix = presets_note(runs) + (
        f" {n_bad} of {len(runs)} expected runs are missing, failed or unfinished (missing_runs.csv)."
        if n_bad else "")
    return write_manifest(out_dir, [(Path(f).name, e["caption"] + suffix)
                                    for e in entries for f in e["files"] if Path(f).suffix in (".png", ".pdf")])
