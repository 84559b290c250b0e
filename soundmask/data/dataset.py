"""A lazy, indexable sequence of :class:`Clip` records: the shared shell of every 2D dataset reader."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload

import numpy as np

from soundmask.data.io import read_image
from soundmask.data.types import Clip

__all__ = ["ClipDataset", "read_frames"]


class ClipDataset(Sequence[Clip]):
    """Subclasses fill ``self._entries`` (one record per clip, each with a ``name``) and implement
    :meth:`_load`; files are opened only when an item is read. Supports ``len``, negative indices,
    slices (→ list) and iteration."""

    _entries: list[Any]

    def _load(self, i: int) -> Clip:
        raise NotImplementedError

    @property
    def names(self) -> list[str]:
        return [e.name for e in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def _entry(self, i: int) -> Any:
        if not -len(self) <= i < len(self):
            raise IndexError(f"clip index {i} out of range for {len(self)} clips")
        return self._entries[i]

    @overload
    def __getitem__(self, i: int) -> Clip: ...
    @overload
    def __getitem__(self, i: slice) -> list[Clip]: ...
    def __getitem__(self, i: int | slice) -> Clip | list[Clip]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        self._entry(int(i))  # range check
        return self._load(int(i) % len(self))

    def __iter__(self) -> Iterator[Clip]:
        for i in range(len(self)):
            yield self[i]


def read_frames(paths: Sequence[Any]) -> np.ndarray:
    """Read RGB frames into (T, H, W, 3) uint8; every frame must have the size of the first."""
    first = read_image(paths[0])
    size = first.shape[:2]
    return np.stack([first] + [read_image(p, size) for p in paths[1:]])
