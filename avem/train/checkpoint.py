"""Checkpoints that survive damage: each new one is verified before it replaces the latest, which
is kept as ``checkpoint.prev.pt``; on resume a latest that does not load falls back to it.

A checkpoint is a ``torch.save`` zip archive. "Verified" means every member passes its CRC check
(``zipfile.testzip``): it reads the file once without unpickling anything.
"""
from __future__ import annotations

import os
import shutil
import sys
import zipfile
from pathlib import Path

import torch

from avem.train import rundir


class CheckpointError(RuntimeError):
    """No checkpoint of the run directory loads, or a new one came out unreadable. ``why``: the cause, one line."""

    def __init__(self, message: str, why: str = ""):
        super().__init__(message)
        self.why = why or message


def verify(path: Path) -> None:
    """Raise ``CheckpointError`` unless ``path`` is a complete, CRC-clean zip archive."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path}: written checkpoint is unreadable ({e})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: written checkpoint fails its CRC check at {bad}")


def save(out: Path, payload: dict) -> None:
    """Write ``payload`` as ``out/checkpoint.pt``; the previous latest becomes ``checkpoint.prev.pt``
    only once the new file is complete and verified.

    A process killed at any moment leaves a complete ``checkpoint.pt``: the previous latest is copied
    to ``checkpoint.prev.pt`` (itself written atomically) and then replaced by one rename, never moved
    away first (unless the copy fails, e.g. on a full disk: then it is moved). A copy, not a hard link:
    the two files must not share the bytes that damage would hit."""
    latest, prev = Path(out) / rundir.CHECKPOINT, Path(out) / rundir.CHECKPOINT_PREV

    def keep_previous(tmp: Path) -> None:
        verify(tmp)
        if latest.exists():
            try:
                with open(latest, "rb") as src:
                    rundir.atomic_write(prev, lambda f: shutil.copyfileobj(src, f))
            except OSError:  # no room for a copy (a full disk): move it, as a rename needs no space
                os.replace(latest, prev)

    rundir.atomic_write(latest, lambda f: torch.save(payload, f), before_replace=keep_previous)


def read(path: Path) -> dict:
    """One checkpoint file, on the CPU whatever device wrote it; ``CheckpointError`` (one line) if it does not load."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError... on damaged files
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: {why}", why) from None


def load(out: Path) -> dict:
    """The newest checkpoint of ``out`` that loads: ``checkpoint.pt``, else ``checkpoint.prev.pt``.

    Temporary files of a save that was killed are removed. A latest that does not load is reported
    in one line on stderr and set aside as ``checkpoint.pt.damaged`` (so it never becomes the previous
    one). Raises ``CheckpointError``, saying how to start over, if none loads.
    """
    out = Path(out)
    for name in (rundir.CHECKPOINT, rundir.CHECKPOINT_PREV):
        rundir.discard_partial_writes(out / name)
    damaged: list[tuple[Path, str]] = []
    for name in (rundir.CHECKPOINT, rundir.CHECKPOINT_PREV):
        path = out / name
        if not path.exists():
            continue
        try:
            ckpt = read(path)
        except CheckpointError as e:
            damaged.append((path, e.why))
            continue
        for bad, why in damaged:
            os.replace(bad, bad.with_name(bad.name + ".damaged"))
            print(f"avem: {bad} does not load ({why}); resuming from {name} at simulator step "
                  f"{ckpt['loop']['sim_step']} (the damaged file is kept as {bad.name}.damaged)", file=sys.stderr)
        return ckpt
    reasons = "; ".join(f"{p.name}: {why}" for p, why in damaged) or "no checkpoint file"
    raise CheckpointError(f"no checkpoint in {out} loads ({reasons}); to start over, delete {out} "
                          "(or move it aside) and run the same command again")
