"""The run directory: where it lives, its files, atomic writes, and the refusal to overwrite another run.

A study's runs live at :data:`RUN_PATH` under its runs directory (:func:`run_path`; the
Snakemake workflow uses the same string as its wildcard pattern). Layout of ``DIR``: ``config.yaml`` (resolved config + provenance), ``eval.csv`` (tidy, one row
per evaluation episode), ``checkpoint.pt`` (latest; the final one at the end) and
``checkpoint.prev.pt`` (the one before, while the run is unfinished), ``run.json`` (MLflow run
id, tracking URI, ``status``: ``running``, ``finished``, ``interrupted`` or ``failed`` with its
``reason``, ``devices``: where it ran, in order), ``metrics.csv`` (per-episode training metrics), and ``probe.csv`` once
``avem probe`` has run.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import yaml

CONFIG, EVAL, CHECKPOINT, RUN_JSON, METRICS = "config.yaml", "eval.csv", "checkpoint.pt", "run.json", "metrics.csv"
CHECKPOINT_PREV = "checkpoint.prev.pt"
PROBE = "probe.csv"
EVAL_COLUMNS = ("task", "agent", "seed", "obs", "step", "episode", "return", "length")
"""The columns of ``eval.csv``, one row per evaluation episode (``step`` in simulator steps)."""

RUN_PATH = "{task}/{agent}/seed{seed}"
"""Where a run lives under a study's runs directory: its identity. Given the strings
``"{task}"``, ``"{agent}"``, ``"{seed}"`` it is the Snakemake wildcard pattern of a run."""


def run_name(task: str, agent: str, seed) -> str:
    """``task/agent/seedN``: a run's path under the runs directory, also its name in messages and MLflow."""
    return RUN_PATH.format(task=task, agent=agent, seed=seed)


def run_path(runs: str | Path, task: str, agent: str, seed) -> Path:
    """The directory of one run: ``runs/{task}/{agent}/seed{seed}``."""
    return Path(runs) / run_name(task, agent, seed)


def find_runs(runs: str | Path) -> list[Path]:
    """Every directory under ``runs`` laid out as :data:`RUN_PATH` (``seed`` followed by digits), sorted."""
    return sorted(d for d in Path(runs).glob("*/*/seed*") if d.is_dir() and d.name[4:].isdigit())


def parse_run_path(d: Path) -> tuple[str, str, int]:
    """``(task, agent, seed)`` of a run directory found by :func:`find_runs`."""
    return d.parent.parent.name, d.parent.name, int(d.name[4:])


class RunDirError(ValueError):
    """The output directory holds something this run must not overwrite."""


_TMP_PREFIX, _TMP_SUFFIX = ".{}.", ".tmp"
"""Names of ``atomic_write``'s temporary files: ``.<name>.<random>.tmp`` beside the target."""


def discard_partial_writes(path: Path) -> None:
    """Remove the temporary files that ``atomic_write(path, ...)`` left behind when its process was killed."""
    path = Path(path)
    for tmp in path.parent.glob(f"{_TMP_PREFIX.format(path.name)}*{_TMP_SUFFIX}"):
        tmp.unlink(missing_ok=True)


def atomic_write(path: Path, write, before_replace=None) -> None:
    """Write through a temporary file in the same directory, then rename: readers never see half a file.

    ``before_replace(tmp)``, if given, runs on the complete temporary file just before the rename
    (to verify it, or to move the old file aside); if it raises, ``path`` is left untouched."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_TMP_PREFIX.format(path.name), suffix=_TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        if before_replace is not None:
            before_replace(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def check_existing(out: Path, resolved: dict) -> str:
    """Inspect ``out`` before writing anything. Returns ``"new"``, ``"resume"``, ``"finished"`` or ``"failed"``.

    Raises ``RunDirError`` if ``out`` holds a run of another configuration, or unrelated files.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} exists and is not a directory")
    cfg_path = out / CONFIG
    if not cfg_path.exists():
        leftovers = [p.name for p in out.iterdir()] if out.exists() else []
        if leftovers:
            raise RunDirError(f"--out {out} is not empty and holds no {CONFIG} ({sorted(leftovers)[:5]}...); "
                              "refusing to write a run into it")
        return "new"
    old = yaml.safe_load(cfg_path.read_text()) or {}
    old_core = _without_device(_same_layout({k: old.get(k) for k in ("run", "agent")}, resolved))
    resolved = _without_device(resolved)
    if old_core != resolved:
        diffs = _diff(old_core, resolved)
        raise RunDirError(f"--out {out} holds a run of another configuration (differences: {diffs}); "
                          "use another directory or delete this one")
    status = read_run_json(out).get("status")
    if status in ("finished", "failed"):
        return status
    return "resume" if (out / CHECKPOINT).exists() or (out / CHECKPOINT_PREV).exists() else "new"


def _same_layout(old: dict, resolved: dict) -> dict:
    """``old`` (a config.yaml's run and agent sections) in the layout of ``resolved``: a config written in
    another layout (the flat one before the agent's blocks) is read and written again; as it is if unreadable."""
    if old == resolved:
        return old
    from avem.train.config import from_dict, to_dict
    try:
        return to_dict(*from_dict(old))
    except (KeyError, TypeError, ValueError):
        return old


def _without_device(resolved: dict) -> dict:
    """``resolved`` without ``run.device``: where a run runs is not what it is (it may resume on another device)."""
    return {**resolved, "run": {k: v for k, v in (resolved.get("run") or {}).items() if k != "device"}}


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a or {}) | set(b or {})):
        va, vb = (a or {}).get(k), (b or {}).get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} -> {vb!r}")
    return out


def read_run_json(out: Path) -> dict:
    p = Path(out) / RUN_JSON
    return json.loads(p.read_text()) if p.exists() else {}


def write_run_json(out: Path, **fields) -> None:
    """Update ``run.json`` with ``fields``; a field given as None is removed."""
    data = {k: v for k, v in {**read_run_json(out), **fields}.items() if v is not None}
    atomic_text(Path(out) / RUN_JSON, json.dumps(data, indent=2, sort_keys=True) + "\n")
