"""Audio input for the front-end: sound files and the audio track of videos, as float32 ``(channels, samples)``.

* WAV/FLAC/OGG (and anything else libsndfile reads) go through :func:`soundmask.data.io.read_audio`
  (``soundfile``); the audio stream of MP4/MKV/MOV/WEBM/AVI (and MP3/M4A/AAC/OPUS) is decoded with PyAV
  (FFmpeg).
* Resampling is ``soxr`` (SoX resampler, "HQ" quality: linear phase, ≥ 0.9 of the lower Nyquist kept flat).
* Every problem with the input — missing, empty, too short, undecodable, NaN/inf samples, sample rate 0, a video
  with no audio stream, the wrong channel count — raises a one-line :class:`~soundmask.errors.DataError` naming the
  file and the fix; no ``soundfile``/``av`` traceback escapes.
* Channel 0 is the LEFT channel (the stereo stage's convention, see :mod:`soundmask.audio.tdoa`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from soundmask.data.io import read_audio, require_file
from soundmask.errors import ConfigError, DataError

__all__ = ["MIN_DURATION", "SOUNDFILE_SUFFIXES", "load_audio", "require_stereo", "resample"]

PathLike = str | os.PathLike[str]

SOUNDFILE_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au", ".caf", ".w64"})
MIN_DURATION = 0.01  # s: a file shorter than this (or than 2 samples) holds nothing to analyse
_REENCODE = "re-encode it, e.g. `ffmpeg -i INPUT -vn -c:a pcm_s16le OUTPUT.wav`"


def load_audio(
    path: PathLike,
    sr: int | None = None,
    channels: int | None = None,
    mono: bool = False,
    min_duration: float = MIN_DURATION,
) -> tuple[np.ndarray, int]:
    """Read a sound file or a video's audio track as float32 ``(C, S)`` and its sample rate.

    ``sr``: resample to this rate (soxr) when the file has another one. ``channels``: the channel count the file must
    have (``2`` raises the message of :func:`require_stereo`). ``mono``: average the channels into one (after the
    ``channels`` check). ``min_duration``: shorter files (and files of fewer than 2 samples) are rejected.
    """
    p = require_file(path, "audio file", fix="check the path to the recording or video")
    if p.stat().st_size == 0:
        raise DataError("file is empty (0 bytes)", p, "re-export or re-download it")
    if p.suffix.lower() in SOUNDFILE_SUFFIXES:
        audio, rate = _read_soundfile(p)
    else:
        audio, rate = _read_container(p)
    _check_samples(audio, rate, p, min_duration)
    if channels is not None:
        if channels == 2:
            require_stereo(audio, p)
        elif audio.shape[0] != channels:
            raise DataError(
                f"audio has {audio.shape[0]} channel(s), expected {channels}", p, f"provide {channels}-channel audio"
            )
    if mono and audio.shape[0] > 1:
        audio = audio.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
    if sr is not None and int(sr) != rate:
        audio, rate = resample(audio, rate, int(sr)), int(sr)
    return np.ascontiguousarray(audio, dtype=np.float32), rate


def resample(audio: np.ndarray, sr_from: float, sr_to: float, quality: str = "HQ") -> np.ndarray:
    """``audio`` (``(C, S)`` or ``(S,)``) resampled from ``sr_from`` to ``sr_to`` Hz with soxr; float32, same layout.

    The output has ``ceil(S * sr_to / sr_from)`` samples (soxr's length), aligned to the input (no added delay).
    """
    if sr_from <= 0 or sr_to <= 0:
        raise ConfigError(f"sample rates must be > 0, got {sr_from} → {sr_to} Hz")
    x = np.asarray(audio, dtype=np.float32)
    if sr_from == sr_to:
        return x.copy()
    import soxr

    y = soxr.resample(np.ascontiguousarray(x.T), sr_from, sr_to, quality=quality)
    return np.ascontiguousarray(y.T, dtype=np.float32)


def require_stereo(audio: np.ndarray, path: PathLike | None = None) -> np.ndarray:
    """Return ``audio`` when it is ``(2, S)``; otherwise raise a :class:`DataError` telling the user what to record."""
    a = np.asarray(audio)
    n = 1 if a.ndim == 1 else a.shape[0]
    if a.ndim == 2 and n == 2:
        return a
    if n == 1:
        problem = "is mono; the stereo stage needs a 2-channel recording"
    else:
        problem = f"has {n} channels; the stereo stage needs a 2-channel recording (left, right)"
    where = Path(path) if path is not None else None
    raise DataError(
        problem if where is not None else f"audio {problem}",
        where,
        "record with a stereo microphone pair (channel 0 = left) or skip the stereo stage",
    )


# ------------------------------------------------------------------------------------------------ readers
def _read_soundfile(p: Path) -> tuple[np.ndarray, int]:
    """libsndfile first; a file it cannot decode (an OGG with a video stream, a WAV with an exotic codec) gets a
    second chance with FFmpeg, and the libsndfile message when that fails too."""
    _check_wav_rate(p)
    try:
        return read_audio(p)
    except DataError as e:
        if not e.problem.startswith("cannot decode"):
            raise
        try:
            return _read_container(p)
        except DataError:
            raise e from None


def _check_wav_rate(p: Path) -> None:
    """A RIFF/WAVE header declaring a sample rate of 0 gets its own message (libsndfile only says 'unsupported')."""
    try:
        with p.open("rb") as f:
            head = f.read(64)
    except OSError as e:
        raise DataError(f"cannot read audio file ({e})", p) from e
    pos = head.find(b"fmt ")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE" and pos >= 0 and len(head) >= pos + 16:
        rate = int.from_bytes(head[pos + 12 : pos + 16], "little")
        if rate == 0:
            raise DataError("sample rate is 0 Hz", p, "re-export the audio with a valid sample rate")


def _read_container(p: Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of a media container with PyAV into float32 ``(C, S)``."""
    import av

    try:
        with av.open(str(p), mode="r") as container:
            streams = container.streams.audio
            if len(streams) == 0:
                raise DataError("has no audio track", p, "use a video with sound or pass the audio file itself")
            stream = streams[0]
            rate = int(stream.codec_context.sample_rate or stream.rate or 0)
            if rate <= 0:
                raise DataError("audio track has sample rate 0 Hz", p, _REENCODE)
            blocks = _decode_planar(container, stream)
    except DataError:
        raise
    except (av.FFmpegError, OSError, ValueError, EOFError) as e:
        raise DataError(f"cannot decode the audio track ({type(e).__name__}: {e})", p, _REENCODE) from e
    if not blocks:
        raise DataError("audio track holds no samples", p, _REENCODE)
    return np.concatenate(blocks, axis=1), rate


def _decode_planar(container: object, stream: object) -> list[np.ndarray]:
    """Every decoded frame of ``stream`` as float32 planar ``(C, n)`` blocks."""
    import av

    resampler = av.AudioResampler(format="fltp")
    blocks: list[np.ndarray] = []
    for frame in container.decode(stream):  # type: ignore[attr-defined]
        for out in resampler.resample(frame):
            blocks.append(out.to_ndarray().astype(np.float32, copy=False))
    for out in resampler.resample(None):  # flush
        blocks.append(out.to_ndarray().astype(np.float32, copy=False))
    return [b for b in blocks if b.size]


def _check_samples(audio: np.ndarray, rate: int, p: Path, min_duration: float) -> None:
    if rate <= 0:
        raise DataError(f"sample rate is {rate} Hz", p, "re-export the audio with a valid sample rate")
    n = audio.shape[1]
    if n == 0:
        raise DataError("audio has no samples", p, "re-export the audio")
    need = max(2, int(np.ceil(min_duration * rate)))
    if n < need:
        raise DataError(
            f"audio is too short ({n} sample(s), {n / rate * 1e3:.2f} ms; need ≥ {need})", p, "use a longer recording"
        )
    if not np.isfinite(audio).all():
        raise DataError("audio contains NaN or infinite samples", p, "re-export the audio")
