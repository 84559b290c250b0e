"""The whole audio front-end on one recording: chunking → tagging → stereo time delay (what ``soundmask audio``
prints).

One tagger pass serves twice: its per-patch "Silence" probabilities veto silent chunks, and its patches are pooled
per chunk for the tags. The time difference uses only each chunk's active frames; with a stereo file the
direction is the angle from the microphone pair's broadside (positive towards the left microphone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from soundmask.audio.chunking import chunk
from soundmask.audio.embed import get_embedder
from soundmask.audio.io import load_audio
from soundmask.audio.tdoa import segment_tdoa
from soundmask.audio.types import Segment, Tagging, Tdoa
from soundmask.constants import MIC_SPACING, SPEED_OF_SOUND
from soundmask.errors import ConfigError

__all__ = ["AudioReport", "analyze", "analyze_file"]


@dataclass
class AudioReport:
    """Segments of a recording with their tags and (stereo) time differences, plus timings."""

    path: str
    sample_rate: int
    channels: int
    duration: float
    segments: list[Segment]
    tags: list[Tagging]
    tdoa: list[Tdoa] | None  # None for mono recordings
    spacing: float
    embedder: str
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self, top_k: int = 3) -> dict[str, Any]:
        rows = []
        for i, s in enumerate(self.segments):
            row: dict[str, Any] = {
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "score": round(s.score, 3),
                "kind": s.kind,
            }
            if i < len(self.tags) and self.tags[i].labels:
                row["tags"] = [{"label": lab, "score": round(sc, 4)} for lab, sc in self.tags[i].top(top_k)]
            if self.tdoa is not None:
                d = self.tdoa[i]
                row["tdoa_us"] = None if np.isnan(d.tau) else round(d.tau * 1e6, 2)
                row["direction_deg"] = None if np.isnan(d.azimuth) else round(float(np.degrees(d.azimuth)), 2)
                row["tdoa_confidence"] = round(d.confidence, 3)
            rows.append(row)
        return {
            "path": self.path,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "duration": round(self.duration, 3),
            "embedder": self.embedder,
            "mic_spacing_m": self.spacing,
            "tdoa_sign": "positive when the left microphone (channel 0) hears first",
            "segments": rows,
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
        }


def analyze(
    audio: np.ndarray,
    sr: int,
    *,
    path: str = "",
    embedder: str | None = "yamnet",
    spacing: float = MIC_SPACING,
    speech: bool | Literal["auto"] = "auto",
    min_segment: float = 0.25,
    min_gap: float = 0.2,
    silence_threshold: float = 0.5,
) -> AudioReport:
    """Chunk, tag and localise ``audio`` (``(C, S)`` float32 at ``sr``); see the module docstring.

    ``embedder``: a name of :data:`soundmask.audio.embed.EMBEDDERS` that works without a checkpoint (``yamnet``)
    or None to skip tagging; ``spacing``: the microphone spacing in metres (bounds the delay search)."""
    if spacing <= 0:
        raise ConfigError(f"microphone spacing must be > 0 m, got {spacing}")
    a = np.atleast_2d(np.asarray(audio, np.float32))
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    model = get_embedder(embedder) if embedder else None
    patches = model.embed(a, sr, path=path or None) if model is not None else None
    timings["tagger"] = time.perf_counter() - t0
    silence = None
    if patches is not None and patches.scores is not None and model is not None and model.labels:
        labels = list(model.labels)
        if "Silence" in labels:
            silence = (patches.centres, patches.scores[:, labels.index("Silence")])
    t0 = time.perf_counter()
    segments = chunk(
        a,
        sr,
        min_segment=min_segment,
        min_gap=min_gap,
        speech=speech,
        silence_scores=silence,
        silence_threshold=silence_threshold,
    )
    timings["chunking"] = time.perf_counter() - t0
    tags = model.pool(patches, segments) if (model is not None and patches is not None and segments) else []
    tdoa = None
    t0 = time.perf_counter()
    if a.shape[0] == 2:
        tdoa = segment_tdoa(a, sr, segments, spacing=spacing, c=SPEED_OF_SOUND) if segments else []
    timings["tdoa"] = time.perf_counter() - t0
    return AudioReport(
        path, int(sr), int(a.shape[0]), a.shape[1] / sr, segments, tags, tdoa, spacing, embedder or "", timings
    )


def analyze_file(path: str | Path, **kwargs: Any) -> AudioReport:
    """:func:`analyze` on a sound file or a video's audio track (:func:`soundmask.audio.io.load_audio`)."""
    t0 = time.perf_counter()
    audio, sr = load_audio(path)
    t_load = time.perf_counter() - t0
    rep = analyze(audio, sr, path=str(path), **kwargs)
    rep.timings = {"load": t_load, **rep.timings}
    return rep
