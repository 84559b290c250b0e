"""What every audio embedder/tagger provides, and the AudioSet log-mel front-end YAMNet and VGGish share.

An :class:`AudioEmbedder` turns mono audio into one :class:`PatchOutput` row per analysis patch (class scores
over its ``labels`` when it has a classifier, and an embedding vector), and pools those rows into one
:class:`~soundmask.audio.types.Tagging` per :class:`~soundmask.audio.types.Segment` with :meth:`~AudioEmbedder.tag`.

The front-end (:class:`LogMelParams`, :func:`htk_mel_matrix`, :func:`log_mel_spectrogram`, :func:`log_mel_patches`)
is our own numpy implementation of the features of YAMNet (``features.py``, Plakal & Ellis 2020,
tensorflow/models ``research/audioset/yamnet``) and VGGish (``mel_features.py``/``vggish_input.py``, Hershey et
al. 2017, "CNN architectures for large-scale audio classification"): 16 kHz mono; magnitude STFT with a
25 ms periodic Hann window, 10 ms hop and a 512-point FFT, no centring; 64 mel bands over 125-7500 Hz on the
HTK mel scale ``1127 ln(1 + f/700)`` with triangles evaluated at the FFT bin frequencies and the DC bin
excluded, as ``tf.signal.linear_to_mel_weight_matrix`` builds them; ``log(mel + offset)``; patches of 96 frames.
"""

from __future__ import annotations

import math
import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy.signal import get_window

from soundmask.audio.io import resample
from soundmask.audio.types import Segment, Tagging
from soundmask.errors import ConfigError, DataError

__all__ = [
    "VGGISH_FEATURES",
    "YAMNET_FEATURES",
    "AudioEmbedder",
    "LogMelParams",
    "PatchOutput",
    "htk_mel_matrix",
    "hz_to_mel_htk",
    "log_mel_patches",
    "log_mel_spectrogram",
    "pad_waveform",
    "prepare_audio",
    "soundmask_cache_dir",
]

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------------------------- records
@dataclass
class PatchOutput:
    """Per-patch output of an embedder. Patch ``i`` sees the input from ``times[i]`` to ``times[i] + window``
    seconds (times count from the start of the audio passed in, whatever its sample rate).

    ``scores`` (N, K) in [0, 1] over the embedder's ``labels``, ``None`` for a model without a classifier;
    ``embeddings`` (N, D) float32."""

    times: np.ndarray
    embeddings: np.ndarray
    scores: np.ndarray | None = None
    window: float = 0.0

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float64).reshape(-1)
        self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
        n = len(self.times)
        if self.embeddings.ndim != 2 or self.embeddings.shape[0] != n:
            raise ValueError(f"embeddings must be ({n}, D), got {self.embeddings.shape}")
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.float32)
            if self.scores.ndim != 2 or self.scores.shape[0] != n:
                raise ValueError(f"scores must be ({n}, K), got {self.scores.shape}")

    def __len__(self) -> int:
        return len(self.times)

    @property
    def centres(self) -> np.ndarray:
        """Centre time of each patch (s)."""
        return self.times + self.window / 2.0


