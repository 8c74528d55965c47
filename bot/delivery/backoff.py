"""The one retry delay: exponential backoff with jitter, for sends and CRM webhooks alike.

Pure and on its own, so the CRM integration and the sender share it without either
importing the other.
"""

from __future__ import annotations


def backoff_seconds(attempt: int, base: float, cap: float, jitter: float) -> float:
    """Exponential backoff with "equal jitter": half fixed, half random (`jitter` in [0, 1))."""
    ceiling = min(cap, base * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + jitter * ceiling / 2
