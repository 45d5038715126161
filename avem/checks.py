"""Config validation: a config's ``validate()`` lists ``(ok, message)`` checks and raises on the first failed one."""
from __future__ import annotations

from typing import Iterable


def require(checks: Iterable[tuple[bool, str]]) -> None:
    """Raise ``ValueError(message)`` for the first check whose ``ok`` is False."""
    for ok, msg in checks:
        if not ok:
            raise ValueError(msg)
