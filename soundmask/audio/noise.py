"""Noise and ambience to replace a clip's audio with: every noise source of soundmask in one place.

A :class:`NoiseSource` renders ``(channels, samples)`` float32 noise of unit RMS; :func:`noise_like` scales it to
the RMS of a given signal (the "same level" of a listening test). The sources (:func:`noise_sources`):

* **coloured noise**, generated and seeded: ``white`` (flat spectrum), ``pink`` (power ∝ 1/f) and ``brown``
  (power ∝ 1/f², like integrated white noise): Gaussian white noise shaped in the frequency domain, each channel
  drawn independently;
* **real ambience recordings** shipped by Debian's ``sonic-pi-samples`` (``/usr/share/sonic-pi/samples``; from
  freesound.org, placed in the public domain under **CC0 1.0** by their authors, see the package's
  ``samples/README.md``): vinyl hiss and crackle, a sauna's ambience, a running 3D printer and a low drone —
  steady backgrounds, none of them an object category of the generator (see :data:`SONIC_PI_NOISE`). Only those
  installed are used (``install.sh`` installs the package);
* **the user's own** files: every WAV/FLAC/OGG of a folder (:func:`folder_noise_sources`, ``--noise-dir``).

Recordings are resampled (soxr) to the clip's rate, averaged or repeated to its channel count, and looped from a
seeded random offset to its length (a recording shorter than the clip repeats, with a 20 ms cross-fade at each
seam).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from soundmask.errors import ConfigError, DataError

__all__ = [
    "COLOURS",
    "SONIC_PI_LICENCE",
    "SONIC_PI_NOISE",
    "SONIC_PI_ROOT",
    "NoiseSource",
    "coloured_noise",
    "fit_audio",
    "folder_noise_sources",
    "noise_like",
    "noise_sources",
    "rms",
]

PathLike = str | os.PathLike[str]

COLOURS = ("white", "pink", "brown")
SONIC_PI_ROOT = Path("/usr/share/sonic-pi/samples")
SONIC_PI_LICENCE = "CC0-1.0"
#: sample file stem → (what it is, its freesound.org origin) — the package's samples/README.md.
SONIC_PI_NOISE: dict[str, tuple[str, str]] = {
    "vinyl_hiss": ("vinyl record hiss and crackle", "freesound.org/people/veezay/sounds/130393"),
    "ambi_sauna": ("sauna ambience", "freesound.org/people/hullum/sounds/415551"),
    "loop_3d_printer": ("a 3D printer running (machine noise)", "freesound.org/people/hullum/sounds/415571"),
    "ambi_drone": ("a low ambient drone", "freesound.org/people/Autistic%20Lucario/sounds/195341"),
}
_NOISE_SUFFIXES = (".wav", ".flac", ".ogg")
_SEAM_S = 0.02


@dataclass(frozen=True)
class NoiseSource:
    """One kind of noise: ``name`` (``white``, ``sonic-pi:vinyl_hiss``, ``user:rain.flac``), ``kind`` (``coloured``
    or ``recording``), ``path`` of a recording, what it is, its ``licence`` and ``attribution``."""

    name: str
    kind: Literal["coloured", "recording"]
    path: str = ""
    description: str = ""
    licence: str = ""
    attribution: str = ""

    def render(self, channels: int, samples: int, sr: int, rng: np.random.Generator) -> np.ndarray:
        """``(channels, samples)`` float32 noise of unit RMS (all channels together) at ``sr`` Hz, drawn with
        ``rng`` (the colour's samples, or a recording's start offset)."""
        if channels < 1 or samples < 1:
            raise DataError(f"noise needs at least one channel and one sample, got ({channels}, {samples})")
        if self.kind == "coloured":
            x = coloured_noise(self.name, channels, samples, rng)
        else:
            rec = _recording(self.path, int(sr))
            x = fit_audio(rec, sr, sr, channels, samples, offset=int(rng.integers(rec.shape[1])))
        r = rms(x)
        return (x / r if r > 0 else x).astype(np.float32)


def rms(audio: np.ndarray) -> float:
    """Root mean square over every channel and sample (0 for an empty array)."""
    a = np.asarray(audio, dtype=np.float64)
    return float(np.sqrt(np.mean(a * a))) if a.size else 0.0


def coloured_noise(colour: str, channels: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``(channels, samples)`` float64 ``white``/``pink``/``brown`` noise (power ∝ 1, 1/f, 1/f²), zero mean, not
    normalised: white Gaussian noise whose spectrum is scaled by ``f^-α/2`` (the DC bin gets the first bin's gain)."""
    if colour not in COLOURS:
        raise ConfigError(f"unknown noise colour {colour!r}", fix=f"use one of {', '.join(COLOURS)}")
    x = rng.standard_normal((channels, samples))
    if colour == "white" or samples < 3:
        return x - x.mean(1, keepdims=True)
    alpha = {"pink": 1.0, "brown": 2.0}[colour]
    f = np.fft.rfftfreq(samples)
    f[0] = f[1]
    spec = np.fft.rfft(x, axis=1) * f ** (-alpha / 2)
    spec[:, 0] = 0.0
    return np.fft.irfft(spec, n=samples, axis=1)


