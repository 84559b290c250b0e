"""Generated scenes read as 5-frame 2D clips (for `soundmask train/evaluate --data SCENES`)."""

from __future__ import annotations

import ctypes.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("moderngl", reason="the generator renders with moderngl")
if ctypes.util.find_library("EGL") is None:  # pragma: no cover - depends on the machine
    pytest.skip("libEGL not found", allow_module_level=True)

from soundmask.avs2d.features import open_training_dataset
from soundmask.data.scene import load_mono, load_sound_mask, read_scene
from soundmask.data.scene_clips import SceneClipsDataset
from soundmask.errors import DataError
from soundmask.synth.config import SynthConfig, split_of
from soundmask.synth.generator import generate_dataset


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scenes")
    generate_dataset(SynthConfig(preset="scene3d", width=40, frames=12), out, 2, 0)
    return out


def test_scene_clips_cut_frames_masks_and_audio(scenes: Path) -> None:
    split = split_of(0)
    ds = SceneClipsDataset(scenes, split=split)
    n_scenes = sum(split_of(s) == split for s in (0, 1))
    assert len(ds) == 2 * n_scenes  # 12 frames → two whole 5-frame windows per scene (the rest is dropped)
    c = ds[1]
    sc = read_scene(scenes / "scene3d_000000")
    assert c.frames.shape == (5, 40, 40, 3) and c.masks.shape == (5, 40, 40) and c.mask_valid.all()
    assert np.array_equal(c.masks[0], load_sound_mask(sc, 5))
    assert np.allclose(c.frame_times, np.arange(5) / sc.fps)
    mono = load_mono(sc)
    start = int(round(sc.frames[5].time * sc.sample_rate))
    assert c.audio.shape == (1, int(round(5 / sc.fps * sc.sample_rate)))
    assert np.allclose(c.audio[0], mono[start : start + c.audio.shape[1]])
    assert c.split == split and c.meta["start_frame"] == 5


def test_scene_clips_split_filter_and_one_scene_folder(scenes: Path) -> None:
    other = {"train": "test", "val": "test", "test": "train"}[split_of(0)]
    names = {n.rsplit("_", 1)[0] for n in SceneClipsDataset(scenes, split=other).names}
    assert "scene3d_000000" not in names
    one = SceneClipsDataset(scenes / "scene3d_000000", split=split_of(0))
    assert len(one) == 2


def test_open_training_dataset_picks_the_reader(scenes: Path, tmp_path: Path) -> None:
    assert isinstance(open_training_dataset(scenes, split_of(0)), SceneClipsDataset)
    with pytest.raises(DataError):
        open_training_dataset(tmp_path, "train")  # neither scenes nor AVSBench
    with pytest.raises(DataError, match="no scenes"):
        SceneClipsDataset(tmp_path)


def test_seac_trains_its_association_on_scene_clips(scenes: Path, tmp_path: Path) -> None:
    """Every method's `soundmask train --data SCENES` reads the scenes as clips (SeAC: frames + audio only)."""
    from soundmask.avs2d import get_method

    split = split_of(0)  # scene 0's split holds at least its two clips
    log = get_method("seac").train(scenes, tmp_path / "seac.pt", split=split, epochs=2, batch_size=2)
    assert len(log["loss"]) == 2 and all(np.isfinite(log["loss"]))
