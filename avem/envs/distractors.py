"""Task-irrelevant distractor dimensions: noisy phase oscillators.

Dimension ``i`` shows ``sin(phase_i)`` in [-1, 1]; per agent step ``phase_i`` advances by a fixed
frequency ``FREQS[i]`` (evenly spaced in ``FREQ_RANGE``, rad/step) plus N(0, PHASE_NOISE^2)
phase noise drawn from the caller's Generator. The values are predictable a few steps ahead
from their own history but carry no information about the task or its reward.
"""
from __future__ import annotations

import numpy as np

FREQ_RANGE = (0.1, 0.5)
PHASE_NOISE = 0.1


class PhaseOscillators:
    """``n`` independent noisy phase oscillators; state is ``phase: (n,)`` float64."""

    def __init__(self, n: int):
        self.freqs = np.linspace(*FREQ_RANGE, n)
        self.phase = np.zeros(n)

    def reset(self, rng: np.random.Generator) -> None:
        """Draw uniform initial phases."""
        self.phase = rng.uniform(0.0, 2 * np.pi, self.phase.shape)

    def step(self, rng: np.random.Generator) -> None:
        """Advance every phase by one agent step."""
        noise = PHASE_NOISE * rng.standard_normal(self.phase.shape)
        self.phase = (self.phase + self.freqs + noise) % (2 * np.pi)

    def values(self) -> np.ndarray:
        """Current observed values ``(n,)`` float32 in [-1, 1]."""
        return np.sin(self.phase).astype(np.float32)

    def get_state(self) -> np.ndarray:
        """Picklable dynamics state: a copy of ``phase``."""
        return self.phase.copy()

    def set_state(self, phase: np.ndarray) -> None:
        """Inverse of ``get_state``."""
        self.phase = np.array(phase, dtype=np.float64).reshape(self.phase.shape)
