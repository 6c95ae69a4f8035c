"""The benchmark figures of ``make bench``: handgrad against native PyTorch, each with a goal."""
