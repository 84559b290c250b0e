"""The whole front-end (`analyze`, `soundmask audio`) on generator audio: segments, tags, TDoA sign and values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from soundmask.audio.analyze import analyze
from soundmask.audio.types import Segment
from soundmask.data.io import write_audio
from soundmask.synth.acoustics import geometric_tdoa, mic_pair, simulate_free_field

pytest.importorskip("onnxruntime", reason="YAMNet runs on onnxruntime")


@pytest.fixture(scope="module")
def dog_left_speech_right():
    """4 s of stereo at 16 kHz: a dog (Tux Paint recording) on the left from 0.5–1.7 s, speech on the right from
    2.4–3.6 s, silence elsewhere; free field, so the true delays are exact."""
    from soundmask.synth.sounds import SoundLibrary

    lib = SoundLibrary()
    sr, n = 16000, 64000
    rng = np.random.default_rng(3)
    rig = np.eye(4)
    rig[:3, 3] = [2.0, 1.0, 1.5]
    left, right = mic_pair(rig)  # camera x axis = world x: the left mic is at smaller x
    dog = np.zeros(n)
    dog[8000:27200] = lib.render(lib.sources("dog", kinds=("recording",))[0], 1.2, sr, rng)
    talk = np.zeros(n)
    talk[38400:57600] = lib.render(lib.sources("person", kinds=("speech",))[0], 1.2, sr, rng)
    src_dog, src_talk = np.array([0.8, 2.5, 1.5]), np.array([3.4, 2.2, 1.5])
    st = simulate_free_field([(src_dog, dog), (src_talk, talk)], left, right, sr)
    truth = [geometric_tdoa(src_dog, left, right), geometric_tdoa(src_talk, left, right)]
    return st.astype(np.float32), sr, truth


def test_segments_tags_and_delays(dog_left_speech_right) -> None:
    st, sr, (tau_dog, tau_talk) = dog_left_speech_right
    assert tau_dog > 100e-6 and tau_talk < -100e-6  # the scene really has a left and a right source
    rep = analyze(st, sr, speech=False)
    assert rep.channels == 2 and rep.tdoa is not None and len(rep.tdoa) == len(rep.segments) == len(rep.tags)
    starts = [s.start for s in rep.segments]
    assert len(rep.segments) >= 2 and min(starts) < 1.0 and max(s.end for s in rep.segments) > 3.0
    for seg, d in zip(rep.segments, rep.tdoa, strict=True):
        mid = 0.5 * (seg.start + seg.end)
        true = tau_dog if mid < 2.0 else tau_talk
        assert abs(d.tau - true) < 10e-6, (seg, d.tau * 1e6, true * 1e6)
        assert np.sign(d.azimuth) == np.sign(true)
    talk = [t for s, t in zip(rep.segments, rep.tags, strict=True) if s.start > 2.0]
    assert talk and talk[0].top(1)[0][0] == "Speech"
    d = rep.to_dict()
    assert {"start", "end", "tags", "tdoa_us", "direction_deg"} <= set(d["segments"][0])


def test_silence_gives_no_segments_and_mono_no_tdoa() -> None:
    sr = 16000
    rep = analyze(np.zeros((2, 2 * sr), np.float32), sr, speech=False)
    assert rep.segments == [] and rep.tdoa == []
    rng = np.random.default_rng(0)
    mono = np.zeros((1, 2 * sr), np.float32)
    mono[0, 8000:24000] = 0.1 * rng.standard_normal(16000)
    rep = analyze(mono, sr, speech=False, embedder=None)
    assert rep.tdoa is None and len(rep.segments) == 1 and rep.tags == []
    assert isinstance(rep.segments[0], Segment) and abs(rep.segments[0].start - 0.5) < 0.05


def test_cli_audio_json_and_bad_input(tmp_path: Path, dog_left_speech_right) -> None:
    st, sr, (tau_dog, _) = dog_left_speech_right
    wav = write_audio(tmp_path / "rec.wav", st, sr)
    out = tmp_path / "rep.json"
    r = subprocess.run(
        [sys.executable, "-m", "soundmask.cli", "audio", str(wav), "--json", str(out), "--no-speech"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["channels"] == 2 and d["segments"]
    assert abs(d["segments"][0]["tdoa_us"] - tau_dog * 1e6) < 10
    bad = tmp_path / "empty.wav"
    bad.write_bytes(b"")
    r = subprocess.run(
        [sys.executable, "-m", "soundmask.cli", "audio", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "empty.wav" in lines[0]
