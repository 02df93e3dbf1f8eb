"""Bayesian optimization for the suggestion engine.

`generator` imports PyTorch and BoTorch, which take seconds to load; import it
only where a model is needed (`engine.generate` does so lazily), so that the
server starts without them. `encoding` and `data` are plain NumPy.
"""
