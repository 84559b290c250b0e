"""Each bound object's own signal (lift.separate) in a small simulated room, its tags, and the scene scores."""

from __future__ import annotations

import numpy as np
import pytest

from soundmask.audio.evidence import predicted_delays
from soundmask.audio.types import Segment, Tagging
from soundmask.errors import ConfigError
from soundmask.lift.separate import object_positions, separate_objects, tag_objects
from soundmask.lift.tags import SoundTag
from soundmask.metrics.separation import score_separation, si_sdr
from soundmask.splat.gaussians import Gaussians
from soundmask.synth.acoustics import simulate_moving

SR = 16000
ROOM = np.array([6.0, 5.0, 3.0])
SOURCES = np.array([[4.5, 3.8, 1.0], [4.6, 1.2, 0.9]])


def _rig(V: int) -> np.ndarray:
    """(V, 2, 3) a camera rig moving along the room's left wall, microphones 0.2 m apart, facing +x."""
    centres = np.stack([np.full(V, 1.2), np.linspace(1.5, 3.5, V), np.full(V, 1.5)], axis=1)
    off = np.array([0.0, 0.1, 0.0])
    return np.stack([centres + off, centres - off], axis=1)


def _room(signals: list[np.ndarray | None], V: int) -> tuple[np.ndarray, list[Segment]]:
    mics = _rig(V)
    src = [(p, x) for p, x in zip(SOURCES, signals, strict=True) if x is not None]
    stereo = simulate_moving(src, mics[:, 0], mics[:, 1], ROOM, 0.0, SR, times=np.arange(V) + 0.5)
    return stereo, [Segment(float(v), float(v + 1)) for v in range(V)]


