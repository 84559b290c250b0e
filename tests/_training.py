"""Helpers for the training tests: interrupt a run at the end of an epoch."""

from __future__ import annotations


class StopTraining(Exception):
    """Raised by :func:`stop_after_epochs` to interrupt a training run."""


def stop_after_epochs(n: int):  # noqa: ANN201 - a progress callback
    """A trainer progress callback that interrupts the run at the end of epoch ``n`` (after its checkpoint)."""
    seen = {"n": 0}

    def progress(what: str, done: int, total: int) -> None:
        if "val" in what:
            seen["n"] += 1
            if seen["n"] == n:
                raise StopTraining

    return progress
