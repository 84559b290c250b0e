"""Activity chunking: frame-level precision/recall on generated timelines, silence, options, speech, silence veto."""

from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

from soundmask.audio import chunking
from soundmask.audio.chunking import activity, activity_profile, chunk, frame_precision_recall
from soundmask.audio.types import Segment
from soundmask.data.types import SoundObject
from soundmask.errors import ConfigError, DataError

SR = 16000


@pytest.fixture(scope="module")
def library():
    from soundmask.synth.sounds import SoundLibrary

    return SoundLibrary()


def _tone(seconds: float, f: float = 440.0, amp: float = 0.3, sr: int = SR) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


def _place(duration: float, pieces: list[tuple[float, np.ndarray]], sr: int = SR) -> np.ndarray:
    y = np.zeros(round(duration * sr), np.float32)
    for start, x in pieces:
        i = round(start * sr)
        y[i : i + len(x)] += x
    return y


# ------------------------------------------------------------------------------------------------ evaluation
def test_activity_and_frame_precision_recall_exact():
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.9])
    segs = [Segment(1.0, 2.0), Segment(0.4, 0.6), (1.5, 3.0)]  # overlapping, unsorted, mixed types
    np.testing.assert_array_equal(activity(segs, t), [False, True, True, True, True, True])
    assert not activity([], t).any()
    p, r = frame_precision_recall([(0.0, 1.0)], [(0.5, 1.5)], duration=2.0)
    assert p == pytest.approx(0.5) and r == pytest.approx(0.5)
    assert frame_precision_recall([], [(0.5, 1.5)], 2.0) == (1.0, 0.0)
    assert frame_precision_recall([(0, 1)], [], 2.0) == (0.0, 1.0)


# ------------------------------------------------------------------------------------------ simple signals
def test_silence_gives_no_segments(rng):
    assert chunk(np.zeros(5 * SR), SR) == []
    assert chunk(np.zeros((2, 3 * SR)), SR, speech=True) == []
    hiss = (1e-4 * rng.standard_normal(5 * SR)).astype(np.float32)  # −80 dBFS: dither, faint hiss
    assert chunk(hiss, SR) == []


def test_boundaries_score_and_stereo_input(rng):
    y = _place(6.0, [(1.0, _tone(1.5, amp=0.3)), (4.0, _tone(1.0, amp=0.01))])
    y += (1e-4 * rng.standard_normal(len(y))).astype(np.float32)
    segs = chunk(np.stack([y, 0.5 * y]), SR, speech=False)
    assert [s.kind for s in segs] == ["sound", "sound"]
    (a, b) = segs
    assert abs(a.start - 1.0) <= 0.02 and abs(a.end - 2.5) <= 0.02
    assert abs(b.start - 4.0) <= 0.02 and abs(b.end - 5.0) <= 0.02  # 30 dB quieter is still found
    assert 0 <= b.score < a.score <= 1 and a.score > 0.9


def test_min_segment_and_min_gap(rng):
    blip = _place(3.0, [(1.0, _tone(0.15))])
    assert chunk(blip, SR, speech=False) == []  # shorter than min_segment = 0.25 s
    (s,) = chunk(blip, SR, speech=False, min_segment=0.1)
    assert abs(s.duration - 0.15) <= 0.02
    two = _place(4.0, [(1.0, _tone(0.6)), (1.75, _tone(0.6))])  # a 0.15 s gap
    (merged,) = chunk(two, SR, speech=False)  # min_gap = 0.2 closes it
    assert abs(merged.start - 1.0) <= 0.02 and abs(merged.end - 2.35) <= 0.02
    apart = chunk(two, SR, speech=False, min_gap=0.1)
    assert len(apart) == 2 and abs(apart[0].end - 1.6) <= 0.02 and abs(apart[1].start - 1.75) <= 0.02
    with pytest.raises(ConfigError):
        chunk(two, SR, min_gap=-1)
    with pytest.raises(ConfigError):
        chunk(two, SR, speech="sometimes")
    with pytest.raises(DataError, match="NaN"):
        chunk(np.full(100, np.nan), SR)


def test_steady_sound_through_the_whole_file_is_one_segment(rng):
    hum = _tone(4.0, 120.0, 0.1) + (0.01 * rng.standard_normal(4 * SR)).astype(np.float32)
    (s,) = chunk(hum, SR, speech=False)
    assert s.start <= 0.01 and s.end >= 3.99


