"""The kernel: typed values, the engine protocol, budget, trace, and the context that runs branches. It imports nothing from the floors above it."""
