"""Test-only `soundmask batch` jobs (imported by Ray's workers: tests/ is on their PYTHONPATH)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from soundmask.config import option
from soundmask.pipeline.batch import BatchItem, ItemOutput, ItemResult, batch_job


@dataclass
class EchoOptions:
    marker: str = option("", "the first item to start makes this file and kills its worker (os._exit)")
    scale: float = option(1.0, "factor of the value")


def echo_summary(results: list[ItemResult], opts: EchoOptions, out: Path) -> dict[str, Any]:
    return {"total": sum(r.metrics["value"] for r in results)}


@batch_job(inputs="scene", options=EchoOptions, summary=echo_summary)
def echo_job(item: BatchItem, opts: EchoOptions, out: Path) -> ItemOutput:
    """A scene folder's scene.json → a deterministic torch number (seeded by the scene's "seed")."""
    from soundmask.data.io import read_json

    meta = read_json(Path(item.input) / "scene.json", "scene.json")
    if opts.marker and not Path(opts.marker).exists():
        Path(opts.marker).write_text(str(os.getpid()))
        os._exit(1)  # the worker dies mid-item, as a killed or out-of-memory process would
    g = torch.Generator().manual_seed(int(meta["seed"]))
    x = torch.randn(96, 96, generator=g, dtype=torch.float64)
    value = float(torch.linalg.svdvals(x @ x.T).sum()) * opts.scale
    return ItemOutput({"seed": meta["seed"], "value": value, "threads": torch.get_num_threads()}, {"pid": os.getpid()})
