"""How a run ends before its budget: divergence (``failed``) or a stop signal (``interrupted``).

- Divergence: a non-finite loss among the scalars ``agent.update`` already returns (checked with
  ``math.isfinite``, so it costs nothing), or torch.distributions refusing NaN parameters in
  ``act``/``update``. Both become ``Diverged("diverged at simulator step N: critic_loss = nan")``.
  The run is marked ``failed`` with that reason; it is deterministic, so running it again would
  diverge again, and ``avem train`` refuses to (``AlreadyFailed``).
- Stop signals: SIGTERM (what SLURM sends before preemption or at the time limit) and SIGINT
  set a flag; the loop checks it after every simulator step and ends with ``Interrupted``. The
  run is marked ``interrupted`` and resumes from its last checkpoint when started again.

``RunEnded.exit_code`` is what ``avem train`` exits with: 3 for a failed run, 128 + the signal
number for an interrupted one (143 for SIGTERM, 130 for SIGINT).
"""
from __future__ import annotations

import math
import re
import signal
import threading
from contextlib import contextmanager
from typing import Callable

FAILED_EXIT = 3


class RunEnded(Exception):
    """The run stopped before its budget; ``status`` goes to run.json, ``exit_code`` to the shell."""

    status = "failed"
    mlflow_status = "FAILED"
    exit_code = FAILED_EXIT


class Diverged(RunEnded):
    """A loss or a distribution parameter became non-finite."""

    def __init__(self, step: int, what: str):
        super().__init__(f"diverged at simulator step {step}: {what}")


class AlreadyFailed(RunEnded):
    """``avem train`` on a run directory whose run failed: rerunning would repeat the failure."""


class Interrupted(RunEnded):
    """A stop signal arrived; the run is resumable from its last checkpoint."""

    status, mlflow_status = "interrupted", "KILLED"

    def __init__(self, signum: int, step: int):
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name} at simulator step {step}")


def check_finite(losses: dict, step: int) -> dict[str, float]:
    """``losses`` as floats; raises ``Diverged`` naming the first non-finite one."""
    values = {k: float(v) for k, v in losses.items()}
    for k, v in values.items():
        if not math.isfinite(v):
            raise Diverged(step, f"{k} = {v}")
    return values


_INVALID = re.compile(r"Expected parameter (\w+) .* of distribution (\w+)\(.*found invalid values", re.S)


@contextmanager
def nan_guard(step: Callable[[], int]):
    """Turn torch.distributions' "found invalid values" ``ValueError`` into ``Diverged`` at ``step()``."""
    try:
        yield
    except ValueError as e:
        match = _INVALID.search(str(e))
        if match is None:
            raise
        raise Diverged(step(), f"{match.group(2)} parameter {match.group(1)} is not finite") from e


class StopSignals:
    """While entered (main thread only), SIGTERM and SIGINT set a flag instead of ending the process.

    ``check(step)`` raises ``Interrupted`` once a signal came. The previous handlers come back on exit.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._note)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def _note(self, signum: int, frame) -> None:
        self.signum = signum

    def check(self, step: int) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum, step)
