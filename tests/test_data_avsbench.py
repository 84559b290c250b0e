"""AVSBench S4 / MS3 reader and writer: round trips, the original file naming, and bad input."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from soundmask.data.avsbench import AVSBenchDataset, detect_subset, write_avsbench
from soundmask.data.types import Clip
from soundmask.errors import DataError

H = W = 32
SR = 16000
PCM16_TOL = 1.0 / 32767 + 1e-6


def _clip(rng: np.random.Generator, name: str, split: str, category: str = "", sr: int = SR,
          gt: tuple[int, ...] | None = None, channels: int = 1, start_time: float = 0) -> Clip:  # fmt: skip
    frames = rng.integers(0, 256, (5, H, W, 3), dtype=np.uint8)
    masks = rng.random((5, H, W)) > 0.6
    valid = np.ones(5, bool)
    if gt is not None:
        valid[:] = False
        valid[list(gt)] = True
        masks[~valid] = False
    audio = (0.5 * rng.uniform(-1, 1, (channels, sr))).astype(np.float32)
    meta = {"start_time": start_time} if category else {}
    return Clip(name, frames, audio, sr, masks=masks, mask_valid=valid, category=category, split=split, meta=meta)


@pytest.fixture
def s4_clips(rng):
    return [
        _clip(rng, "vidA_1000", "test", "dog_barking", start_time=1),
        _clip(rng, "vidB_2000", "test", "playing_piano", channels=2, start_time=3),
        _clip(rng, "vidC_3000", "train", "dog_barking", gt=(0,)),
        _clip(rng, "vidD_4000", "val", "helicopter"),
    ]


def _assert_same(got: Clip, want: Clip) -> None:
    assert got.name == want.name
    assert got.split == want.split
    assert got.category == want.category
    np.testing.assert_array_equal(got.frames, want.frames)
    np.testing.assert_array_equal(got.mask_valid, want.mask_valid)
    np.testing.assert_array_equal(got.masks, want.masks)
    assert got.sample_rate == SR
    assert got.audio.shape == want.audio.shape
    assert np.abs(got.audio - want.audio).max() <= PCM16_TOL


def test_s4_round_trip(tmp_path, s4_clips):
    root = write_avsbench(tmp_path / "Single-source", s4_clips, subset="s4")
    assert detect_subset(root) == "s4"
    test = AVSBenchDataset(root, split="test")  # subset auto-detected
    assert test.subset == "s4" and len(test) == 2 and test.names == ["vidA_1000", "vidB_2000"]
    for got, want in zip(test, s4_clips[:2], strict=True):
        _assert_same(got, want)
    assert test[0].meta["start_time"] == 1 and test[1].meta["start_time"] == 3
    assert test[-1].name == "vidB_2000" and [c.name for c in test[0:2]] == test.names
    np.testing.assert_array_equal(test[0].frame_times, np.arange(5))
    train = AVSBenchDataset(root, "s4", split="train")
    (c,) = list(train)
    _assert_same(c, s4_clips[2])
    assert c.mask_valid.tolist() == [True, False, False, False, False]
    _assert_same(AVSBenchDataset(root, split="val")[0], s4_clips[3])
    with pytest.raises(IndexError):
        test[2]


def test_s4_exact_layout(tmp_path, s4_clips):
    root = write_avsbench(tmp_path, s4_clips, subset="s4")
    rows = list(csv.reader((root / "s4_meta_data.csv").read_text().splitlines()))
    assert rows[0] == ["name", "start_time", "category", "split"]
    assert rows[1] == ["vidA_1000", "1", "dog_barking", "test"]
    d = root / "s4_data"
    assert sorted(p.name for p in (d / "visual_frames/test/dog_barking/vidA_1000").iterdir()) == [
        f"vidA_1000_{k}.png" for k in range(1, 6)
    ]
    # train: only the first frame has a mask
    assert [p.name for p in (d / "gt_masks/train/dog_barking/vidC_3000").iterdir()] == ["vidC_3000_1.png"]
    m = np.asarray(Image.open(d / "gt_masks/test/dog_barking/vidA_1000/vidA_1000_3.png"))
    assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}
    info = sf.info(d / "audio_wav/test/playing_piano/vidB_2000.wav")
    assert (info.samplerate, info.channels, info.subtype) == (16000, 2, "PCM_16")


def test_ms3_round_trip_and_layout(tmp_path, rng):
    clips = [_clip(rng, "ms3vid_a", "train"), _clip(rng, "ms3vid_b", "test"), _clip(rng, "ms3vid_c", "test")]
    root = write_avsbench(tmp_path / "Multi-sources", clips, subset="ms3")
    d = root / "ms3_data"
    assert (d / "visual_frames/ms3vid_a/ms3vid_a.mp4_5.png").is_file()  # no split / category folder
    assert (d / "gt_masks/train/ms3vid_a/ms3vid_a_5.png").is_file()  # MS3 train: all 5 annotated
    assert (d / "audio_wav/test/ms3vid_b.wav").is_file()
    assert next(csv.reader((root / "ms3_meta_data.csv").read_text().splitlines()))[1] == "split"
    for split, want in (("train", clips[:1]), ("test", clips[1:])):
        ds = AVSBenchDataset(root, split=split)
        assert ds.subset == "ms3"
        for got, w in zip(ds, want, strict=True):
            _assert_same(got, w)
            assert got.mask_valid.all() and got.category == ""


@pytest.mark.parametrize("subset", ["s4", "ms3"])
def test_instance_ids_round_trip_where_given(tmp_path, rng, subset):
    cat = "dog" if subset == "s4" else ""
    with_ids = _clip(rng, "vid_ids", "test", cat)
    with_ids.instances = rng.integers(0, 4, (5, H, W)).astype(np.int32) * 300  # ids above 255 survive
    with_ids.instance_categories = {300: "dog", 600: "piano", 900: "fan"}
    plain = _clip(rng, "vid_plain", "test", cat)
    root = write_avsbench(tmp_path / subset, [with_ids, plain], subset=subset)
    assert not list((root / f"{subset}_data" / "gt_masks").rglob("objects.csv"))  # beside, not inside, the GT
    got = {c.name: c for c in AVSBenchDataset(root, split="test")}
    assert np.array_equal(got["vid_ids"].instances, with_ids.instances)
    assert got["vid_ids"].instance_categories == with_ids.instance_categories
    assert got["vid_plain"].instances is None and got["vid_plain"].instance_categories == {}


def test_write_resamples_to_16k(tmp_path, rng):
    c = _clip(rng, "v", "test", "dog_barking", sr=44100)
    t = np.arange(44100) / 44100
    c.audio = (0.5 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    got = AVSBenchDataset(write_avsbench(tmp_path, [c]), "s4")[0]
    assert got.sample_rate == 16000 and got.audio.shape == (1, 16000)
    want = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert np.abs(got.audio[0, 100:-100] - want[100:-100]).max() < 0.01


def test_rewrite_keeps_other_subset_and_is_atomic(tmp_path, rng, s4_clips):
    write_avsbench(tmp_path, [_clip(rng, "m", "test")], subset="ms3")
    write_avsbench(tmp_path, s4_clips, subset="s4")
    assert len(AVSBenchDataset(tmp_path, "ms3")) == 1 and len(AVSBenchDataset(tmp_path, "s4")) == 2
    bad = _clip(rng, "x", "train", "dog_barking", gt=(1,))  # frame 1 unannotated: invalid for S4 train
    before = (tmp_path / "s4_meta_data.csv").read_text()
    with pytest.raises(DataError, match="needs ground-truth masks for frame"):
        write_avsbench(tmp_path, [*s4_clips, bad], subset="s4")
    assert (tmp_path / "s4_meta_data.csv").read_text() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    with pytest.raises(DataError, match="unknown split"):
        write_avsbench(tmp_path / "o", [_clip(rng, "y", "dev", "dog_barking")])


# ------------------------------------------------------------------------------- hand-built original layout
def _png(path: Path, arr: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(arr)
    if mode == "P":
        im = Image.fromarray(arr.astype(np.uint8), mode="L").convert("P")  # palette indices = values
        im.putpalette([0, 0, 0, 128, 0, 0] + [0] * (256 * 3 - 6))
    im.save(path)


def test_reads_hand_built_original_layout(tmp_path, rng):
    # S4, as the original preprocess_s4.py / dataloader.py lay it out (pandas-style CSV, extra columns ok)
    s4 = tmp_path / "Single-source"
    (s4 / "s4_data").mkdir(parents=True)
    (s4 / "s4_meta_data.csv").write_text(
        "name,start_time,category,split\n-0wkxdkLSbw_5000,5,lions_roaring,test\n_a_0,0,lions_roaring,train\n"
    )
    frames = rng.integers(0, 256, (5, 24, 24, 3), dtype=np.uint8)
    masks = rng.random((5, 24, 24)) > 0.5
    base = s4 / "s4_data"
    for split, name in (("test", "-0wkxdkLSbw_5000"), ("train", "_a_0")):
        for k in range(1, 6):
            _png(base / f"visual_frames/{split}/lions_roaring/{name}/{name}_{k}.png", frames[k - 1])
            if split == "test" or k == 1:
                mask_png = base / f"gt_masks/{split}/lions_roaring/{name}/{name}_{k}.png"
                _png(mask_png, masks[k - 1].astype(np.uint8) * 255)
        wav = base / f"audio_wav/{split}/lions_roaring/{name}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        sf.write(wav, rng.uniform(-0.5, 0.5, (5 * 16000, 2)), 16000, subtype="PCM_16")
    c = AVSBenchDataset(s4, split="test")[0]
    assert c.name == "-0wkxdkLSbw_5000" and c.category == "lions_roaring" and c.meta["start_time"] == 5
    assert c.frames.shape == (5, 24, 24, 3) and c.audio.shape == (2, 80000) and c.sample_rate == 16000
    np.testing.assert_array_equal(c.frames, frames)
    np.testing.assert_array_equal(c.masks, masks)
    assert c.duration == 5.0
    t = AVSBenchDataset(s4, split="train")[0]
    assert t.mask_valid.tolist() == [True, False, False, False, False]
    np.testing.assert_array_equal(t.masks[0], masks[0])
    assert not t.masks[1:].any()

    # MS3: first CSV column is the id (whatever its header), frames `<id>.mp4_<k>.png`, palette masks
    ms3 = tmp_path / "Multi-sources"
    (ms3 / "ms3_data").mkdir(parents=True)
    (ms3 / "ms3_meta_data.csv").write_text("video_id,split\n0aF7ws1uP4g,val\n")
    name = "0aF7ws1uP4g"
    for k in range(1, 6):
        _png(ms3 / f"ms3_data/visual_frames/{name}/{name}.mp4_{k}.png", frames[k - 1])
        _png(ms3 / f"ms3_data/gt_masks/val/{name}/{name}_{k}.png", masks[k - 1].astype(np.uint8), mode="P")
    wav = ms3 / f"ms3_data/audio_wav/val/{name}.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    sf.write(wav, rng.uniform(-0.5, 0.5, 16000 * 5), 16000)
    m = AVSBenchDataset(ms3, split="val")[0]
    assert m.name == name and m.split == "val" and m.mask_valid.all()
    np.testing.assert_array_equal(m.masks, masks)


# ---------------------------------------------------------------------------------------------- bad input
def _truncate(p: Path) -> None:
    size = p.stat().st_size
    with p.open("r+b") as f:
        f.truncate(size // 2)


def _raises(path: Path, fn, what: str = "") -> DataError:
    with pytest.raises(DataError) as ei:
        fn()
    msg = str(ei.value)
    assert "\n" not in msg
    assert str(path) in msg, msg
    if what:
        assert re.search(what, msg), msg
    return ei.value


@pytest.fixture
def s4_root(tmp_path, rng):
    clips = [_clip(rng, "vidA", "test", "dog_barking"), _clip(rng, "vidB", "train", "cat_meowing", gt=(0,))]
    return write_avsbench(tmp_path / "avs", clips, subset="s4")


def test_bad_root_csv_and_split(tmp_path, s4_root):
    missing = tmp_path / "nope"
    _raises(missing, lambda: AVSBenchDataset(missing), "not found")
    empty = tmp_path / "empty"
    empty.mkdir()
    _raises(empty, lambda: AVSBenchDataset(empty), "no s4_meta_data.csv or ms3_meta_data.csv")
    _raises(empty / "ms3_meta_data.csv", lambda: AVSBenchDataset(empty, "ms3"), "not found")
    _raises(s4_root, lambda: AVSBenchDataset(s4_root, split="testing"), "unknown split 'testing'")
    _raises(s4_root, lambda: AVSBenchDataset(s4_root, subset="s5"), "unknown AVSBench subset")  # type: ignore[arg-type]
    csv_path = s4_root / "s4_meta_data.csv"
    csv_path.write_text("name,start_time,split\nvidA,0,test\n")
    _raises(csv_path, lambda: AVSBenchDataset(s4_root), "missing column.*category")
    (s4_root / "ms3_meta_data.csv").write_text("video_id,split\n")
    _raises(s4_root, lambda: AVSBenchDataset(s4_root), "ambiguous")


def test_missing_data_folder(tmp_path, s4_root):
    os.rename(s4_root / "s4_data", tmp_path / "elsewhere")
    _raises(s4_root / "s4_data", lambda: AVSBenchDataset(s4_root), "not found")


@pytest.mark.parametrize("kind", ["frame", "mask", "audio"])
def test_missing_or_truncated_files(s4_root, kind):
    ds = AVSBenchDataset(s4_root, split="test")
    p = {"frame": ds.frame_paths(0)[2], "mask": ds.mask_paths(0)[4], "audio": ds.audio_path(0)}[kind]
    ds[0]  # fine before
    data = p.read_bytes()
    _truncate(p)
    _raises(p, lambda: ds[0], "truncated|cannot decode")
    p.unlink()
    _raises(p, lambda: ds[0], "not found")
    p.write_bytes(data)
    ds[0]


def test_train_needs_only_first_mask(s4_root):
    ds = AVSBenchDataset(s4_root, split="train")
    ds[0]
    p = ds.mask_paths(0)[0]
    p.unlink()
    _raises(p, lambda: ds[0], "mask not found")


def test_size_mismatch(s4_root, rng):
    ds = AVSBenchDataset(s4_root, split="test")
    mask = ds.mask_paths(0)[1]
    _png(mask, (rng.random((H + 2, W)) > 0.5).astype(np.uint8) * 255)
    _raises(mask, lambda: ds[0], r"34x32 \(HxW\), expected 32x32")
    frame = ds.frame_paths(0)[3]
    _png(frame, rng.integers(0, 256, (H, W + 1, 3), dtype=np.uint8))
    _raises(frame, lambda: ds[0], "expected 32x32")
