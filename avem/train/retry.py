"""Retry with exponential back-off (for a shared SQLite store that may be briefly locked)."""
from __future__ import annotations

import random
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def retry(fn: Callable[[], T], attempts: int = 12, base_delay: float = 0.1, max_delay: float = 5.0) -> T:
    """Call ``fn`` until it succeeds; re-raise after ``attempts`` failures."""
    for i in range(attempts):
        try:
            return fn()
        except Exception:
            if i == attempts - 1:
                raise
            # jitter from the global `random` module: never touches the run's seeded generators
            time.sleep(min(max_delay, base_delay * 2 ** i) * (0.5 + random.random()))
    raise AssertionError("unreachable")
