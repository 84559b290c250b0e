"""Per-frame audio cues of a scene or a video: activity segments, YAMNet tags and the stereo time difference of
each frame window (:class:`FrameAudio`), the input of lifting and association."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from soundmask.data.types import Scene
from soundmask.errors import DataError

__all__ = ["FrameAudio", "audio_cues", "frame_audio", "scene_mono"]


@dataclass
class FrameAudio:
    """Per-frame audio cues: activity segments (s), one YAMNet tagging and one TDoA per frame window."""

    segments: list[tuple[float, float]]
    taggings: list[Any]
    tdoa: list[Any] | None
    window: float
    stereo: np.ndarray | None = field(default=None, repr=False)  # (2, S), kept for the steered responses
    sample_rate: int = 0
    windows: list[Any] | None = field(default=None, repr=False)  # the frame windows (Segment) of ``tdoa``

    def steered(self, frames: list[int], delays: list[np.ndarray]) -> list[np.ndarray] | None:
        """The GCC-PHAT correlation of frame window ``frames[j]`` at ``delays[j]`` (s) — see
        :func:`soundmask.audio.tdoa.steered_response`; None without stereo audio."""
        if self.stereo is None or not self.windows:
            return None
        from soundmask.audio.tdoa import steered_response

        return steered_response(self.stereo, self.sample_rate, [self.windows[i] for i in frames], delays)

    def similarity(self, times: list[float]) -> Callable[[float, float], float] | None:
        """Cosine similarity of the YAMNet embeddings of the frame windows at two of ``times`` (one per window, in
        order), for the timeline's ties; None without embeddings."""
        emb = {}
        for t, tg in zip(times, self.taggings, strict=True):
            if tg is not None and np.size(tg.embedding):
                e = np.asarray(tg.embedding, np.float64)
                emb[round(t, 6)] = e / max(float(np.linalg.norm(e)), 1e-12)
        if not emb:
            return None

        def sim(t: float, u: float) -> float:
            a, b = emb.get(round(t, 6)), emb.get(round(u, 6))
            return float(a @ b) if a is not None and b is not None else 0.0

        return sim

    def active(self, t: float, min_share: float = 0.25) -> bool:
        """Whether audio-active segments cover at least ``min_share`` of the frame window [t, t + window) (so a
        sound that starts a few milliseconds before the next frame does not make this one sounding)."""
        cover = sum(max(0.0, min(b, t + self.window) - max(a, t)) for a, b in self.segments)
        return cover >= min_share * self.window


def frame_audio(scene: Scene, times: list[float]) -> FrameAudio:
    """Chunk the scene's audio, tag each frame window with YAMNet and estimate its TDoA (stereo only)."""
    from soundmask.data.scene import load_mono, load_stereo

    root = scene.root
    window = 1.0 / scene.fps if scene.fps > 0 else 1.0
    if root is not None and (root / "audio" / "stereo.wav").is_file():
        audio = load_stereo(scene)
    elif root is not None and (root / "audio" / "mono.wav").is_file():
        audio = load_mono(scene)
    else:
        audio = _clips_audio(scene, len(times))
    return audio_cues(audio, scene.sample_rate, times, window)


def audio_cues(audio: np.ndarray, sr: int, times: list[float], window: float) -> FrameAudio:
    """:class:`FrameAudio` of a recording ((2, S) stereo, channel 0 = left, or (S,) mono) for frames at ``times``
    (s), each owning ``[t, t + window)``: activity segments, YAMNet tags, TDoA (stereo only)."""
    from soundmask.audio.chunking import chunk
    from soundmask.audio.embed import get_embedder
    from soundmask.audio.tdoa import segment_tdoa
    from soundmask.audio.types import Segment, Tagging

    audio = np.asarray(audio, dtype=np.float32)
    stereo = audio if audio.ndim == 2 and audio.shape[0] == 2 else None
    mono = stereo.mean(axis=0) if stereo is not None else audio.reshape(-1)
    dur = mono.shape[-1] / sr
    segs = [(s.start, s.end) for s in chunk(mono, sr, speech=False)]
    wins = [Segment(min(t, dur), min(t + window, dur)) for t in times]
    try:
        taggings: list[Tagging | None] = list(get_embedder("yamnet").tag(mono, sr, wins))
    except Exception:  # noqa: BLE001 - tagging is optional: the scene is still lifted without labels
        taggings = [None] * len(times)
    tdoa = segment_tdoa(stereo, sr, wins, spacing=None) if stereo is not None else None
    return FrameAudio(segs, taggings, tdoa, window, stereo=stereo, sample_rate=sr, windows=wins)


def scene_mono(scene: Scene) -> tuple[np.ndarray, int]:
    """(mono audio, sample rate) of a scene: ``audio/mono.wav``, else 3DAVS per-frame clips."""
    from soundmask.data.scene import load_mono

    root = scene.root
    if root is not None and (root / "audio" / "mono.wav").is_file():
        return load_mono(scene), scene.sample_rate
    return _clips_audio(scene, len(scene.frames)), scene.sample_rate


def _clips_audio(scene: Scene, n: int) -> np.ndarray:
    """Mono audio assembled from 3DAVS per-frame clips (audio_clips_mono/), one clip per frame."""
    from soundmask.data.threedavs import load_3davs_mono

    parts = []
    for i in range(n):
        try:
            a, _ = load_3davs_mono(scene, i)
        except DataError:
            a = np.zeros(int(scene.sample_rate / max(scene.fps, 1e-6)), np.float32)
        parts.append(np.asarray(a, np.float32).reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(1, np.float32)
