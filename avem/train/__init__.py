"""Training: replay buffer, run configuration, the loop, checkpoints and tracking."""
