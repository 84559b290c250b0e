"""One staged runner for every pipeline (``demo``, ``run``, ``lift``): a stage is a name, a cache key from its
inputs and options, and a function from typed inputs to a typed output.

:meth:`Runner.run` runs a stage, times it and reports progress through one protocol, ``(stage, fraction, note)``
(:data:`Progress`; the CLI renders it with rich). With a cache folder a finished stage is recorded under its key
(:class:`~soundmask.pipeline.cache.StageCache`) and not run again while the key is unchanged:

* a stage that returns its result has it pickled in the cache and read back on a later run;
* a stage that writes files names them (``outputs``) and how to read them (``load``): it is fresh only while
  every output still exists.

A stage that fails in a way the pipeline can go on from returns a :class:`StageFailure` (e.g. COLMAP finds no
camera poses: ``soundmask run`` falls back to 2D). It is cached like any result, so a resumed run reports the same
failure without redoing the work. Exceptions are not cached: the stage stays unrecorded and runs again next time.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

from soundmask.pipeline.cache import StageCache, stage_key

__all__ = ["Progress", "Runner", "StageFailure", "StageProgress", "StageRun", "quiet", "stage_key"]

T = TypeVar("T")

Progress = Callable[[str, float, str], None]
"""(stage, fraction done in [0, 1], note) — the one progress protocol of the pipelines."""

StageProgress = Callable[[float, str], None]
"""(fraction, note) — what a stage's function reports; the runner adds the stage's name."""


def quiet(stage: str, fraction: float, note: str) -> None:
    """A :data:`Progress` that shows nothing."""


@dataclass(frozen=True)
class StageFailure:
    """A stage that failed in a way the pipeline can go on from: ``stage``, a one-line ``reason`` and, when there is
    one, what to try (``fix``)."""

    stage: str
    reason: str
    fix: str = ""


@dataclass
class StageRun:
    """One stage of a run: how long it took (the recorded time when it came from the cache) and whether it did."""

    name: str
    seconds: float
    cached: bool


@dataclass
class Runner:
    """Runs stages in order (see the module docstring). ``cache``: the folder of finished stages (None: nothing is
    cached); ``resume``: reuse the finished stages found there."""

    cache: Path | None = None
    progress: Progress = quiet
    resume: bool = True
    runs: list[StageRun] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._store = StageCache(self.cache) if self.cache is not None else None

    @overload
    def run(
        self, name: str, make: Callable[[StageProgress], T], *, key: str | None = None, silent: bool = False
    ) -> T: ...

    @overload
    def run(
        self,
        name: str,
        make: Callable[[StageProgress], object],
        *,
        key: str | None = None,
        outputs: Sequence[Path],
        load: Callable[[], T],
        silent: bool = False,
    ) -> T: ...

    def run(
        self,
        name: str,
        make: Callable[[StageProgress], Any],
        *,
        key: str | None = None,
        outputs: Sequence[Path] | None = None,
        load: Callable[[], Any] | None = None,
        silent: bool = False,
    ) -> Any:
        """Stage ``name``: ``make(report)`` computes its result (``report(fraction, note)`` shows its progress).

        With a cache and a ``key`` (see :func:`stage_key`) the result is reused while the key is unchanged:
        pickled in the cache, or — with ``outputs`` — the files ``make`` wrote, read back by ``load()``. A
        ``silent`` stage reports no progress (e.g. reading the input, so that a bad input fails with its error
        alone)."""
        if (outputs is None) != (load is None):
            raise ValueError("a stage that writes files needs both outputs and load")

        def report(fraction: float, note: str = "") -> None:
            if not silent:
                self.progress(name, fraction, note)

        report(0.0, "")
        store = self._store if key is not None else None
        if (
            store is not None
            and key is not None
            and self.resume
            and store.fresh(name, key, *(outputs if outputs is not None else [store.object_path(name)]))
        ):
            self.runs.append(StageRun(name, store.seconds(name) or 0.0, True))
            report(1.0, "cached")
            return load() if load is not None else store.load_object(name)
        t0 = _time.perf_counter()
        result = make(report)
        if store is not None and key is not None and outputs is None:
            store.save_object(name, result)
        dt = _time.perf_counter() - t0
        if store is not None and key is not None:
            store.done(name, key, dt)
        self.runs.append(StageRun(name, dt, False))
        report(1.0, f"{dt:.1f} s")
        return load() if load is not None else result

    @property
    def timings(self) -> dict[str, float]:
        """Seconds per stage run so far (rounded to ms)."""
        return {r.name: round(r.seconds, 3) for r in self.runs}

    def summary(self) -> dict[str, Any]:
        """``{stage: {"seconds", "cached"}}`` for a metrics file."""
        return {r.name: {"seconds": round(r.seconds, 2), "cached": r.cached} for r in self.runs}