def fit_audio(audio: np.ndarray, sr_from: int, sr_to: int, channels: int, samples: int, offset: int = 0) -> np.ndarray:
    """``audio`` (C, S) made ``(channels, samples)`` float32 at ``sr_to``: resampled (soxr), its channels
    averaged into one and repeated when the counts differ, and read from ``offset``, looping (20 ms cross-fade at
    each seam) when it is too short."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if int(sr_from) != int(sr_to):
        from soundmask.audio.io import resample

        a = resample(a, sr_from, sr_to)
    if a.shape[0] != channels:  # other channel counts: the mean of the channels, repeated
        a = np.repeat(a.mean(0, keepdims=True), channels, axis=0)
    n = a.shape[1]
    if n == 0:
        return np.zeros((channels, samples), np.float32)
    offset %= n
    if offset == 0 and n >= samples:
        return np.ascontiguousarray(a[:, :samples])
    if n >= samples + offset:
        return np.ascontiguousarray(a[:, offset : offset + samples])
    # loop: one period with a cross-faded seam (its end fades into its start), then repeat from ``offset``
    fade = min(int(_SEAM_S * sr_to), n // 4)
    period = a
    if fade > 0:
        w = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        period = a[:, : n - fade].copy()
        period[:, :fade] = a[:, :fade] * w + a[:, n - fade :] * (1 - w)
    idx = (offset + np.arange(samples)) % period.shape[1]
    return np.ascontiguousarray(period[:, idx])


def noise_like(
    source: NoiseSource, audio: np.ndarray, sr: int, rng: np.random.Generator, floor: float = 0.05
) -> np.ndarray:
    """Noise from ``source`` with ``audio``'s shape and RMS (``floor`` when ``audio`` is silent)."""
    a = np.asarray(audio)
    if a.ndim == 1:
        a = a[None]
    level = rms(a) or floor
    return (level * source.render(a.shape[0], a.shape[1], sr, rng)).astype(np.float32)


@functools.lru_cache(maxsize=16)
def _recording(path: str, sr: int) -> np.ndarray:
    from soundmask.audio.io import load_audio

    audio, _ = load_audio(path, sr=sr)
    if rms(audio) == 0:
        raise DataError("the noise recording is silent", path, "remove it from the noise folder")
    return audio


def folder_noise_sources(folder: PathLike) -> list[NoiseSource]:
    """A source per WAV/FLAC/OGG file of ``folder`` (sorted, not recursive), named ``user:<file name>``; each
    file is read now so that a bad one fails before any work."""
    from soundmask.data.io import require_dir

    d = require_dir(folder, "noise folder", "pass a folder of .wav/.flac/.ogg noise recordings")
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in _NOISE_SUFFIXES)
    if not files:
        raise DataError("the noise folder holds no .wav, .flac or .ogg file", d, "add noise recordings to it")
    out = []
    for p in files:
        _recording(str(p), 16000)
        out.append(NoiseSource(f"user:{p.name}", "recording", str(p), "user-supplied recording", "user-supplied"))
    return out


def noise_sources(
    noise_dir: PathLike | None = None, recordings: bool = True, sonic_pi_root: PathLike = SONIC_PI_ROOT
) -> list[NoiseSource]:
    """Every noise source: the three colours, the installed ``sonic-pi-samples`` ambiences (when ``recordings``)
    and the files of ``noise_dir`` (see the module docstring)."""
    out = [
        NoiseSource(c, "coloured", description=f"{c} noise (generated, seeded)", licence="generated") for c in COLOURS
    ]
    if recordings:
        root = Path(sonic_pi_root)
        for stem, (what, origin) in SONIC_PI_NOISE.items():
            p = root / f"{stem}.flac"
            if p.is_file():
                out.append(
                    NoiseSource(
                        f"sonic-pi:{stem}",
                        "recording",
                        str(p),
                        what,
                        SONIC_PI_LICENCE,
                        f"{origin} via Debian sonic-pi-samples",
                    )
                )
    if noise_dir is not None:
        out.extend(folder_noise_sources(noise_dir))
    return out
