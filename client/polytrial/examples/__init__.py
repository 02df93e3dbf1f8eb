"""Runnable examples that drive a real Polytrial server.

    python -m polytrial.examples.hartmann6 --trials 30

They need the `server` extra (for `polytrial serve` and Rich).
"""