def test_profile_thresholds_are_ordered():
    prof = activity_profile(_place(4.0, [(1.0, _tone(1.0))]), SR)
    assert prof.floor_db < prof.off_db <= prof.on_db < prof.max_db
    assert prof.on_db == pytest.approx(prof.max_db - 45.0)  # digital silence around: the relative threshold rules
    assert prof.normalised.min() >= 0 and prof.normalised.max() == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------- timelines
CATEGORIES = ["dog", "person", "piano", "fan", "car", "guitar", "tv", "violin", "engine", "radio", "cat", "bird"]


def _timeline(library, seed: int, duration: float = 20.0) -> tuple[np.ndarray, list]:
    from soundmask.synth.sounds import make_timeline, render_tracks

    rng = np.random.default_rng(seed)
    objects = [SoundObject(i, CATEGORIES[int(rng.integers(len(CATEGORIES)))]) for i in range(int(rng.integers(1, 4)))]
    events = make_timeline(objects, duration, rng, p_silent=0.0)
    tracks, events = render_tracks(library, objects, events, duration, SR, rng)
    return sum(tracks.values()), events


def test_frame_precision_recall_on_generated_timelines(library):
    """Mixed mono timelines of 1-3 objects (recordings, instruments, speech, procedural): activity found frame by
    frame. Events are ground truth as generated: the pauses inside an event (between words, barks) count as active."""
    precision, recall = [], []
    for seed in range(10):
        mix, events = _timeline(library, seed)
        p, r = frame_precision_recall(chunk(mix, SR, speech=False), events, 20.0)
        precision.append(p)
        recall.append(r)
    print(
        f"\nchunking, 10 timelines: precision {np.mean(precision):.3f} (min {np.min(precision):.3f}), "
        f"recall {np.mean(recall):.3f} (min {np.min(recall):.3f})"
    )
    assert np.mean(precision) >= 0.97 and np.min(precision) >= 0.9
    assert np.mean(recall) >= 0.95 and np.min(recall) >= 0.9


# ------------------------------------------------------------------------------------------------- speech
def test_speech_segments_are_labelled(library):
    pytest.importorskip("silero_vad")
    rng = np.random.default_rng(5)
    talk = library.render(library.choose("person", rng, kinds=["speech"]), 3.0, SR, rng)
    tune = library.render(library.choose("piano", rng, kinds=["gm", "noise"]), 2.0, SR, rng)
    y = _place(8.0, [(0.5, talk), (5.0, tune)])
    segs = chunk(y, SR, speech=True)
    speech = [s for s in segs if s.kind == "speech"]
    sound = [s for s in segs if s.kind == "sound"]
    assert speech and all(0.4 <= s.start and s.end <= 3.65 for s in speech)
    assert sum(s.duration for s in speech) >= 2.0
    assert any(s.start >= 4.9 and s.end <= 7.1 for s in sound)
    for a, b in itertools.pairwise(segs):
        assert a.end <= b.start  # speech and sound do not overlap
    assert {s.kind for s in chunk(y, SR, speech=False)} == {"sound"}
    p, r = frame_precision_recall(segs, [(0.5, 3.5), (5.0, 7.0)], 8.0)
    assert p >= 0.95 and r >= 0.85


def test_missing_silero_is_a_logged_note(monkeypatch, caplog):
    monkeypatch.setattr(chunking, "_silero", lambda: None)
    y = _place(3.0, [(1.0, _tone(1.0))])
    with caplog.at_level(logging.INFO, logger="soundmask.audio.chunking"):
        segs = chunk(y, SR, speech=True)
    assert len(segs) == 1 and segs[0].kind == "sound"
    assert chunking.speech_segments(y, SR) is None


# -------------------------------------------------------------------------------------------- silence veto
def test_silence_veto_from_scores_or_callable():
    y = _place(6.0, [(0.5, _tone(1.0)), (3.5, _tone(1.5, 660.0))])
    assert len(chunk(y, SR, speech=False)) == 2
    times = np.arange(0.48, 6.0, 0.48)  # YAMNet window centres
    probs = np.where(times < 2.5, 0.9, 0.05)  # the tagger calls the first sound silence
    (kept,) = chunk(y, SR, speech=False, silence_scores=(times, probs))
    assert kept.start > 3.0
    calls = []

    def tagger(mono: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        calls.append((mono.shape, sr))
        return times, np.where(times > 3.0, 0.8, 0.0)

    (kept,) = chunk(np.stack([y, y]), SR, speech=False, silence_scores=tagger)
    assert kept.end < 2.0 and calls == [((len(y),), SR)]
    with pytest.raises(ConfigError):
        chunk(y, SR, speech=False, silence_scores=(times, probs[:-1]))
