"""Config validation: a config's ``checks()`` lists ``(ok, message)`` pairs and ``require`` raises on the first failed one.

Range checks on single fields are declared with :func:`fields` and the rules below, so each condition
and its message come from one place (``fields(self, steps=positive, seq_len=at_least(2))``); checks
that relate several fields stay explicit ``(ok, message)`` pairs.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Iterable, NamedTuple

_FIELD_MESSAGE = re.compile(r"[A-Za-z_][\w.]* must be ")


class Rule(NamedTuple):
    """A condition on one value and the words that complete "NAME must be ...", e.g. ``">= 1"``."""

    ok: Callable[[Any], bool]
    text: str


def at_least(n: float) -> Rule:
    return Rule(lambda v: v >= n, f">= {n}")


def within(lo: float, hi: float, bounds: str = "[]") -> Rule:
    """``lo <= v <= hi``; ``bounds`` picks open ends as in interval notation: ``"(]"``, ``"[)"``, ``"()"``."""
    left, right = bounds
    return Rule(lambda v: (lo < v if left == "(" else lo <= v) and (v < hi if right == ")" else v <= hi),
                f"in {left}{lo}, {hi}{right}")


def one_of(choices: Iterable[Any]) -> Rule:
    choices = tuple(choices)
    return Rule(lambda v: v in choices, f"one of {', '.join(map(str, choices))}")


def optional(rule: Rule) -> Rule:
    """``rule`` or None."""
    return Rule(lambda v: v is None or rule.ok(v), f"{rule.text} or None")


positive = Rule(lambda v: v > 0, "> 0")
non_negative = at_least(0)


def fields(cfg: Any, **rules: Rule) -> list[tuple[bool, str]]:
    """One ``(ok, "NAME must be TEXT, got VALUE")`` check per ``NAME=rule``, on ``getattr(cfg, NAME)``."""
    out = []
    for name, rule in rules.items():
        value = getattr(cfg, name)
        out.append((rule.ok(value), f"{name} must be {rule.text}, got {value!r}"))
    return out


def blocks(cfg: Any) -> list[tuple[bool, str]]:
    """The ``checks()`` of every block of ``cfg`` (a dataclass field holding a config with ``checks``), each
    message naming its block as ``--set`` does: ``planner.plan_samples must be >= 2, got 1``."""
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value is not None and callable(getattr(value, "checks", None)):
            out += [(ok, f"{f.name}.{msg}" if _FIELD_MESSAGE.match(msg) else f"{f.name}: {msg}")
                    for ok, msg in value.checks()]
    return out


def require(checks: Iterable[tuple[bool, str]]) -> None:
    """Raise ``ValueError(message)`` for the first check whose ``ok`` is False."""
    for ok, msg in checks:
        if not ok:
            raise ValueError(msg)