# ----------------------------------------------------------------------------------------- audio input
def prepare_audio(audio: np.ndarray, sr: float, target_sr: int, path: PathLike | None = None) -> np.ndarray:
    """Check ``audio`` and return it as float32 mono at ``target_sr``.

    ``audio`` is ``(samples,)`` or ``(channels, samples)`` (channels are averaged), float in [-1, 1] or signed
    integer PCM (scaled to [-1, 1)). Raises a one-line
    :class:`ConfigError` for a sample rate that is not a positive finite number and :class:`DataError` for
    empty audio or NaN/inf samples (``path`` names the file in the message). Resampling is
    :func:`soundmask.audio.io.resample` (soxr, high quality)."""
    if (
        isinstance(sr, bool)
        or not isinstance(sr, (int, float, np.integer, np.floating))
        or not (math.isfinite(float(sr)) and float(sr) > 0)
    ):
        raise ConfigError(
            f"sample rate must be a positive number of Hz, got {sr!r}",
            path,
            "pass the audio's real sample rate, e.g. 16000",
        )
    x = np.asarray(audio)
    if x.dtype.kind == "i":  # integer PCM → [-1, 1)
        x = x / float(np.iinfo(x.dtype).max + 1)
    elif x.dtype.kind != "f":
        raise DataError(
            f"audio must be float (or signed integer PCM) samples, got dtype {x.dtype}",
            path,
            "pass a float array in [-1, 1]",
        )
    if x.ndim == 2:
        if x.shape[0] > x.shape[1]:
            raise DataError(
                f"audio of shape {x.shape} looks like (samples, channels)",
                path,
                "pass mono (samples,) or (channels, samples) audio",
            )
        x = x.mean(axis=0)
    elif x.ndim != 1:
        raise DataError(
            f"audio must be (samples,) or (channels, samples), got shape {x.shape}", path, "pass mono audio"
        )
    if x.size == 0:
        raise DataError("audio is empty (0 samples)", path, "pass at least one sample of audio")
    x = x.astype(np.float32, copy=False)
    bad = int(np.count_nonzero(~np.isfinite(x)))
    if bad:
        raise DataError(
            f"audio has {bad} NaN/inf sample(s) of {x.size}",
            path,
            "replace them, e.g. with np.nan_to_num, or re-decode the file",
        )
    if float(sr) != float(target_sr):
        x = resample(x, sr, target_sr)
        if x.size == 0:  # a few input samples at a high rate
            x = np.zeros(1, np.float32)
    return np.ascontiguousarray(x)


def soundmask_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/soundmask`` (``~/.cache/soundmask``), or a per-user temp folder when that is not
    writable."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "soundmask"
    try:
        root.mkdir(parents=True, exist_ok=True)
        if os.access(root, os.W_OK):
            return root
    except OSError:
        pass
    fallback = Path(tempfile.gettempdir()) / f"soundmask-cache-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


# -------------------------------------------------------------------------------------------- front-end
@dataclass(frozen=True)
class LogMelParams:
    """Parameters of the AudioSet log-mel front-end (defaults: YAMNet's ``params.py``).

    ``pad_end``: YAMNet pads the waveform with zeros to one whole patch and then to a whole number of patch
    hops (``features.pad_waveform``); VGGish drops the incomplete tail (``vggish_input.waveform_to_examples``) —
    we still pad a clip shorter than one patch to one patch so that every clip gets an output."""

    sample_rate: int = 16000
    stft_window_s: float = 0.025
    stft_hop_s: float = 0.010
    mel_bands: int = 64
    mel_min_hz: float = 125.0
    mel_max_hz: float = 7500.0
    log_offset: float = 0.001
    patch_window_s: float = 0.96
    patch_hop_s: float = 0.48
    pad_end: bool = True

    @property
    def window_samples(self) -> int:
        return round(self.sample_rate * self.stft_window_s)

    @property
    def hop_samples(self) -> int:
        return round(self.sample_rate * self.stft_hop_s)

    @property
    def fft_length(self) -> int:
        return 2 ** math.ceil(math.log2(self.window_samples))

    @property
    def patch_frames(self) -> int:
        return round(self.patch_window_s / self.stft_hop_s)

    @property
    def patch_hop_frames(self) -> int:
        return round(self.patch_hop_s / self.stft_hop_s)

    @property
    def patch_samples(self) -> int:
        """Waveform samples one patch sees: ``(frames - 1) * hop + window`` (15600 = 0.975 s for YAMNet)."""
        return (self.patch_frames - 1) * self.hop_samples + self.window_samples

    @property
    def patch_hop_samples(self) -> int:
        return self.patch_hop_frames * self.hop_samples


YAMNET_FEATURES = LogMelParams()
VGGISH_FEATURES = LogMelParams(log_offset=0.01, patch_hop_s=0.96, pad_end=False)


