"""Shipped results: publish a study's ended runs for git, and load committed runs into MLflow.

A study's runs live under ``RESULTS_DIR/runs/{task}/{agent}/seed{seed}/`` (``avem.train.rundir.run_path``).
A run that has ENDED (``run.json`` status ``finished``, or ``failed``: it diverged, a result kept in
the tables with its reason) is committed as its small files only (:data:`PUBLISHED`); checkpoints
and MLflow stores stay on the machine (``.gitignore``).

- :func:`publish` drops the machine-local fields (:data:`MACHINE_LOCAL`: the tracking URI, an
  absolute path on the machine that trained it) from every ended run's ``run.json`` and lists the
  files to commit. Given the study, it holds back an ended run whose probe the study asks for and
  which has no ``probe.csv`` yet (committed without it, the workflow would never probe it: an
  ended run is done), and runs the study does not expect. ``avem train`` never needs them again: an ended run is a no-op (finished) or
  refused (failed), with or without its checkpoint.
- :func:`import_runs` loads committed runs into an MLflow store as the training loop logs them:
  params (the resolved config, flattened; a config.yaml of the older flat layout is read through
  ``avem.train.config.from_dict``, so every run's params carry today's dotted names), tags, every metric at its simulator step, the config as
  an artifact, the end status (and ``end_reason``). Idempotent: a run directory already in the
  store (tag ``run_dir``, as the loop sets it) is skipped, so runs trained on this machine are not
  duplicated either.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import yaml

from avem.train import rundir

PUBLISHED = (rundir.CONFIG, rundir.RUN_JSON, rundir.EVAL, rundir.METRICS, rundir.PROBE)
"""The files of an ended run that are committed (those that exist)."""
MACHINE_LOCAL = ("tracking_uri",)
"""run.json fields that name a path on the machine that trained the run."""
ENDED = ("finished", "failed")
"""run.json statuses of runs that are results: never trained again."""
MLFLOW_STATUS = {"finished": "FINISHED", "failed": "FAILED"}


def run_dirs(results_dir: str | Path) -> list[Path]:
    """Every ``runs/{task}/{agent}/seed{n}`` directory under ``results_dir`` that holds a run.json, sorted."""
    return [d for d in rundir.find_runs(Path(results_dir) / "runs") if (d / rundir.RUN_JSON).exists()]


def has_ended(run_dir: str | Path) -> bool:
    """Whether run.json in ``run_dir`` says the run ended (:data:`ENDED`); False if absent or unreadable."""
    try:
        return rundir.read_run_json(Path(run_dir)).get("status") in ENDED
    except (ValueError, OSError, AttributeError):
        return False


def publish(results_dir: str | Path, study=None) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Strip :data:`MACHINE_LOCAL` fields from every ended run's run.json (in place, idempotent).

    ``study``: an ``avem.study.Study``; with it, runs it does not expect and ended runs it probes
    that have no probe.csv yet are held back. Returns ``(files to commit, [(run dir, why)] of the
    runs held back)``."""
    files, held = [], []
    expected = probed = None
    if study is not None:
        runs = Path(results_dir) / "runs"
        expected = {r.path(runs) for r in study.runs()}
        probed = {r.path(runs) for r in study.probe_runs()}
    for d in run_dirs(results_dir):
        info = rundir.read_run_json(d)
        if info.get("status") not in ENDED:
            held.append((d, f"not ended ({info.get('status')})"))
            continue
        if expected is not None and d not in expected:
            held.append((d, "not a run of the study"))
            continue
        if probed is not None and d in probed and not (d / rundir.PROBE).exists():
            held.append((d, "ended, but its probe (probe.csv) has not run"))
            continue
        if any(k in info for k in MACHINE_LOCAL):
            rundir.write_run_json(d, **{k: None for k in MACHINE_LOCAL})
        files += [d / name for name in PUBLISHED if (d / name).exists()]
    return files, held


def histories(run_dir: Path) -> list[tuple[int, dict[str, float]]]:
    """A run's metric history as the loop logs it: ``eval/return_mean`` and ``eval/return_std`` per
    evaluation step (eval.csv), every metrics.csv column but ``step`` per training episode (empty
    cells are metrics the agent did not report that episode)."""
    from avem.train.loop import eval_metrics

    rows: list[tuple[int, dict[str, float]]] = []
    returns: dict[int, list[float]] = defaultdict(list)
    with open(run_dir / rundir.EVAL, newline="") as f:
        for r in csv.DictReader(f):
            returns[int(r["step"])].append(float(r["return"]))
    rows += [(step, eval_metrics(v)) for step, v in sorted(returns.items())]
    if (run_dir / rundir.METRICS).exists():
        with open(run_dir / rundir.METRICS, newline="") as f:
            rows += [(int(r["step"]), {k: float(v) for k, v in r.items() if k != "step" and v != ""})
                     for r in csv.DictReader(f)]
    return rows


def import_runs(results_dir: str | Path, uri: str | None = None) -> dict[str, list[Path]]:
    """Load every ended run under ``results_dir`` into the MLflow store ``uri`` (default: the study's,
    ``sqlite:///RESULTS_DIR/mlflow/mlflow.db``). Returns ``{"imported", "present", "skipped"}`` run dirs
    (present: already in the store; skipped: not ended)."""
    from mlflow.tracking import MlflowClient

    from avem.config_tree import flatten
    from avem.study import default_tracking_uri
    from avem.train import config
    from avem.train.loop import run_identity
    from avem.train.retry import retry
    from avem.train.tracking import Tracker, ensure_experiment, runs_of_dir

    uri = uri or default_tracking_uri(results_dir)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    client, done = MlflowClient(uri), {"imported": [], "present": [], "skipped": []}
    for d in run_dirs(results_dir):
        info = rundir.read_run_json(d)
        if info.get("status") not in ENDED:
            done["skipped"].append(d)
            continue
        resolved = config.to_dict(*config.from_dict(yaml.safe_load((d / rundir.CONFIG).read_text())))
        name, tags = run_identity(resolved, d)
        exp_id = ensure_experiment(uri, resolved["run"]["experiment"])
        same = runs_of_dir(client, exp_id, d)
        if any(r.info.status != "RUNNING" for r in same):
            done["present"].append(d)
            continue
        for r in same:  # left RUNNING by an import killed half-way: imported again
            retry(lambda r=r: client.delete_run(r.info.run_id))
        tracker = Tracker(uri, resolved["run"]["experiment"], name, {**tags, "imported": "true"}, flatten(resolved))
        tracker.log_history(histories(d))
        tracker.log_artifact(d / rundir.CONFIG)
        if info.get("reason"):
            tracker.set_tag("end_reason", str(info["reason"]))
        tracker.finish(MLFLOW_STATUS[info["status"]])
        done["imported"].append(d)
    return done
