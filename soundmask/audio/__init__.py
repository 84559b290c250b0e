"""Audio front-end: IO, activity chunking, embedders (registry), stereo time delay (TDoA).

Stages 1, 2 and 4 of the pipeline (DESIGN.md)::

    from soundmask.audio import load_audio, chunk, get_embedder, segment_tdoa
    audio, sr = load_audio("clip.wav")                 # (C, S) float32
    segments = chunk(audio, sr)                        # [Segment(start, end, score, kind)]
    tags = get_embedder("yamnet").tag(audio, sr, segments)   # [Tagging] per segment: 521 AudioSet scores
    delays = segment_tdoa(audio, sr, segments)         # [Tdoa] τ > 0: the LEFT microphone hears first

See :mod:`soundmask.audio.analyze` for all of them at once (what ``soundmask audio FILE`` prints).
"""

from soundmask.audio.chunking import activity, chunk, frame_precision_recall
from soundmask.audio.embed import EMBEDDERS, get_embedder, register_embedder
from soundmask.audio.io import load_audio, require_stereo, resample
from soundmask.audio.tdoa import direction_from_tdoa, gcc_phat, segment_tdoa, track_tdoa
from soundmask.audio.types import Segment, Tagging, Tdoa

__all__ = [
    "EMBEDDERS",
    "Segment",
    "Tagging",
    "Tdoa",
    "activity",
    "chunk",
    "direction_from_tdoa",
    "frame_precision_recall",
    "gcc_phat",
    "get_embedder",
    "load_audio",
    "register_embedder",
    "require_stereo",
    "resample",
    "segment_tdoa",
    "track_tdoa",
]
