"""AVSS (AVSBench-semantic) palette, reader and writer."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from soundmask.data.avss import (
    AVSS_CLASSES,
    AVSSDataset,
    avss_palette,
    labels_to_rgb,
    rgb_to_labels,
    write_avss,
)
from soundmask.data.types import Clip
from soundmask.errors import DataError

H = W = 32
PCM16_TOL = 1.0 / 32767 + 1e-6


def _reference_palette(n: int = 71) -> np.ndarray:
    """The original get_v2_pallete loop, transcribed literally."""
    pal = [0] * (n * 3)
    for j in range(n):
        lab, i = j, 0
        while lab > 0:
            pal[j * 3 + 0] |= ((lab >> 0) & 1) << (7 - i)
            pal[j * 3 + 1] |= ((lab >> 1) & 1) << (7 - i)
            pal[j * 3 + 2] |= ((lab >> 2) & 1) << (7 - i)
            i += 1
            lab >>= 3
    return np.array(pal, dtype=np.uint8).reshape(-1, 3)


def test_classes_and_palette():
    assert len(AVSS_CLASSES) == 71 and len(set(AVSS_CLASSES)) == 71
    assert AVSS_CLASSES[0] == "background" and AVSS_CLASSES[1] == "accordion" and AVSS_CLASSES[-1] == "woman"
    assert AVSS_CLASSES[43] == "missile-rocket"
    pal = avss_palette()
    assert pal.shape == (71, 3) and pal.dtype == np.uint8
    np.testing.assert_array_equal(pal, _reference_palette())
    assert pal[0].tolist() == [0, 0, 0] and pal[1].tolist() == [128, 0, 0] and pal[43].tolist() == [192, 128, 64]
    assert len({tuple(c) for c in pal.tolist()}) == 71
    pal[0] = 1  # a copy: the module's palette is untouched
    assert avss_palette()[0].tolist() == [0, 0, 0]


def test_labels_rgb_inverse(rng):
    lab = rng.integers(0, 71, (3, 7, 9))
    rgb = labels_to_rgb(lab)
    assert rgb.shape == (3, 7, 9, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb_to_labels(rgb), lab)
    np.testing.assert_array_equal(rgb_to_labels(avss_palette()), np.arange(71))
    with pytest.raises(ValueError):
        labels_to_rgb(np.array([71]))
    bad = rgb.copy()
    bad[0, 0, 0] = (1, 2, 3)
    with pytest.raises(DataError, match=r"x\.png: 1 pixel\(s\) have colours outside the AVSS palette: \(1,2,3\)"):
        rgb_to_labels(bad, "x.png")


def _clip(rng, uid: str, label: str, split: str, gt: tuple[int, ...] | None = None, sr: int = 16000) -> Clip:
    T = 10 if label == "v2" else 5
    labels = rng.integers(0, 71, (T, H, W))
    labels[:, :8] = 0
    valid = np.ones(T, bool)
    if gt is not None:
        valid[:] = False
        valid[list(gt)] = True
        labels[~valid] = 0
    return Clip(
        uid,
        rng.integers(0, 256, (T, H, W, 3), dtype=np.uint8),
        (0.5 * rng.uniform(-1, 1, (1, sr))).astype(np.float32),
        sr,
        masks=labels > 0,
        mask_valid=valid,
        labels=labels,
        category="man_piano",
        split=split,
        meta={"label": label, "vid": f"yt{uid}", "s_min": 1, "s_sec": 20},
    )


@pytest.fixture
def clips(rng):
    return [
        _clip(rng, "uid_s", "v1s", "test"),
        _clip(rng, "uid_m", "v1m", "test"),
        _clip(rng, "uid_2", "v2", "test"),
        _clip(rng, "uid_t", "v1s", "train", gt=(0,)),
        _clip(rng, "uid_v", "v2", "val"),
    ]


def _assert_same(got: Clip, want: Clip, frame_tol: int) -> None:
    assert (got.name, got.split, got.category) == (want.name, want.split, want.category)
    assert got.meta == {**want.meta, "a_obj": want.category}
    assert np.abs(got.frames.astype(int) - want.frames).max() <= frame_tol
    np.testing.assert_array_equal(got.labels, want.labels)
    np.testing.assert_array_equal(got.masks, want.labels > 0)
    np.testing.assert_array_equal(got.mask_valid, want.mask_valid)
    assert got.sample_rate == 16000 and got.audio.shape == want.audio.shape
    assert np.abs(got.audio - want.audio).max() <= PCM16_TOL


@pytest.mark.parametrize("fmt,tol", [("jpg", 8), ("png", 0)])
def test_round_trip(tmp_path, clips, fmt, tol):
    root = write_avss(tmp_path / "avss", clips, frame_format=fmt)
    test = AVSSDataset(root)
    assert test.names == ["uid_s", "uid_m", "uid_2"]
    for got, want in zip(test, clips[:3], strict=True):
        _assert_same(got, want, tol)
    assert test[2].num_frames == 10 and test[0].num_frames == 5
    (t,) = AVSSDataset(root, split="train")
    _assert_same(t, clips[3], tol)
    assert t.mask_valid.tolist() == [True, False, False, False, False]
    assert AVSSDataset(root, split="val", label="v2").names == ["uid_v"]
    assert AVSSDataset(root, label=["v1s", "v1m"]).names == ["uid_s", "uid_m"]
    assert len(AVSSDataset(root, split="val", label="v1m")) == 0


def test_exact_layout(tmp_path, clips):
    root = write_avss(tmp_path, clips)
    rows = list(csv.DictReader((root / "metadata.csv").read_text().splitlines()))
    assert list(rows[0]) == ["vid", "uid", "s_min", "s_sec", "a_obj", "split", "label"]
    assert rows[0] == {"vid": "ytuid_s", "uid": "uid_s", "s_min": "1", "s_sec": "20", "a_obj": "man_piano",
                       "split": "test", "label": "v1s"}  # fmt: skip
    d = root / "v2" / "uid_2"
    assert sorted(p.name for p in (d / "frames").iterdir()) == sorted(f"{i}.jpg" for i in range(10))
    assert sorted(p.name for p in (d / "labels_rgb").iterdir()) == sorted(f"{i}.png" for i in range(10))
    assert (d / "audio.wav").is_file()
    assert [p.name for p in (root / "v1s/uid_t/labels_rgb").iterdir()] == ["0.png"]
    assert list(json.loads((root / "label2idx.json").read_text())) == list(AVSS_CLASSES)
    with Image.open(d / "labels_rgb/3.png") as im:
        assert im.mode == "RGB"


def test_writer_validation(tmp_path, rng):
    c = _clip(rng, "u", "v2", "test")
    c.meta["label"] = "v3"
    with pytest.raises(DataError, match="meta\\['label'\\]"):
        write_avss(tmp_path / "a", [c])
    c = _clip(rng, "u", "v1m", "test")
    c.labels = None
    with pytest.raises(DataError, match="no semantic labels"):
        write_avss(tmp_path / "a", [c])
    short = _clip(rng, "u", "v1m", "test")
    short.meta["label"] = "v2"
    with pytest.raises(DataError, match="has 5 frames, AVSS v2 clips have 10"):
        write_avss(tmp_path / "a", [short])
    assert not (tmp_path / "a").exists()


def test_reads_hand_built_original_layout(tmp_path, rng):
    """Mimics the released avs_released/ folder: extra CSV columns, JPEG frames, palette label images."""
    root = tmp_path / "avs_released"
    root.mkdir()
    (root / "metadata.csv").write_text(
        "vid,uid,s_min,s_sec,a_obj,split,label\n"
        "--4H9nvqFqo,--4H9nvqFqo_30000,0,30,car,test,v1m\n"
        "-0IxB-Ru6gA,-0IxB-Ru6gA_0,0,0,man_guitar,train,v2\n"
    )
    (root / "label2idx.json").write_text(json.dumps({n: i + 1 for i, n in enumerate(AVSS_CLASSES)}))
    pal = avss_palette()
    want = {}
    for uid, label, T in (("--4H9nvqFqo_30000", "v1m", 5), ("-0IxB-Ru6gA_0", "v2", 10)):
        d = root / label / uid
        (d / "frames").mkdir(parents=True)
        (d / "labels_rgb").mkdir()
        lab = rng.integers(0, 71, (T, 20, 30))
        for i in range(T):
            Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(d / "frames" / f"{i}.jpg")
            # the release stores colour PNGs; write one as a palette ('P') image to check that path too
            im = Image.fromarray(pal[lab[i]])
            if i == 1:
                im = im.quantize(palette=_p_image(pal), dither=Image.Dither.NONE)
            im.save(d / "labels_rgb" / f"{i}.png")
        sf.write(d / "audio.wav", rng.uniform(-0.5, 0.5, 16000 * T), 16000)
        want[uid] = lab
    c = AVSSDataset(root)[0]
    assert c.name == "--4H9nvqFqo_30000" and c.category == "car"
    assert c.meta == {"label": "v1m", "vid": "--4H9nvqFqo", "s_min": 0, "s_sec": 30, "a_obj": "car"}
    assert c.frames.shape == (5, 20, 30, 3) and c.audio.shape == (1, 80000)
    np.testing.assert_array_equal(c.labels, want[c.name])
    t = AVSSDataset(root, split="train", label="v2")[0]
    assert t.num_frames == 10 and t.mask_valid.all()
    np.testing.assert_array_equal(t.labels, want[t.name])


def _p_image(pal: np.ndarray) -> Image.Image:
    p = Image.new("P", (1, 1))
    p.putpalette(pal.flatten().tolist() + [0] * (256 - len(pal)) * 3)
    return p


# ---------------------------------------------------------------------------------------------- bad input
def _truncate(p: Path) -> None:
    size = p.stat().st_size
    with p.open("r+b") as f:
        f.truncate(size // 2)


def _raises(path: Path, fn, what: str = "") -> None:
    with pytest.raises(DataError) as ei:
        fn()
    msg = str(ei.value)
    assert "\n" not in msg and str(path) in msg, msg
    if what:
        assert re.search(what, msg), msg


@pytest.fixture
def root(tmp_path, rng):
    return write_avss(tmp_path / "avss", [_clip(rng, "u1", "v1m", "test"), _clip(rng, "u2", "v2", "test")])


def test_bad_root_csv_split_label(tmp_path, root):
    _raises(tmp_path / "nope", lambda: AVSSDataset(tmp_path / "nope"), "not found")
    empty = tmp_path / "empty"
    empty.mkdir()
    _raises(empty / "metadata.csv", lambda: AVSSDataset(empty), "CSV file not found")
    _raises(root, lambda: AVSSDataset(root, split="dev"), "unknown split 'dev'")
    _raises(root, lambda: AVSSDataset(root, label="v3"), "unknown AVSS label")
    (root / "label2idx.json").write_text(json.dumps({"background": 1, "dog": 2}))
    _raises(root / "label2idx.json", lambda: AVSSDataset(root), "class list differs")
    (root / "label2idx.json").unlink()
    csv_path = root / "metadata.csv"
    csv_path.write_text("vid,uid,a_obj,split\nx,u1,car,test\n")
    _raises(csv_path, lambda: AVSSDataset(root), "missing column.*label")


@pytest.mark.parametrize("kind", ["frame", "labels", "audio"])
def test_missing_or_truncated_files(root, kind):
    ds = AVSSDataset(root)
    d = ds.clip_dir(1)
    p = {"frame": d / "frames" / "9.jpg", "labels": d / "labels_rgb" / "4.png", "audio": d / "audio.wav"}[kind]
    ds[1]
    data = p.read_bytes()
    _truncate(p)
    _raises(p, lambda: ds[1], "truncated|cannot decode")
    p.unlink()
    _raises(p, lambda: ds[1], "not found")
    p.write_bytes(data)
    ds[1]


def test_missing_clip_folder(root):
    ds = AVSSDataset(root)
    d = ds.clip_dir(0)
    d.rename(d.with_name("moved"))
    _raises(d, lambda: ds[0], "clip folder not found")


def test_unknown_colour_and_size_mismatch(root, rng):
    ds = AVSSDataset(root)
    p = ds.clip_dir(0) / "labels_rgb" / "2.png"
    rgb = labels_to_rgb(np.zeros((H, W), np.int64))
    rgb[3, 4] = (7, 7, 7)
    Image.fromarray(rgb).save(p)
    _raises(p, lambda: ds[0], r"outside the AVSS palette: \(7,7,7\)")
    Image.fromarray(labels_to_rgb(np.zeros((H, W + 4), np.int64))).save(p)
    _raises(p, lambda: ds[0], r"32x36 \(HxW\), expected 32x32")
