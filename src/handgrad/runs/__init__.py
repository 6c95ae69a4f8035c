"""Run directories: atomic files, checkpoints, TensorBoard logs, figures."""