def _noise(seconds: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(int(seconds * SR)).astype(np.float32)


@pytest.fixture(scope="module")
def two_sources() -> dict[str, object]:
    V = 4
    a, b = _noise(V, 31), _noise(V, 32)
    mix, windows = _room([a, b], V)
    ref_a, _ = _room([a, None], V)
    ref_b, _ = _room([None, b], V)
    return {"V": V, "mix": mix, "windows": windows, "refs": [ref_a, ref_b]}


def test_each_object_is_separated_and_silent_where_it_does_not_sound(two_sources: dict) -> None:
    V, mix, windows, refs = two_sources["V"], two_sources["mix"], two_sources["windows"], two_sources["refs"]
    active = np.ones((V, 2), bool)
    active[3, 1] = False  # object 8 is not bound in the last window
    pos = np.repeat(SOURCES[None], V, axis=0)
    out = separate_objects(mix, SR, windows, active, pos, [7, 8], _rig(V), method="mvdr")
    assert [o.component_id for o in out] == [7, 8] and all(o.method == "mvdr" for o in out)
    inner = slice(SR // 2, 3 * SR - SR // 4)  # both sound here, away from the signal's start and the last window
    for o, ref in zip(out, refs, strict=True):
        assert o.signal.shape == (mix.shape[1],) and o.signal.dtype == np.float32 and o.sample_rate == SR
        gain = si_sdr(o.signal[inner], ref[0][inner]) - si_sdr(mix[0][inner], ref[0][inner])
        assert gain >= 6.0
    tail = out[1].signal[3 * SR + SR // 8 :]
    assert np.max(np.abs(tail)) < 1e-3 * np.max(np.abs(out[1].signal))  # inactive window: silent
    das = separate_objects(mix, SR, windows, active, pos, [7, 8], _rig(V), method="das")  # the mask: next test
    assert si_sdr(out[0].signal[inner], refs[0][0][inner]) > si_sdr(das[0].signal[inner], refs[0][0][inner])


def _room_rt(signals: list[np.ndarray | None], V: int, rt60: float) -> np.ndarray:
    mics = _rig(V)
    src = [(p, x) for p, x in zip(SOURCES, signals, strict=True) if x is not None]
    return simulate_moving(src, mics[:, 0], mics[:, 1], ROOM, rt60, SR, times=np.arange(V) + 0.5)


def test_the_informed_mask_separates_two_sources_in_a_reverberant_room() -> None:
    """A low hum of harmonics and a high hiss; each sounds alone once (window 0, 1), then both (2–4)."""
    V = 5
    t = np.arange(V * SR) / SR
    hum = sum(np.sin(2 * np.pi * f0 * t + f0) for f0 in (220, 330, 440, 550)).astype(np.float32) * 0.3
    hum[SR : 2 * SR] = 0
    hiss = np.diff(_noise(V + 1 / SR, 41), prepend=0.0)[: V * SR].astype(np.float32)
    hiss[:SR] = 0
    mix = _room_rt([hum, hiss], V, 0.3)
    refs = [_room_rt([hum, None], V, 0.3), _room_rt([None, hiss], V, 0.3)]
    windows = [Segment(float(v), float(v + 1)) for v in range(V)]
    active = np.array([[1, 0], [0, 1], [1, 1], [1, 1], [1, 1]], bool)
    pos = np.repeat(SOURCES[None], V, axis=0)
    out = separate_objects(mix, SR, windows, active, pos, [1, 2], _rig(V))
    mvdr = separate_objects(mix, SR, windows, active, pos, [1, 2], _rig(V), method="mvdr")
    assert [o.method for o in out] == ["mask", "mask"]
    both = slice(2 * SR, V * SR)
    for o, m, ref in zip(out, mvdr, refs, strict=True):
        base = si_sdr(mix[0][both], ref[0][both])
        assert si_sdr(o.signal[both], ref[0][both]) - base >= 6.0
        assert si_sdr(o.signal[both], ref[0][both]) > si_sdr(m.signal[both], ref[0][both])
    assert np.array_equal(out[0].signal[: SR // 2], mix[0][: SR // 2])  # alone: the recording itself
    assert not out[1].signal[: SR // 2].any() and not out[0].signal[SR + SR // 4 : 2 * SR - SR // 4].any()


def test_without_microphones_the_mixture_is_gated(two_sources: dict) -> None:
    V, mix, windows = two_sources["V"], two_sources["mix"], two_sources["windows"]
    active = np.array([[True], [False], [True], [False]])
    out = separate_objects(mix, SR, windows, active, np.zeros((V, 1, 3)), [3], None)
    assert out[0].method == "gated"
    assert np.array_equal(out[0].signal[:SR], mix[0][:SR]) and not out[0].signal[SR : 2 * SR].any()
    mono = separate_objects(mix.mean(axis=0), SR, windows, active, np.zeros((V, 1, 3)), [3], _rig(V))
    assert mono[0].method == "gated" and np.array_equal(mono[0].signal[2 * SR : 3 * SR], mix.mean(0)[2 * SR : 3 * SR])
    with pytest.raises(ConfigError):
        separate_objects(mix, SR, windows, active, np.zeros((V, 1, 3)), [3], _rig(V), method="ica")  # type: ignore[arg-type]


def test_object_positions_static_and_moving() -> None:
    pts = np.array([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [5, 5, 5]])
    g = Gaussians.from_points(pts, scale=0.05)
    pos = object_positions(g, [np.array([0, 1, 2]), np.array([3]), np.array([], np.int64)], [0.5, 1.5])
    assert pos.shape == (2, 3, 3)
    assert np.allclose(pos[:, 0], [1, 0, 0]) and np.allclose(pos[:, 1], [5, 5, 5]) and np.isnan(pos[:, 2]).all()


class _FakeYamnet:
    """Labels a window "Loud" when its RMS exceeds 0.5, else "Quiet"; records the windows asked for."""

    def __init__(self) -> None:
        self.asked: list[list[Segment]] = []

    def tag(self, audio: np.ndarray, sr: float, segments: list[Segment]) -> list[Tagging]:
        self.asked.append(list(segments))
        out = []
        for s in segments:
            x = audio[int(s.start * sr) : int(s.end * sr)]
            loud = float(np.sqrt(np.mean(x**2))) > 0.5
            out.append(Tagging(("Quiet", "Loud"), np.array([0.2, 0.9] if loud else [0.9, 0.2]), np.ones(2, np.float32)))
        return out


def test_tag_objects_label_from_the_own_signal_over_its_active_windows(two_sources: dict) -> None:
    from soundmask.lift.separate import ObjectAudio

    windows = two_sources["windows"]
    n = 4 * SR
    loud = np.zeros(n, np.float32)
    loud[:SR] = 1.0
    tags = [SoundTag(1, np.arange(3), "Music", {"Music": 0.9}), SoundTag(2, np.arange(2), "Music")]
    tags.append(SoundTag(5, np.zeros(0, np.int64), "X"))
    audio = [
        ObjectAudio(1, loud, SR, np.array([True, False, False, False]), "mvdr"),
        ObjectAudio(2, np.zeros(n, np.float32), SR, np.zeros(4, bool), "mvdr"),  # never active: keeps its label
    ]
    fake = _FakeYamnet()
    out = tag_objects(tags, audio, windows, embedder=fake, top_k=1)
    assert [t.label for t in out] == ["Loud", "Music", "X"]
    assert out[0].scores == {"Loud": pytest.approx(0.9)} and out[0].embedding.tolist() == [1.0, 1.0]
    assert fake.asked == [[windows[0]]]
    assert out[0].audio is loud and out[0].sample_rate == SR and out[2].audio is None
    assert tags[0].audio is None and tags[0].label == "Music"  # the input tags are not changed


def test_score_separation_on_the_found_objects(two_sources: dict) -> None:
    mix, refs = two_sources["mix"], two_sources["refs"]
    stems = {10: refs[0], 11: refs[1]}
    events = {10: [(0.0, 4.0)], 11: [(2.0, 4.0)], 12: [(0.0, 0.5)]}
    est = {10: (0, refs[0][0] + 0.1 * refs[1][0]), 11: (1, np.zeros(mix.shape[1], np.float32))}
    sc = score_separation(est, stems, mix, SR, events)
    rows = {r["object_id"]: r for r in sc.objects}
    assert rows[10]["seconds"] == 4.0 and rows[10]["overlap_seconds"] == 2.5  # with 11 (2–4 s) and 12 (0–0.5 s)
    assert rows[10]["si_sdr_db"] == pytest.approx(si_sdr(est[10][1], refs[0][0]), abs=1e-3)
    assert rows[10]["si_sdri_db"] > 10
    assert rows[11]["estimate_silent"] and rows[11]["si_sdr_db"] is None  # silent while it sounds: not scored
    assert sc.separation_si_sdr_db == rows[10]["si_sdr_db"] and sc.separation_si_sdri_db == rows[10]["si_sdri_db"]
    assert score_separation({}, stems, mix, SR, events).separation_si_sdr_db is None


def test_predicted_delays_broadcast_over_objects() -> None:
    mics = _rig(3)
    pos = np.repeat(SOURCES[None], 3, axis=0)
    d = predicted_delays(pos, mics[:, None, 0], mics[:, None, 1])
    assert d.shape == (3, 2)
    assert d[1, 0] == pytest.approx(predicted_delays(SOURCES[0], mics[1, 0], mics[1, 1]))


# ------------------------------------------------------------------------------------------------ outputs
def _scene_with_audio() -> object:
    from soundmask.lift.tags import SoundScene

    g = Gaussians.from_points(np.random.default_rng(0).normal(size=(6, 3)), scale=0.05)
    sig = (0.3 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32)
    a = SoundTag(4, np.array([0, 1]), "Dog", spans=[(0.0, 1.0)], audio=sig, sample_rate=SR)
    b = SoundTag(9, np.array([2]), "Music", spans=[(0.0, 1.0)])  # no own signal (e.g. an older file)
    return SoundScene(g, [a, b], {})


def test_write_object_audio_one_wav_per_tag_with_a_signal(tmp_path) -> None:
    from soundmask.data.io import read_audio
    from soundmask.report.outputs import write_object_audio

    sound = _scene_with_audio()
    (tmp_path / "objects").mkdir()
    (tmp_path / "objects" / "77.wav").write_bytes(b"stale")  # a tag of an earlier run
    paths = write_object_audio(tmp_path, sound)  # type: ignore[arg-type]
    assert [p.name for p in paths] == ["4.wav"] and sorted(f.name for f in (tmp_path / "objects").iterdir()) == [
        "4.wav"
    ]
    y, sr = read_audio(paths[0])
    assert sr == SR and y.shape == (1, SR)
    assert np.max(np.abs(y[0] - sound.tags[0].audio)) < 1e-4  # type: ignore[attr-defined]


def test_report_and_viewer_players() -> None:
    import base64
    import io

    import soundfile as sf

    from soundmask.report.html import audio_player, wav_data_uri
    from soundmask.report.viewer import tag_row_html

    sound = _scene_with_audio()
    tag = sound.tags[0]  # type: ignore[attr-defined]
    uri = wav_data_uri(tag.audio, SR, rate=8000)
    assert uri.startswith("data:audio/wav;base64,")
    y, sr = sf.read(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert sr == 8000 and y.shape == (8000,) and 0.25 < np.max(np.abs(y)) < 0.35
    loud, _ = sf.read(io.BytesIO(base64.b64decode(wav_data_uri(3 * tag.audio, SR).split(",", 1)[1])))
    assert np.max(np.abs(loud)) <= 0.99 + 1e-3  # scaled down rather than clipped
    assert audio_player(tag.audio, SR).startswith("<audio controls") and audio_player(None, 0) == "—"
    row = tag_row_html(0, tag)
    assert "#1 Dog" in row and "<audio controls" in row
    assert "<audio" not in tag_row_html(1, sound.tags[1])  # type: ignore[attr-defined]


def test_informed_separation_checks_its_inputs() -> None:
    from soundmask.audio.informed import informed_separation, nmf
    from soundmask.errors import DataError

    windows = [Segment(0.0, 1.0), Segment(1.0, 2.0)]
    x = np.zeros((2, 2 * SR), np.float32)
    with pytest.raises(DataError, match="windows=2"):
        informed_separation(x, SR, windows, np.zeros((3, 1)), np.ones((3, 1), bool))
    with pytest.raises(DataError, match="stereo"):
        informed_separation(x[0], SR, windows, np.zeros((2, 1)), np.ones((2, 1), bool))
    assert not informed_separation(x, SR, windows, np.zeros((2, 1)), np.ones((2, 1), bool)).any()  # silence in
    P = np.abs(np.random.default_rng(0).standard_normal((20, 50))) + 0.1
    W, H = nmf(P, 4, 80)
    assert W.shape == (20, 4) and H.shape == (4, 50) and np.allclose(W.sum(axis=0), 1, atol=1e-4)
    W2, _ = nmf(P, 2, 10, fixed=W)
    assert W2.shape == (20, 6) and np.array_equal(W2[:, :4], W)  # the fixed spectra are kept
