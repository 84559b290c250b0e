"""Object-level scores of the 3D sound tags: found, missed, false sources, label accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from soundmask.data.types import Scene, SoundEvent, SoundObject
from soundmask.metrics.objects import score_objects


@dataclass
class _Tag:
    centroid: np.ndarray
    label: str
    spans: tuple = ()


def _scene() -> Scene:
    objects = [
        SoundObject(1, "dog", positions=np.array([[0.0, 0.0, 0.0]])),
        SoundObject(2, "piano", positions=np.array([[2.0, 0.0, 0.0]])),
        SoundObject(3, "fan", sounding=False, positions=np.array([[4.0, 0.0, 0.0]])),
    ]
    events = [SoundEvent(1, 0.0, 2.0), SoundEvent(2, 1.0, 3.0)]
    return Scene(frames=[], objects=objects, sound_events=events)


def _tag(x: float, label: str) -> _Tag:
    return _Tag(np.array([x, 0.1, 0.0]), label)


def test_found_missed_false_sources_and_labels():
    tags = [_tag(0.1, "Bark"), _tag(4.0, "Music"), _tag(1.8, "Dog"), _tag(-0.2, "Dog")]
    s = score_objects(_scene(), tags)
    assert (s.objects_found, s.objects_missed, s.false_sources, s.duplicates) == (2, 0, 1, 1)
    assert s.pairs == {1: 0, 2: 2}  # the dog's nearest tag wins; the other is a duplicate, not a false source
    assert s.false == [1]  # the tag on the silent fan
    assert s.label_accuracy == pytest.approx(0.5) and s.correct_labels == [1]  # "Dog" does not name a piano
    assert s.to_dict()["pairs"] == {"1": 0, "2": 2}


def test_nothing_tagged_or_too_far():
    s = score_objects(_scene(), [])
    assert (s.objects_found, s.objects_missed, s.false_sources, s.label_accuracy) == (0, 2, 0, None)
    s = score_objects(_scene(), [_tag(0.7, "Bark")])  # 0.71 m from the dog: not found, a false source
    assert (s.objects_found, s.false_sources) == (0, 1)
    assert score_objects(_scene(), [_tag(0.7, "Bark")], radius=1.0).objects_found == 1


def test_one_tag_finds_one_object():
    scene = _scene()
    scene.objects[1].positions = np.array([[0.4, 0.0, 0.0]])  # piano 0.4 m from the dog
    s = score_objects(scene, [_tag(0.2, "Bark")])
    assert (s.objects_found, s.objects_missed, s.false_sources) == (1, 1, 0)


def test_a_moving_object_is_scored_at_its_mean_position():
    scene = _scene()
    scene.objects[0].positions = np.array([[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # walks through the origin
    assert score_objects(scene, [_tag(0.0, "Bark")]).objects_found == 1


def test_track_error_follows_a_moving_object_frame_by_frame():
    from soundmask.metrics.objects import track_errors

    scene = _scene()
    walk = np.stack([np.linspace(-1, 1, 5), np.zeros(5), np.zeros(5)], axis=1)
    scene.objects[0].positions = walk  # the dog walks; the piano stands still
    tracks = np.zeros((5, 2, 3))
    tracks[:, 0] = walk + [0.0, 0.1, 0.0]  # tag 0 follows the dog 0.1 m off
    tracks[:, 1] = [2.0, 0.0, 0.3]  # tag 1 sits 0.3 m above the piano
    tracks[2, 1] = np.nan  # a frame without the tag's Gaussians is skipped
    errs = track_errors(scene, tracks, {1: 0, 2: 1})
    assert errs == {1: pytest.approx(0.1), 2: pytest.approx(0.3)}
    frozen = np.repeat(tracks[:1], 5, axis=0)  # a tag stuck at the dog's first position
    assert track_errors(scene, frozen, {1: 0})[1] == pytest.approx(np.median(np.hypot(walk[:, 0] + 1, 0.1)))
    with pytest.raises(ValueError, match="positions"):
        track_errors(scene, tracks[:3], {1: 0})
