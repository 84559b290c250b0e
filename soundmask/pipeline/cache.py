"""Stage caching for long pipelines: a stage whose inputs (its *key*) have not changed is not run again.

A stage writes its outputs atomically (temporary path, then rename), and only then is its key recorded in
``<cache>/<stage>.done.json``. A run killed mid-way therefore leaves every finished stage complete and recorded, and
the unfinished one unrecorded: the next run with the same options skips the finished stages and redoes the rest,
which gives the same result as an uninterrupted run (every stage is a deterministic function of its key).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

from soundmask.data.io import atomic_path

__all__ = ["StageCache", "file_id", "stage_key"]


def stage_key(*parts: Any) -> str:
    """A short hash of JSON-serialisable ``parts`` (a stage's options and its upstream keys) and of the soundmask
    version, so that an upgrade recomputes every stage."""
    from soundmask import __version__

    blob = json.dumps([__version__, *parts], sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_id(path: str | Path | None) -> Any:
    """A file's identity for cache keys: resolved path, size and modification time ('' for none)."""
    if not path:
        return ""
    p = Path(path)
    st = p.stat() if p.is_file() else None
    return [str(p.resolve()), st.st_size if st else 0, int(st.st_mtime) if st else 0]


class StageCache:
    """Records of finished stages under ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _record(self, stage: str) -> Path:
        return self.root / f"{stage}.done.json"

    def fresh(self, stage: str, key: str, *outputs: Path) -> bool:
        """Whether ``stage`` finished with this ``key`` and its ``outputs`` still exist."""
        p = self._record(stage)
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            return False
        return rec.get("key") == key and all(Path(o).exists() for o in outputs)

    def done(self, stage: str, key: str, seconds: float) -> None:
        """Record ``stage`` as finished (call after its outputs are in place)."""
        with atomic_path(self._record(stage)) as tmp:
            tmp.write_text(json.dumps({"key": key, "seconds": round(seconds, 3)}))

    def seconds(self, stage: str) -> float | None:
        """How long the recorded run of ``stage`` took (None when not recorded)."""
        try:
            return float(json.loads(self._record(stage).read_text())["seconds"])
        except (OSError, ValueError, KeyError):
            return None

    def object_path(self, name: str) -> Path:
        """Where :meth:`save_object` keeps ``name``: ``<root>/<name>.pkl``."""
        return self.root / f"{name}.pkl"

    def save_object(self, name: str, obj: Any) -> Path:
        """Pickle ``obj`` to ``<root>/<name>.pkl`` atomically (a local cache, read back only by this package)."""
        p = self.object_path(name)
        with atomic_path(p) as tmp:
            with tmp.open("wb") as f:
                pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        return p

    def load_object(self, name: str) -> Any:
        with self.object_path(name).open("rb") as f:
            return pickle.load(f)  # noqa: S301 - our own cache file, written by save_object
