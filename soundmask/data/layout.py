"""Tell which dataset layout a folder holds."""

from __future__ import annotations

from pathlib import Path

from soundmask.data.io import PathLike
from soundmask.errors import DataError

__all__ = ["LAYOUTS", "detect_layout"]

LAYOUTS = ("avsbench-s4", "avsbench-ms3", "avss", "3davs", "scene")

_NEEDS = (
    "scene: scene.json; "
    "3davs: input/ and sparse/0/; "
    "avsbench-s4: s4_meta_data.csv; "
    "avsbench-ms3: ms3_meta_data.csv; "
    "avss: metadata.csv beside v1s/, v1m/ or v2/"
)
_MARKER_FILES = {"scene.json", "s4_meta_data.csv", "ms3_meta_data.csv", "metadata.csv"}


def detect_layout(path: PathLike) -> str:
    """One of :data:`LAYOUTS` for ``path`` (a dataset/scene folder, or its marker file such as scene.json).

    Our scenes also carry the 3DAVS files; they are reported as "scene". Raises :class:`DataError` when
    ``path`` is missing or matches no layout (or both AVSBench layouts at once).
    """
    p = Path(path)
    if p.is_file() and p.name in _MARKER_FILES:
        p = p.parent
    if not p.exists():
        raise DataError("dataset folder not found", p, "check the path")
    if not p.is_dir():
        raise DataError("no known dataset layout: expected a folder, got a file", p, f"pass the folder; {_NEEDS}")
    if (p / "scene.json").is_file():
        return "scene"
    if (p / "input").is_dir() and (p / "sparse" / "0").is_dir():
        return "3davs"
    s4, ms3 = (p / "s4_meta_data.csv").is_file(), (p / "ms3_meta_data.csv").is_file()
    if s4 and ms3:
        raise DataError(
            "ambiguous dataset layout: both s4_meta_data.csv and ms3_meta_data.csv are here",
            p,
            "keep S4 and MS3 in separate folders, as the AVSBench release does",
        )
    if s4:
        return "avsbench-s4"
    if ms3:
        return "avsbench-ms3"
    if (p / "metadata.csv").is_file() and any((p / d).is_dir() for d in ("v1s", "v1m", "v2")):
        return "avss"
    raise DataError("no known dataset layout in this folder", p, _NEEDS)
