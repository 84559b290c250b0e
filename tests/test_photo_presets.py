"""The real-photo presets (s4real, ms3real): assets split by asset, composites with exact ground truth, per-object
audio, and the AVSBench round trip the trainers read."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from soundmask.synth import photos
from soundmask.synth.config import SPLITS, SynthConfig

if not photos.TUXPAINT_ROOT.is_dir() or not photos.MATE_ROOT.is_dir():
    pytest.skip(
        "needs tuxpaint-stamps-default and mate-backgrounds (./install.sh installs them)", allow_module_level=True
    )

from soundmask.data.avsbench import AVSBenchDataset, write_avsbench  # noqa: E402
from soundmask.errors import DataError  # noqa: E402
from soundmask.synth.generator import generate_dataset  # noqa: E402
from soundmask.synth.photos import PhotoScene, generate_photo_clip, photo_assets  # noqa: E402
from soundmask.synth.sounds import TUXPAINT_LICENCE  # noqa: E402

S4 = SynthConfig(preset="s4real")
MS3 = SynthConfig(preset="ms3real")
SEEDS = (0, 3, 17, 18)  # train, test, val, val (split_of)


def _sounding(scene: PhotoScene) -> list[int]:
    return [o["id"] for o in scene.objects if o["sounding"]]


def test_asset_splits_are_disjoint_and_each_has_everything() -> None:
    every = photo_assets()
    per = {s: photo_assets(s) for s in SPLITS}
    for s, a in per.items():
        c = a.counts()
        assert c["sounding"] >= 5 and c["silent"] >= 5 and c["backgrounds"] >= 1, (s, c)
        assert all(x.split == s for x in a.stamps + a.backgrounds)
        assert {b.asset.split(":")[0] for b in a.backgrounds} == {"skimage", "mate-backgrounds"}, s
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1 :]:
            assert not per[a].names() & per[b].names(), (a, b)
            assert not {x.group for x in per[a].stamps} & {x.group for x in per[b].stamps}, (a, b)
    assert set().union(*(a.names() for a in per.values())) == every.names()
    # near-duplicates and identical recordings stay together
    by_rel = {x.rel: x for x in every.stamps}
    assert by_rel["animals/amphibians/frog.png"].split == by_rel["animals/amphibians/frog-1.png"].split
    assert by_rel["animals/mammals/badger.png"].group == by_rel["animals/mammals/rodents/beaver.png"].group
    # clip-art and silent recordings are left out
    assert not any(r.startswith(("symbols/", "town/roadsigns/")) or "/cartoon/" in r for r in by_rel)
    assert "animals/mammals/giraffe.png" in by_rel and by_rel["animals/mammals/giraffe.png"].recording is None
    assert photos.stamp_category("firetruck") == "firetruck" and photos.stamp_category("cow_white") == "cow"


def test_s4real_round_trip(tmp_path: Path) -> None:
    scenes = {s: generate_photo_clip(S4, s) for s in SEEDS}
    assert {sc.split for sc in scenes.values()} == set(SPLITS)
    root = write_avsbench(tmp_path / "s4real", (sc.clip for sc in scenes.values()), "s4")
    read = {c.name: c for sp in SPLITS for c in AVSBenchDataset(root, "s4", sp)}
    assert len(read) == len(SEEDS)
    for sc in scenes.values():
        c, r = sc.clip, read[sc.clip.name]
        ids = sorted(c.instance_categories)
        sounding = _sounding(sc)
        assert len(sounding) == 1 and 2 <= len(ids) <= 3
        assert r.frames.shape == (5, 224, 224, 3) and np.array_equal(r.frames, c.frames)
        assert r.instances is not None and np.array_equal(r.instances, c.instances)
        assert r.instance_categories == c.instance_categories
        assert r.category == c.instance_categories[sounding[0]]
        union = np.isin(r.instances, sounding)
        assert r.mask_valid is not None and r.masks is not None
        assert np.array_equal(r.masks[r.mask_valid], union[r.mask_valid]) and union[0].any()
        # every visible object with a recording has its own audio; the sounding one's is the clip's audio
        with_rec = [o["id"] for o in sc.objects if o["recording"]]
        assert sounding[0] in with_rec and sorted(r.object_audio) == sorted(with_rec)
        assert np.array_equal(c.object_audio[sounding[0]], c.audio)
        assert np.array_equal(r.object_audio[sounding[0]], r.audio)
        assert r.sample_rate == 16000 and r.audio.shape == (1, 80000)
        windows = np.sqrt(np.mean(r.audio.reshape(5, -1).astype(np.float64) ** 2, axis=1))
        assert (windows > 1e-3).all()  # every 1-s window has sound
        assert set(sc.assets) <= photo_assets(sc.split).names()  # only assets of the clip's own split


def test_generate_dataset_writes_the_clips_and_their_licences(tmp_path: Path) -> None:
    root = generate_dataset(S4, tmp_path, count=2, seed=17)
    scenes = [generate_photo_clip(S4, s) for s in (17, 18)]
    back = {c.name: c for c in AVSBenchDataset(root, "s4", "val")}
    for sc in scenes:  # the same clip as in memory: generation is a function of preset + seed
        assert np.array_equal(back[sc.clip.name].frames, sc.clip.frames)
    with (root / "s4_licenses.csv").open() as f:
        rows = {r["asset"]: r for r in csv.DictReader(f)}
    assert set(rows) == set().union(*(sc.assets for sc in scenes))
    assert all(r["licence"] and r["attribution"] and int(r["clips"]) >= 1 for r in rows.values())
    assert any(r["licence"] == TUXPAINT_LICENCE for r in rows.values())


def test_photo_clips_are_deterministic() -> None:
    a, b = generate_photo_clip(S4, 3), generate_photo_clip(S4, 3)
    assert np.array_equal(a.clip.frames, b.clip.frames) and np.array_equal(a.clip.audio, b.clip.audio)
    assert np.array_equal(a.clip.instances, b.clip.instances) and a.objects == b.objects
    c = generate_photo_clip(S4, 4)
    assert not np.array_equal(a.clip.frames, c.clip.frames)


def test_ms3real_has_two_or_three_sounding_objects(tmp_path: Path) -> None:
    scenes = [generate_photo_clip(MS3, s) for s in range(4)]
    for sc in scenes:
        c, sounding = sc.clip, _sounding(sc)
        assert 2 <= len(sounding) <= 3 and 3 <= len(sc.objects) <= 4 and len(sc.objects) > len(sounding)
        assert len({c.instance_categories[i] for i in sounding}) == len(sounding)
        silent_cats = {o["category"] for o in sc.objects if not o["sounding"]}
        assert not silent_cats & {c.instance_categories[i] for i in sounding}
        mix = np.zeros_like(c.audio)
        for i in sorted(sounding):
            mix += c.object_audio[i]
        assert np.array_equal(mix, c.audio) and np.abs(c.audio).max() <= 0.9 + 1e-6
        assert c.masks is not None and np.array_equal(c.masks[0], np.isin(c.instances[0], sounding))
        for i in sounding:  # sounding objects stay at least half visible
            assert next(o for o in sc.objects if o["id"] == i)["visible_fraction"] >= 0.5
    write_avsbench(tmp_path, (sc.clip for sc in scenes[:2]), "ms3")
    back = {c.name: c for sp in SPLITS for c in AVSBenchDataset(tmp_path, "ms3", sp)}
    for sc in scenes[:2]:
        r = back[sc.clip.name]
        assert sorted(r.object_audio) == sorted(sc.clip.object_audio)
        assert r.masks is not None and np.array_equal(r.masks, sc.clip.masks)


def test_missing_assets_are_one_line_errors(tmp_path: Path, monkeypatch, capsys) -> None:
    with pytest.raises(DataError, match="tuxpaint-stamps-default"):
        photo_assets(stamps_root=tmp_path / "none")
    with pytest.raises(DataError, match="mate-backgrounds"):
        photo_assets(backgrounds_root=tmp_path / "none")
    from soundmask import cli

    monkeypatch.setattr(photos, "MATE_ROOT", tmp_path / "no-mate")
    monkeypatch.setattr(sys, "argv", ["soundmask", "synth", "--preset", "ms3real", "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit) as e:
        cli.main()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no-mate" in err and "install mate-backgrounds" in err