def hz_to_mel_htk(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale, ``1127 ln(1 + f / 700)`` (the one YAMNet/VGGish and ``tf.signal`` use)."""
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


@lru_cache(maxsize=8)
def htk_mel_matrix(params: LogMelParams = YAMNET_FEATURES) -> np.ndarray:
    """``(fft_length // 2 + 1, mel_bands)`` weights mapping a magnitude spectrum to mel bands, built like
    ``tf.signal.linear_to_mel_weight_matrix``: band edges equally spaced in HTK mel between ``mel_min_hz`` and
    ``mel_max_hz``, each band a triangle in mel evaluated at the FFT bin frequencies (peak 1, no area
    normalisation), and the DC bin's row zero. Read-only."""
    n_bins = params.fft_length // 2 + 1
    bin_mel = hz_to_mel_htk(np.linspace(0.0, params.sample_rate / 2.0, n_bins))[:, None]
    edges = np.linspace(hz_to_mel_htk(params.mel_min_hz), hz_to_mel_htk(params.mel_max_hz), params.mel_bands + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bin_mel - lower) / (centre - lower)
    falling = (upper - bin_mel) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights[0, :] = 0.0  # HTK leaves out the DC bin
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=4)
def _periodic_hann(n: int) -> np.ndarray:
    return get_window("hann", n, fftbins=True)  # periodic, as tf.signal.hann_window's default


def log_mel_spectrogram(waveform: np.ndarray, params: LogMelParams = YAMNET_FEATURES) -> np.ndarray:
    """``(frames, mel_bands)`` float32 log-mel spectrogram of a 16 kHz mono waveform, frames without centring
    (``frames = 1 + (samples - window) // hop``, zero when the waveform is shorter than one window)."""
    x = np.asarray(waveform, dtype=np.float64)
    win, hop = params.window_samples, params.hop_samples
    if x.size < win:
        return np.zeros((0, params.mel_bands), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop]
    magnitude = np.abs(np.fft.rfft(frames * _periodic_hann(win), n=params.fft_length, axis=-1))
    mel = magnitude @ htk_mel_matrix(params)
    return np.log(mel + params.log_offset).astype(np.float32)


def pad_waveform(waveform: np.ndarray, params: LogMelParams = YAMNET_FEATURES) -> np.ndarray:
    """Zero-pad the end of ``waveform`` as YAMNet's ``features.pad_waveform`` does: to at least one patch
    (``patch_samples``), then up to a whole number of patch hops, so that patch ``i`` starts at
    ``i * patch_hop_s`` and the last one ends at or after the end of the audio. With ``pad_end`` False
    (VGGish) only a clip shorter than one patch is padded."""
    x = np.asarray(waveform)
    need = params.patch_samples
    n = max(x.size, need)
    if params.pad_end:
        hop = params.patch_hop_samples
        n = need + hop * math.ceil((n - need) / hop)
    return np.pad(x, (0, n - x.size)) if n > x.size else x


def log_mel_patches(waveform: np.ndarray, params: LogMelParams = YAMNET_FEATURES) -> tuple[np.ndarray, np.ndarray]:
    """Pad (:func:`pad_waveform`), compute the log-mel spectrogram and frame it into patches.

    Returns ``(patches (N, patch_frames, mel_bands) float32, start times (N,) in seconds)``; patch ``i``
    sees ``params.patch_samples / sample_rate`` seconds of waveform from its start time."""
    spec = log_mel_spectrogram(pad_waveform(waveform, params), params)
    size, step = params.patch_frames, params.patch_hop_frames
    count = 1 + (spec.shape[0] - size) // step
    patches = np.lib.stride_tricks.sliding_window_view(spec, size, axis=0)[::step][:count]
    patches = patches.transpose(0, 2, 1).copy()  # (N, frames, bands), writable
    return patches, np.arange(count) * (step * params.stft_hop_s)


# ---------------------------------------------------------------------------------------------- embedder
class AudioEmbedder(ABC):
    """An audio model that scores and/or embeds patches of mono audio.

    Subclasses set ``name``, ``sample_rate`` (the model's rate; input at any rate is resampled) and ``labels``
    (the class names of ``PatchOutput.scores``, ``None`` for an embedding-only model) and implement
    :meth:`_embed` on checked, resampled audio. ``per_segment`` True makes :meth:`tag` run the model on each
    segment's own audio (for models whose one window covers a whole segment, e.g. CLAP/AST); False pools the
    patches of one pass over the whole clip."""

    name: str = ""
    sample_rate: int = 16000
    labels: tuple[str, ...] | None = None
    per_segment: bool = False

    @abstractmethod
    def _embed(self, waveform: np.ndarray) -> PatchOutput:
        """Per-patch output of float32 mono ``waveform`` at ``self.sample_rate`` (non-empty, finite)."""

    def embed(self, audio: np.ndarray, sr: float, *, path: PathLike | None = None) -> PatchOutput:
        """Per-patch scores and embeddings of ``audio`` (mono ``(samples,)`` or ``(channels, samples)``, any
        float sample rate ``sr``). ``path`` only names the file in error messages."""
        return self._embed(prepare_audio(audio, sr, self.sample_rate, path))

    def tag(
        self,
        audio: np.ndarray,
        sr: float,
        segments: Sequence[Segment] | None = None,
        *,
        path: PathLike | None = None,
    ) -> list[Tagging]:
        """One :class:`Tagging` per segment (one for the whole clip when ``segments`` is None): the mean of the
        scores and the mean of the embeddings of the patches whose centre lies inside the segment (the patch
        overlapping it most when none does). Segments must lie within the audio."""
        x = prepare_audio(audio, sr, self.sample_rate, path)
        duration = x.size / self.sample_rate
        segs = list(segments) if segments is not None else [Segment(0.0, duration)]
        tol = 1.0 / self.sample_rate + 1e-6
        for s in segs:
            if s.start < -tol or s.end > duration + tol:
                raise DataError(
                    f"segment [{s.start:.3f}, {s.end:.3f}] s lies outside the {duration:.3f} s of audio",
                    path,
                    "pass segments found on this audio",
                )
        if not self.per_segment:
            return self.pool(self._embed(x), segs)
        out: list[Tagging] = []
        for s in segs:
            a = round(s.start * self.sample_rate)
            b = max(round(s.end * self.sample_rate), a + 1)
            part = self._embed(x[a:b] if a < x.size else x[-1:])
            out += self.pool(part, [s], np.arange(len(part)))
        return out

    def pool(self, out: PatchOutput, segments: Sequence[Segment], idx: np.ndarray | None = None) -> list[Tagging]:
        """Pool the patches of one :meth:`embed` pass per segment (mean scores, mean embedding) — e.g. to reuse
        one pass for a silence veto and for tagging. ``idx`` forces the patch indices (all segments)."""
        labels = tuple(self.labels) if self.labels is not None else ()
        res: list[Tagging] = []
        for s in segments:
            k = _patches_in(out, s.start, s.end) if idx is None else idx
            scores = out.scores[k].mean(axis=0) if out.scores is not None else np.zeros(0, np.float32)
            res.append(
                Tagging(
                    labels,
                    scores.astype(np.float32),
                    out.embeddings[k].mean(axis=0).astype(np.float32),
                    self.name,
                    float(s.start),
                    float(s.end),
                )
            )
        return res

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, sample_rate={self.sample_rate})"


def _patches_in(out: PatchOutput, t0: float, t1: float) -> np.ndarray:
    """Indices of the patches whose centre is in [t0, t1]; else the one overlapping it most (nearest centre on
    a tie)."""
    c = out.centres
    idx = np.flatnonzero((c >= t0) & (c <= t1))
    if idx.size:
        return idx
    overlap = np.minimum(out.times + out.window, t1) - np.maximum(out.times, t0)
    distance = np.abs(c - (t0 + t1) / 2.0)
    return np.array([np.lexsort((distance, -overlap))[0]])
