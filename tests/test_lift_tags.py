"""Tagging (spans, SoundTag) and the SoundScene query API and file format."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soundmask.audio.types import Tagging
from soundmask.errors import DataError
from soundmask.lift.grouping import Component
from soundmask.lift.tags import SoundScene, SoundTag, spans_from_activity, tag_component
from soundmask.splat.gaussians import Gaussians


def test_spans_from_activity():
    times = np.arange(6, dtype=float)
    assert spans_from_activity(times, [1, 1, 0, 1, 0, 1], 1.0) == [(0.0, 2.0), (3.0, 4.0), (5.0, 6.0)]
    assert spans_from_activity(times, np.zeros(6, bool), 1.0) == []
    assert spans_from_activity(times, np.ones(6, bool), 0.5) == [(0.0, 5.5)]
    # time order, not list order; an inactive frame splits even when frames overlap in time
    assert spans_from_activity([2.0, 0.0, 1.0], [True, True, False], 2.0) == [(0.0, 2.0), (2.0, 4.0)]
    with pytest.raises(ValueError):
        spans_from_activity([0.0, 1.0], [True], 1.0)


@pytest.fixture
def sound_scene():
    g = Gaussians.from_points(np.random.default_rng(0).normal(size=(10, 3)), scale=0.05, num_features=2)
    dog = SoundTag(
        1,
        np.array([0, 1, 2]),
        "Dog",
        {"Dog": 0.9, "Bark": 0.8, "Animal": 0.5},
        np.array([1.0, 0.0, 0.0], np.float32),
        [(0.0, 2.0), (5.0, 6.0)],
        np.array([1.0, 0.0, 3.0]),
    )
    piano = SoundTag(
        2,
        np.array([5, 6]),
        "Piano",
        {"Piano": 0.7, "Keyboard (musical)": 0.6},
        np.array([0.0, 1.0, 0.0], np.float32),
        [(1.0, 4.0)],
        np.array([-1.0, 0.0, 3.0]),
    )
    return SoundScene(g, [dog, piano], {"scene": "toy", "fps": 1.0, "ids": np.array([1, 2])})


def test_query_api(sound_scene):
    s = sound_scene
    assert [t.label for t in s.by_label("dog")] == ["Dog"]
    assert [t.label for t in s.by_label("BARK")] == ["Dog"]  # score names match too
    assert [t.label for t in s.by_label("keyboard")] == ["Piano"]
    assert s.by_label("cat") == []
    assert [t.label for t in s.at_time(0.5)] == ["Dog"]
    assert [t.label for t in s.at_time(1.5)] == ["Dog", "Piano"]
    assert [t.label for t in s.at_time(4.5)] == []
    assert [t.label for t in s.at_time(2.0)] == ["Piano"]  # spans are [start, end)
    best = s.by_audio([0.1, 0.9, 0.0])
    assert len(best) == 1 and best[0][0].label == "Piano" and best[0][1] == pytest.approx(0.9 / np.hypot(0.1, 0.9))
    both = s.by_audio(np.array([1.0, 1.0, 0.0]), top_k=5)
    assert len(both) == 2 and both[0][1] == pytest.approx(both[1][1])
    assert s.by_audio(np.ones(7)) == []  # embeddings of another size are skipped
    assert np.flatnonzero(s.mask_gaussians()).tolist() == [0, 1, 2, 5, 6]
    assert np.flatnonzero(s.mask_gaussians(t=5.5)).tolist() == [0, 1, 2]
    assert np.flatnonzero(s.mask_gaussians(t=1.5, label="piano")).tolist() == [5, 6]
    assert not s.mask_gaussians(t=4.5).any()
    assert s.mask_gaussians().shape == (10,)


def test_tag_component_from_tagging():
    comp = Component(4, np.array([3, 4]), np.array([0.0, 1.0, 2.0]), 2)
    tagging = Tagging(("Speech", "Dog", "Music"), np.array([0.1, 0.8, 0.3]), np.arange(4, dtype=np.float32))
    tag = tag_component(comp, tagging, [(0.0, 1.0)], top_k=2)
    assert tag.component_id == 4 and tag.label == "Dog" and list(tag.scores) == ["Dog", "Music"]
    assert tag.embedding.tolist() == [0, 1, 2, 3] and tag.spans == [(0.0, 1.0)]
    assert tag_component(comp, None, []).label == "sound"


def test_save_load_round_trip(sound_scene, tmp_path):
    path = sound_scene.save(tmp_path / "sub" / "scene.pt")
    assert path.is_file() and [p.name for p in path.parent.iterdir()] == ["scene.pt"]  # no temp file left
    torch.load(path, weights_only=True)  # plain types only
    back = SoundScene.load(path)
    for k, v in sound_scene.gaussians.tensors().items():
        assert torch.equal(back.gaussians.tensors()[k], v)
    assert back.gaussians.time_range == sound_scene.gaussians.time_range
    assert len(back.tags) == 2
    for a, b in zip(sound_scene.tags, back.tags, strict=True):
        assert (a.component_id, a.label, a.scores, a.spans) == (b.component_id, b.label, b.scores, b.spans)
        assert np.array_equal(a.index, b.index) and np.array_equal(a.embedding, b.embedding)
        assert np.allclose(a.centroid, b.centroid)
    assert back.meta["scene"] == "toy" and back.meta["ids"].tolist() == [1, 2]
    assert back.mask_gaussians(t=1.5).tolist() == sound_scene.mask_gaussians(t=1.5).tolist()


def test_load_errors_name_the_file(tmp_path, sound_scene):
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"this is not a torch file")
    with pytest.raises(DataError, match="corrupt.pt"):
        SoundScene.load(bad)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(sound_scene.save(tmp_path / "ok.pt").read_bytes()[:100])
    with pytest.raises(DataError, match="truncated.pt"):
        SoundScene.load(truncated)
    other = tmp_path / "other.pt"
    torch.save({"something": 1}, other)
    with pytest.raises(DataError, match="other.pt"):
        SoundScene.load(other)
    with pytest.raises(DataError, match="missing.pt"):
        SoundScene.load(tmp_path / "missing.pt")
    err = None
    try:
        SoundScene.load(bad)
    except DataError as e:
        err = str(e)
    assert err is not None and "\n" not in err and "fix:" in err


def test_audio_of_round_trip_and_older_files(sound_scene, tmp_path):
    rng = np.random.default_rng(3)
    sig = (0.2 * rng.standard_normal(16000)).astype(np.float32)
    sig[8000:] = 0.0  # silent where it does not sound
    sound_scene.tags[0].audio, sound_scene.tags[0].sample_rate = sig, 16000
    path = sound_scene.save(tmp_path / "scene.pt")
    raw = torch.load(path, weights_only=True)
    assert raw["tags"][0]["audio"].dtype == torch.float16 and "audio" not in raw["tags"][1]
    back = SoundScene.load(path)
    for obj in (back.tags[0], 1):  # the tag itself or its component id
        got, sr = back.audio_of(obj)
        assert sr == 16000 and got.dtype == np.float32 and got.shape == sig.shape
        assert np.max(np.abs(got - sig)) <= 1e-3 * np.max(np.abs(sig)) and not got[8000:].any()
    with pytest.raises(DataError, match="no audio of its own"):
        back.audio_of(2)  # a tag written without audio (an older file, or --separation none)
    with pytest.raises(DataError, match="no sounding object with component id 9"):
        back.audio_of(9)
    try:
        back.audio_of(2)
    except DataError as e:
        assert "\n" not in str(e) and "fix:" in str(e)
