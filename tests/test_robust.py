"""`soundmask evaluate --robust` (soundmask.avs2d.robust): the listening test's conditions and metrics, with fake
segmenters that fail (a visual-bias one) or pass (an oracle that listens) each of them, on a tiny S4 dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from soundmask.audio.noise import COLOURS, NoiseSource, coloured_noise, fit_audio, noise_like, noise_sources, rms
from soundmask.avs2d.base import Prediction, Segmenter, frame_windows
from soundmask.avs2d.robust import (
    CONDITIONS,
    NegativeResult,
    OriginalResult,
    RobustConditions,
    SwapResult,
    evaluate_robust,
    listening_score,
    parse_conditions,
    silent_objects,
    sounding_objects,
)
from soundmask.data.avsbench import AVSBenchDataset, write_avsbench
from soundmask.data.types import Clip
from soundmask.errors import ConfigError, DataError

H = W = 32
SR = 16000
T = 5
# category → (tone in Hz, the colour its object is painted in)
KINDS = {"dog": (500.0, (255, 0, 0)), "piano": (1000.0, (0, 255, 0)), "cat": (2000.0, (0, 0, 255))}
LEFT = (slice(8, 24), slice(2, 14))
RIGHT = (slice(8, 24), slice(18, 30))


def tone(category: str, seconds: float = T) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * KINDS[category][0] * t)).astype(np.float32)[None]


def make_clip(name: str, sounding: str, silent: str, split: str = "test", instances: bool = True) -> Clip:
    """The ``sounding`` object (id 1) on the left, the ``silent`` one (id 2) on the right, its tone as audio."""
    frames = np.full((T, H, W, 3), 128, np.uint8)
    inst = np.zeros((T, H, W), np.int32)
    for oid, (cat, box) in enumerate(((sounding, LEFT), (silent, RIGHT)), start=1):
        frames[(slice(None), *box)] = KINDS[cat][1]
        inst[(slice(None), *box)] = oid
    return Clip(
        name, frames, tone(sounding), SR, masks=inst == 1, category=sounding, split=split,
        frame_times=np.arange(T, dtype=float), instances=inst if instances else None,
        instance_categories={1: sounding, 2: silent} if instances else {},
    )  # fmt: skip


class VisualBias(Segmenter):
    """Segments the left (visually salient) object whatever the audio."""

    name: ClassVar[str] = "visual_bias"

    def predict(self, frames: np.ndarray, audio: np.ndarray, sr: int, frame_times: Any = None) -> Prediction:
        m = np.zeros(frames.shape[:3], np.float32)
        m[(slice(None), *LEFT)] = 1.0
        return Prediction(m)

    @classmethod
    def load(cls, checkpoint: Any = None, **options: Any) -> VisualBias:
        return cls()


class Oracle(Segmenter):
    """Listens: in each frame's window, a pure tone of a known category → the pixels of that category's colour;
    anything else (silence, noise, an unknown sound) → empty."""

    name: ClassVar[str] = "oracle"

    def predict(self, frames: np.ndarray, audio: np.ndarray, sr: int, frame_times: Any = None) -> Prediction:
        a = np.asarray(audio, np.float64).mean(0)
        out = np.zeros(frames.shape[:3], np.float32)
        for t, (s0, s1) in enumerate(frame_windows(len(frames), len(a), sr, frame_times)):
            spec = np.abs(np.fft.rfft(a[s0:s1])) ** 2
            if spec.sum() <= 1e-9:
                continue
            freqs = np.fft.rfftfreq(s1 - s0, 1 / sr)
            peak = int(np.argmax(spec))
            if spec[max(0, peak - 2) : peak + 3].sum() < 0.9 * spec.sum():
                continue  # not a pure tone
            for f0, colour in KINDS.values():
                if abs(freqs[peak] - f0) < 5:
                    out[t] = (frames[t] == colour).all(-1)
        return Prediction(out)

    @classmethod
    def load(cls, checkpoint: Any = None, **options: Any) -> Oracle:
        return cls()


class Deaf(Segmenter):
    """Never segments anything."""

    name: ClassVar[str] = "deaf"

    def predict(self, frames: np.ndarray, audio: np.ndarray, sr: int, frame_times: Any = None) -> Prediction:
        return Prediction(np.zeros(frames.shape[:3], np.float32))


@pytest.fixture(scope="module")
def s4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    clips = [
        make_clip("vid_dog", "dog", "piano"),
        make_clip("vid_piano", "piano", "cat"),
        make_clip("vid_cat", "cat", "dog"),
        make_clip("vid_train", "dog", "cat", split="train"),
    ]
    return write_avsbench(tmp_path_factory.mktemp("robust") / "s4", clips)


@pytest.fixture(scope="module")
def test_split(s4: Path) -> AVSBenchDataset:
    return AVSBenchDataset(s4, split="test")


def test_objects_sounding_and_silent(test_split: AVSBenchDataset) -> None:
    clip = test_split[0]
    assert sounding_objects(clip) == {1}
    assert silent_objects(clip) == [2]
    same = make_clip("x", "dog", "dog")  # a silent object of the sounding category cannot be swapped to
    assert sounding_objects(same) == {1} and silent_objects(same) == []


def test_condition_audio(test_split: AVSBenchDataset) -> None:
    conds = RobustConditions(test_split, seed=3)
    for i in range(len(test_split)):
        clip = test_split[i]
        silence = conds.trial("silence", i, clip)
        assert silence is not None and silence.audio.shape == clip.audio.shape and not silence.audio.any()
        noise = conds.trial("noise", i, clip)
        assert noise is not None and noise.audio.shape == clip.audio.shape
        assert rms(noise.audio) == pytest.approx(rms(clip.audio), rel=1e-3)
        assert noise.source in {s.name for s in conds.noise}
        off = conds.trial("offscreen", i, clip)
        assert off is not None and off.category not in set(clip.instance_categories.values())
        assert off.audio.shape == clip.audio.shape and off.source.startswith(off.category + ":")
        swap = conds.trial("swap", i, clip)
        assert swap is not None and swap.object_id == 2
        assert swap.category == clip.instance_categories[2] and swap.source.startswith(swap.category + ":")
        np.testing.assert_array_equal(swap.target, clip.instances == 2)
        assert swap.frames is not None and swap.frames.all()
    # deterministic given the seed, and the same whichever other conditions are asked for
    clip = test_split[1]
    first = conds.trial("noise", 1, clip)
    again = RobustConditions(test_split, ["noise"], seed=3).trial("noise", 1, clip)
    other = RobustConditions(test_split, ["noise"], seed=4).trial("noise", 1, clip)
    np.testing.assert_array_equal(again.audio, first.audio)
    assert not np.array_equal(other.audio, first.audio)


def test_offscreen_without_instances_falls_back_to_the_category() -> None:
    clips = [
        make_clip("a", "dog", "piano", instances=False),
        make_clip("b", "dog", "cat"),
        make_clip("c", "cat", "dog"),
    ]
    clips[2].masks[4] = False  # the cat is silent in the last frame: that frame does not count
    conds = RobustConditions(clips, ["offscreen"])
    off = conds.trial("offscreen", 0, clips[0])
    assert off.category == "cat"  # only the category (dog) is known of "a"
    assert off.frames.tolist() == [True, True, True, True, False]
    assert conds.trial("offscreen", 1, clips[1]) is None  # b shows dog and cat: every other clip is one of them
    clips[2].masks[:] = False  # a donor that never sounds is no donor
    assert RobustConditions(clips, ["offscreen"]).trial("offscreen", 0, clips[0]) is None


def test_swap_prefers_the_objects_own_recording() -> None:
    clips = [make_clip("a", "dog", "piano"), make_clip("b", "piano", "cat")]
    clips[0].object_audio = {2: tone("piano")}  # type: ignore[attr-defined]
    quiet = tone("piano")
    quiet[:, SR : 2 * SR] = 0  # the object is silent in frame 2
    clips[1].object_audio = {2: quiet}  # type: ignore[attr-defined]
    conds = RobustConditions(clips, ["swap"])
    a, b = conds.trial("swap", 0, clips[0]), conds.trial("swap", 1, clips[1])
    assert a.source == "object_audio:2" and a.frames.all()
    assert b.source == "object_audio:2" and b.frames.tolist() == [True, False, True, True, True]
    # no object audio and no donor of the silent object's category: the clip is skipped
    lone = [make_clip("a", "dog", "cat"), make_clip("b", "piano", "cat")]
    assert RobustConditions(lone, ["swap"]).trial("swap", 0, lone[0]) is None


def test_visual_bias_fails_every_listening_condition(test_split: AVSBenchDataset) -> None:
    rep = evaluate_robust(VisualBias(), test_split, seed=0)
    r = rep.results
    assert list(r) == list(CONDITIONS)
    assert isinstance(r["original"], OriginalResult) and r["original"].pooled_j == pytest.approx(1.0)
    for c in ("silence", "noise", "offscreen"):
        assert isinstance(r[c], NegativeResult) and r[c].negative_empty == 0.0 and r[c].frames == 15
    assert isinstance(r["swap"], SwapResult)
    assert r["swap"].swap_moved == 0.0 and r["swap"].swap_stayed == 1.0 and r["swap"].pooled_j == 0.0
    assert r["swap"].clips == 3 and r["swap"].frames == 15 and r["swap"].skipped_clips == 0
    assert rep.score == 0.0


def test_listening_oracle_passes_every_condition(test_split: AVSBenchDataset) -> None:
    rep = evaluate_robust(Oracle(), test_split, seed=0)
    r = rep.results
    assert r["original"].pooled_j == pytest.approx(1.0)
    for c in ("silence", "noise", "offscreen"):
        assert r[c].negative_empty == 1.0, c
    assert set(r["noise"].by_source) <= {s.name for s in rep.noise_sources}
    assert sum(s.frames for s in r["noise"].by_source.values()) == 15
    assert r["swap"].swap_moved == 1.0 and r["swap"].swap_stayed == 0.0 and r["swap"].pooled_j == pytest.approx(1.0)
    assert rep.score == pytest.approx(1.0)
    assert rep.frames_per_second > 0 and all(v.frames_per_second > 0 for v in r.values())


def test_score_is_the_harmonic_mean(test_split: AVSBenchDataset) -> None:
    assert listening_score(0.5, [1.0, 0.5, 0.0]) == pytest.approx(0.5)
    assert listening_score(0.8, [0.4]) == pytest.approx(2 * 0.8 * 0.4 / 1.2)
    assert np.isnan(listening_score(0.8, [])) and listening_score(0.0, [0.0]) == 0.0
    rep = evaluate_robust(Deaf(), test_split, ["original", "silence"])
    assert rep.results["original"].pooled_j == 0.0 and rep.results["silence"].negative_empty == 1.0
    assert rep.score == 0.0 and list(rep.results) == ["original", "silence"]


def test_bad_requests_fail_clearly(tmp_path: Path, test_split: AVSBenchDataset) -> None:
    with pytest.raises(ConfigError, match="unknown condition"):
        parse_conditions("original,loud")
    assert parse_conditions("swap, silence") == ("silence", "swap")
    no_instances = [make_clip("a", "dog", "cat", instances=False), make_clip("b", "cat", "dog", instances=False)]
    with pytest.raises(DataError, match="instance mask"):
        RobustConditions(no_instances, ["swap"])
    with pytest.raises(DataError, match="no .wav"):
        noise_sources(tmp_path)


def test_noise_sources(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    # spectral slopes: white flat, pink -1, brown -2 (log power vs log frequency)
    for colour, slope in zip(COLOURS, (0.0, -1.0, -2.0), strict=True):
        x = coloured_noise(colour, 1, 1 << 16, rng)[0]
        p = np.abs(np.fft.rfft(x)) ** 2
        f = np.arange(len(p))
        k = (f > 10) & (f < len(p) // 2)
        assert np.polyfit(np.log(f[k]), np.log(p[k]), 1)[0] == pytest.approx(slope, abs=0.1), colour
    src = NoiseSource("white", "coloured")
    audio = 0.2 * np.ones((2, 1000), np.float32)
    assert rms(noise_like(src, audio, SR, rng)) == pytest.approx(0.2, rel=1e-4)
    # a user folder: a short stereo file, looped to the clip length and matched to mono
    import soundfile as sf

    sf.write(tmp_path / "hum.flac", 0.1 * np.random.default_rng(1).standard_normal((4000, 2)), 8000)
    (tmp_path / "notes.txt").write_text("not audio")
    (user,) = [s for s in noise_sources(tmp_path, recordings=False) if s.kind == "recording"]
    assert user.name == "user:hum.flac" and user.licence == "user-supplied"
    x = user.render(1, 3 * SR, SR, rng)
    assert x.shape == (1, 3 * SR) and rms(x) == pytest.approx(1.0, rel=1e-4)
    assert fit_audio(np.arange(10.0)[None], 10, 10, 2, 4, offset=3).tolist() == [[3, 4, 5, 6]] * 2


def test_cli_writes_the_report(s4: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from soundmask import avs2d
    from soundmask.cli import app

    monkeypatch.setitem(avs2d.METHODS, "oracle", Oracle)
    out = tmp_path / "r.json"
    args = ["evaluate", "--method", "oracle", "--data", str(s4), "--robust", "--seed", "2", "--json", str(out)]
    r = CliRunner().invoke(app, [*args, "--conditions", "original,silence,noise,offscreen,swap"])
    assert r.exit_code == 0, r.output
    assert "swap" in r.output and "listening score" in r.output
    d = json.loads(out.read_text())
    assert d["seed"] == 2 and d["score"] == pytest.approx(1.0) and list(d["results"]) == list(CONDITIONS)
    assert d["results"]["swap"]["swap_moved"] == 1.0 and d["results"]["noise"]["negative_empty"] == 1.0
    assert d["noise_sources"][0]["name"] == "white" and "licence" in d["noise_sources"][0]
    r = CliRunner().invoke(app, ["evaluate", "--method", "oracle", "--data", str(s4), "--conditions", "swap"])
    assert r.exit_code != 0 and "--robust" in str(r.exception)


def test_cli_swap_without_instance_masks_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import sys

    from soundmask import avs2d
    from soundmask import cli as cli_mod

    monkeypatch.setitem(avs2d.METHODS, "oracle", Oracle)
    plain = [make_clip("a", "dog", "cat", instances=False), make_clip("b", "cat", "dog", instances=False)]
    root = write_avsbench(tmp_path / "plain", plain)
    out = tmp_path / "r.json"
    monkeypatch.setattr(
        sys, "argv", ["soundmask", "evaluate", "-m", "oracle", "-d", str(root), "--robust", "--json", str(out)]
    )
    capfd.readouterr()
    with pytest.raises(SystemExit) as e:
        cli_mod.main()
    err = capfd.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "instance mask" in err, err
    assert not out.exists()
