"""Audio input: sound files and videos' audio tracks, resampling, and a one-line DataError for every bad input."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from soundmask.audio.io import load_audio, require_stereo, resample
from soundmask.data.io import write_audio
from soundmask.errors import ConfigError, DataError

av = pytest.importorskip("av")

SR = 44100


def _tones(sr: int = SR, seconds: float = 1.0, f_left: float = 440.0, f_right: float = 1000.0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return np.stack([0.5 * np.sin(2 * np.pi * f_left * t), 0.25 * np.sin(2 * np.pi * f_right * t)]).astype(np.float32)


def _peak_hz(x: np.ndarray, sr: int) -> float:
    """Frequency of the strongest spectral peak (Hann window, parabolic interpolation on the log magnitude)."""
    spec = np.log(np.abs(np.fft.rfft(x * np.hanning(len(x)))) + 1e-12)
    i = int(np.argmax(spec))
    a, b, c = spec[i - 1 : i + 2]
    return (i + 0.5 * (a - c) / (a - 2 * b + c)) * sr / len(x)


def _write_container(path: Path, audio: np.ndarray | None, sr: int, codec: str = "aac", video: bool = False) -> Path:
    """A media file made with PyAV: an audio stream of ``audio`` (2, S) float and/or a few black video frames."""
    with av.open(str(path), "w") as c:
        vs = c.add_stream("mpeg4", rate=10) if video else None
        if vs is not None:
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        s = c.add_stream(codec, rate=sr, layout="stereo") if audio is not None else None
        if vs is not None:
            frames = [av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24") for _ in range(5)]
            for f in [*frames, None]:
                c.mux(vs.encode(f))
        if s is not None:
            c.mux(s.encode(_audio_frame(audio, sr, codec)))
            c.mux(s.encode(None))
    return path


def _audio_frame(audio: np.ndarray, sr: int, codec: str) -> av.AudioFrame:
    if codec.startswith("pcm_s16"):
        data, fmt = np.round(audio.T * 32767).astype(np.int16).reshape(1, -1), "s16"
    elif codec == "libopus":
        data, fmt = np.ascontiguousarray(audio.T).reshape(1, -1), "flt"
    else:
        data, fmt = np.ascontiguousarray(audio), "fltp"
    frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="stereo")
    frame.sample_rate = sr
    return frame


# ---------------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_lossless_round_trip(tmp_path, suffix):
    x = _tones()
    audio, sr = load_audio(write_audio(tmp_path / f"a{suffix}", x, SR))
    assert sr == SR and audio.dtype == np.float32 and audio.shape == x.shape
    assert np.abs(audio - x).max() <= 1 / 32768 + 1e-7  # 16-bit quantisation only


def test_ogg_round_trip_keeps_channels_and_pitch(tmp_path):
    x = _tones()
    audio, sr = load_audio(write_audio(tmp_path / "a.ogg", x, SR))
    assert sr == SR and audio.shape[0] == 2 and abs(audio.shape[1] - x.shape[1]) < 2048
    assert abs(_peak_hz(audio[0], SR) - 440.0) < 1.0 and abs(_peak_hz(audio[1], SR) - 1000.0) < 1.0
    n = min(audio.shape[1], x.shape[1])
    assert np.corrcoef(audio[0, :n], x[0, :n])[0, 1] > 0.99  # Vorbis is lossy but aligned


def test_mono_and_channel_checks(tmp_path):
    x = _tones()
    f = write_audio(tmp_path / "st.wav", x, SR)
    mono, _ = load_audio(f, mono=True)
    assert mono.shape == (1, x.shape[1])
    np.testing.assert_allclose(mono[0], x.mean(axis=0), atol=2 / 32768)
    m = write_audio(tmp_path / "mono.wav", x[0], SR)
    with pytest.raises(DataError) as e:
        load_audio(m, channels=2)
    msg = str(e.value)
    assert "mono.wav" in msg and "is mono; the stereo stage needs a 2-channel recording" in msg and "fix:" in msg
    with pytest.raises(DataError, match="expected 1"):
        load_audio(f, channels=1)


def test_require_stereo():
    x = _tones()
    assert require_stereo(x) is x
    with pytest.raises(DataError, match="is mono"):
        require_stereo(x[0])
    with pytest.raises(DataError, match="3 channels") as e:
        require_stereo(np.zeros((3, 10)), "clip.wav")
    assert str(e.value).startswith("clip.wav:") and "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------------ resampling
@pytest.mark.parametrize(("sr_from", "sr_to"), [(44100, 16000), (16000, 48000), (48000, 44100)])
def test_resample_preserves_frequency_amplitude_and_timing(sr_from, sr_to):
    seconds, f0 = 1.0, 997.0
    t = np.arange(int(sr_from * seconds)) / sr_from
    x = (0.5 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)
    y = resample(x, sr_from, sr_to)
    assert y.dtype == np.float32 and abs(len(y) - seconds * sr_to) <= 1
    assert abs(_peak_hz(y, sr_to) - f0) < 0.2
    mid = y[len(y) // 4 : 3 * len(y) // 4]
    t_out = np.arange(len(y))[len(y) // 4 : 3 * len(y) // 4] / sr_to
    expected = 0.5 * np.sin(2 * np.pi * f0 * t_out)
    assert np.abs(mid - expected).max() < 2e-3  # no delay, no gain change
    stereo = resample(np.stack([x, -x]), sr_from, sr_to)
    assert stereo.shape == (2, len(y))
    np.testing.assert_allclose(stereo[1], -stereo[0], atol=1e-6)


def test_load_with_target_rate(tmp_path):
    f = write_audio(tmp_path / "a.flac", _tones(SR, 1.0, 440.0, 1000.0), SR)
    audio, sr = load_audio(f, sr=16000)
    assert sr == 16000 and audio.shape == (2, 16000)
    assert abs(_peak_hz(audio[0], sr) - 440.0) < 0.5 and abs(_peak_hz(audio[1], sr) - 1000.0) < 0.5
    with pytest.raises(ConfigError):
        resample(audio, 0, 16000)


# ------------------------------------------------------------------------------------------------ containers
def test_mp4_with_aac_audio(tmp_path):
    x = _tones(SR, 1.0, 440.0, 1000.0)
    f = _write_container(tmp_path / "clip.mp4", x, SR, "aac", video=True)
    audio, sr = load_audio(f)
    assert sr == SR and audio.shape[0] == 2 and abs(audio.shape[1] - x.shape[1]) <= 4096  # encoder priming
    assert abs(_peak_hz(audio[0], SR) - 440.0) < 1.0 and abs(_peak_hz(audio[1], SR) - 1000.0) < 1.0  # channel order
    rms = np.sqrt(np.mean(audio[:, 4096:-4096] ** 2, axis=1))
    np.testing.assert_allclose(rms, [0.5 / np.sqrt(2), 0.25 / np.sqrt(2)], rtol=0.05)


@pytest.mark.parametrize("suffix", [".mkv", ".mov"])
def test_container_with_pcm_audio_is_exact(tmp_path, suffix):
    x = _tones()
    audio, sr = load_audio(_write_container(tmp_path / f"clip{suffix}", x, SR, "pcm_s16le"))
    assert sr == SR and audio.shape == x.shape
    assert np.abs(audio - x).max() <= 1 / 32768 + 1e-7


def test_webm_with_opus_audio_and_resampling(tmp_path):
    x = _tones(48000, 1.0, 440.0, 1000.0)
    audio, sr = load_audio(_write_container(tmp_path / "clip.webm", x, 48000, "libopus"), sr=SR)
    assert sr == SR and audio.shape[0] == 2
    assert abs(_peak_hz(audio[0], SR) - 440.0) < 1.0 and abs(_peak_hz(audio[1], SR) - 1000.0) < 1.0


# ----------------------------------------------------------------------------------------------- bad inputs
def _wav_with_rate_zero(p: Path) -> None:
    sf.write(p, np.zeros(100), SR)
    b = bytearray(p.read_bytes())
    i = b.find(b"fmt ")
    b[i + 12 : i + 16] = struct.pack("<I", 0)
    p.write_bytes(bytes(b))


BAD = {
    "missing.wav": (lambda p: None, "not found"),
    "missing.mp4": (lambda p: None, "not found"),
    "folder.wav": (lambda p: p.mkdir(), "folder"),
    "empty.wav": (lambda p: p.write_bytes(b""), "empty"),
    "empty.mp4": (lambda p: p.write_bytes(b""), "empty"),
    "nosamples.wav": (lambda p: sf.write(p, np.zeros(0), SR), "no samples"),
    "onesample.wav": (lambda p: sf.write(p, np.zeros(1), SR), "too short"),
    "nan.wav": (lambda p: sf.write(p, np.array([0.0, np.nan, 0.1] * 200), SR, subtype="FLOAT"), "NaN"),
    "inf.flac.wav": (lambda p: sf.write(p, np.array([0.0, np.inf] * 300), SR, subtype="FLOAT"), "infinite"),
    "rate0.wav": (_wav_with_rate_zero, "sample rate is 0"),
    "garbage.wav": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(4000)), "cannot decode"),
    "garbage.mp4": (lambda p: p.write_bytes(np.random.default_rng(1).bytes(4000)), "cannot decode"),
    "garbage.ogg": (lambda p: p.write_bytes(b"OggS" + np.random.default_rng(2).bytes(4000)), "cannot decode"),
    "truncated.wav": (
        lambda p: p.write_bytes((sf.write(p, np.zeros(4000), SR), p.read_bytes())[1][:3000]),
        "truncated",
    ),
    "novideo.mp4": (lambda p: _write_container(p, None, SR, video=True), "no audio track"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_gives_one_line_data_error_naming_the_file(tmp_path, name):
    make, expected = BAD[name]
    p = tmp_path / name
    make(p)
    with pytest.raises(DataError) as e:
        load_audio(p)
    msg = str(e.value)
    assert name in msg and expected in msg and "\n" not in msg and "(fix: " in msg, msg


@pytest.mark.parametrize("name", ["clip.mp3", "mp3-inside.wav"])
def test_mp3_by_suffix_or_by_content(tmp_path, name):
    """MP3 goes through FFmpeg; a file libsndfile cannot decode despite its suffix gets FFmpeg as a second chance."""
    x = _tones()
    with av.open(str(tmp_path / name), "w", format="mp3") as c:
        s = c.add_stream("libmp3lame", rate=SR, layout="stereo")
        c.mux(s.encode(_audio_frame(x, SR, "mp3")))
        c.mux(s.encode(None))
    audio, sr = load_audio(tmp_path / name)
    assert sr == SR and audio.shape[0] == 2 and abs(audio.shape[1] - x.shape[1]) <= 4096
    assert abs(_peak_hz(audio[0], SR) - 440.0) < 1.0 and abs(_peak_hz(audio[1], SR) - 1000.0) < 1.0
