"""Aggregation kit: voting, stopping rules, answer equivalence, pruning signals, curves. Pure functions over samples and outcomes, on the kernel."""
