"""AVEM: a benchmark and ablation suite for variational model-based RL in partially observed worlds."""

__version__ = "0.1.0"
