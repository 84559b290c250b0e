"""Low-level IO: typed errors naming the file, and atomic writes that never leave partial output."""

from __future__ import annotations

import numpy as np
import pytest

from soundmask.data import io
from soundmask.errors import DataError, SoundmaskError


def _truncate(path, fraction=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


def test_error_message_is_one_line_with_path_and_fix(tmp_path):
    e = DataError("bad\nthing  here", tmp_path / "x.png", "do\nthis")
    assert "\n" not in str(e)
    assert str(e) == f"{tmp_path / 'x.png'}: bad thing here (fix: do this)"
    assert isinstance(e, SoundmaskError) and isinstance(e, ValueError) and e.exit_code == 2


def test_image_round_trip_and_size_check(tmp_path, rng):
    img = rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)
    p = io.write_image(tmp_path / "a.png", img)
    np.testing.assert_array_equal(io.read_image(p, size=(12, 20)), img)
    with pytest.raises(DataError, match=r"a\.png: image is 12x20 \(HxW\), expected 20x12"):
        io.read_image(p, size=(20, 12))


def test_mask_round_trip_uses_0_255(tmp_path, rng):
    m = rng.random((9, 7)) > 0.5
    p = io.write_mask(tmp_path / "m.png", m)
    raw = io.read_image(p, mode="L")
    assert set(np.unique(raw)) <= {0, 255}
    np.testing.assert_array_equal(io.read_mask(p), m)


def test_uint16_label_image_round_trip(tmp_path, rng):
    lab = rng.integers(0, 70000, (5, 6)).astype(np.uint16)
    p = io.write_image(tmp_path / "ids.png", lab)
    np.testing.assert_array_equal(io.read_label_image(p), lab.astype(np.int64))


@pytest.mark.parametrize("reader", [io.read_image, io.read_mask, io.read_label_image])
def test_truncated_or_missing_image(tmp_path, rng, reader):
    p = io.write_image(tmp_path / "t.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    _truncate(p)
    with pytest.raises(DataError, match=r"t\.png: cannot decode image"):
        reader(p)
    with pytest.raises(DataError, match=r"nothere\.png: image not found|nothere\.png: label image not found"):
        reader(tmp_path / "nothere.png")


def test_audio_round_trip(tmp_path, rng):
    a = (rng.random((2, 1600)) - 0.5).astype(np.float32)
    p = io.write_audio(tmp_path / "s.wav", a, 16000)
    b, sr = io.read_audio(p, expect_sr=16000, channels=2)
    assert sr == 16000 and b.shape == (2, 1600)
    np.testing.assert_allclose(a, b, atol=1 / 32767)
    # flac keeps 1-D input as one channel
    p2 = io.write_audio(tmp_path / "m.flac", a[0], 8000)
    c, sr2 = io.read_audio(p2)
    assert sr2 == 8000 and c.shape == (1, 1600)


def test_audio_errors(tmp_path, rng):
    a = (rng.random((1, 4000)) - 0.5).astype(np.float32)
    p = io.write_audio(tmp_path / "mono.wav", a, 16000)
    with pytest.raises(
        DataError, match=r"mono\.wav: audio has 1 channel\(s\), expected stereo \(fix: provide stereo audio\)"
    ):
        io.read_audio(p, channels=2)
    with pytest.raises(DataError, match=r"sample rate is 16000 Hz, expected 44100 Hz \(fix: resample it to 44100 Hz\)"):
        io.read_audio(p, expect_sr=44100)
    nan = tmp_path / "nan.wav"
    import soundfile as sf

    sf.write(nan, np.array([0.0, np.nan, 0.1], dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(DataError, match="NaN"):
        io.read_audio(nan)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(DataError, match="no samples"):
        io.read_audio(empty)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x00\x01")
    with pytest.raises(DataError, match=r"garbage\.wav: cannot decode audio"):
        io.read_audio(garbage)
    with pytest.raises(ValueError):
        io.write_audio(tmp_path / "x.wav", np.array([np.nan], dtype=np.float32), 16000)
    assert not (tmp_path / "x.wav").exists()


def test_csv_missing_column_names_it(tmp_path):
    p = tmp_path / "meta.csv"
    p.write_text("name,category\na,dog\n")
    with pytest.raises(DataError, match=r"meta\.csv: missing column\(s\) split; found name, category"):
        io.read_csv(p, ["name", "category", "split"])
    assert io.read_csv(p, ["name"]) == [{"name": "a", "category": "dog"}]


def test_json_errors(tmp_path):
    p = tmp_path / "s.json"
    p.write_text("{not json")
    with pytest.raises(DataError, match=r"s\.json: invalid JSON"):
        io.read_json(p)
    io.write_json(p, {"a": np.arange(3), "b": np.float32(1.5)})
    assert io.read_json(p) == {"a": [0, 1, 2], "b": 1.5}


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_dir_replaces_whole_or_nothing(tmp_path):
    out = tmp_path / "ds"
    with io.atomic_dir(out) as d:
        (d / "a").write_text("1")
    assert (out / "a").read_text() == "1"
    with pytest.raises(RuntimeError):
        with io.atomic_dir(out) as d:
            (d / "b").write_text("2")
            raise RuntimeError("killed")
    assert sorted(p.name for p in out.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    with io.atomic_dir(out) as d:
        (d / "c").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == ["c"]
    with pytest.raises(DataError, match="already exists"):
        with io.atomic_dir(out, overwrite=False):
            pass


def test_require_file_and_dir(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        io.require_dir(tmp_path / "nope")
    with pytest.raises(DataError, match="is a folder, not a file"):
        io.require_file(tmp_path)
