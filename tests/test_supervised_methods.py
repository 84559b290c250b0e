"""AVSC and SDAVS end to end: shipped weights, short training runs (loss goes down, resume), the shared
train / evaluate / segment commands, audio gating and the feature cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from soundmask.avs2d import get_method, load_segmenter
from soundmask.avs2d.features import build_training_features
from soundmask.cli import app
from soundmask.data.avsbench import AVSBenchDataset
from soundmask.errors import ConfigError

from _training import StopTraining, stop_after_epochs

pytest.importorskip("moderngl")
runner = CliRunner()
METHODS = ("avsc", "sdavs")
TINY = {
    "avsc": ["epochs=30", "audio_epochs=6", "lr=3e-3", "queries=4", "layers=1", "batch_size=5", "noobj_threshold=1.0"],
    "sdavs": ["epochs=6", "lr=2e-3", "width=16", "batch_size=2"],
}


@pytest.fixture(scope="module")
def s4(tmp_path_factory) -> Path:
    from soundmask.synth.config import SynthConfig
    from soundmask.synth.generator import generate_dataset

    root = tmp_path_factory.mktemp("s4sup") / "s4"
    generate_dataset(SynthConfig(preset="s4", split="test"), root, count=5, seed=60)
    return root


@pytest.fixture(scope="module")
def s4_few(tmp_path_factory) -> Path:
    """S4 clips from three categories, every object framed: silent objects of categories other clips sound."""
    from soundmask.synth.config import SynthConfig
    from soundmask.synth.generator import generate_dataset

    root = tmp_path_factory.mktemp("s4few") / "s4"
    generate_dataset(
        SynthConfig(
            preset="s4", split="test", categories="dog,piano,guitar", framing="all", min_objects=2, max_objects=3
        ),
        root,
        count=6,
        seed=80,
    )
    return root


@pytest.mark.parametrize("method", METHODS)
def test_shipped_default_predicts_and_muted_audio_is_empty(s4, method):
    seg = load_segmenter(method)
    clip = AVSBenchDataset(s4, split="test")[0]
    pred = seg.predict(clip.frames, clip.audio, clip.sample_rate, clip.frame_times)
    assert pred.masks.shape == clip.masks.shape and pred.masks.dtype == np.float32
    assert 0 <= pred.masks.min() and pred.masks.max() <= 1 and pred.active.any()
    muted = seg.predict(clip.frames, np.zeros_like(clip.audio), clip.sample_rate, clip.frame_times)
    assert not muted.binary().any() and not muted.active.any()


def test_avsc_objects_carry_categories(s4):
    seg = load_segmenter("avsc")
    clip = AVSBenchDataset(s4, split="test")[1]
    pred = seg.predict(clip.frames, clip.audio, clip.sample_rate, clip.frame_times)
    objs = pred.objects[0]
    assert len(objs.labels) == len(objs.masks) == len(objs.scores)
    assert set(objs.labels) <= set(seg.categories)
    # Eq. 1: the sound mask is Σ p_c · m_c, clamped to [0, 1]
    if len(objs.masks):
        s = np.clip((objs.scores[:, None, None] * objs.masks).sum(0), 0, 1)
        assert np.allclose(pred.masks[0], s, atol=1e-5) or not pred.active[0]


@pytest.mark.parametrize("method", METHODS)
def test_cli_train_evaluate_segment(s4, tmp_path, method):
    ckpt = tmp_path / f"{method}.pt"
    args = [
        "train",
        "--method",
        method,
        "--data",
        str(s4),
        "--out",
        str(ckpt),
        "--set",
        "split=test",
        "--set",
        "val_split=",
        "--set",
        f"cache_dir={tmp_path / 'cache'}",
    ]
    for kv in TINY[method]:
        args += ["--set", kv]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    ck = torch.load(ckpt, weights_only=True)
    for name, phase in ck["phases"].items():
        loss = phase["log"]["loss"]
        assert len(loss) == (30 if name == "objects" else 6) and loss[-1] < loss[0], (name, loss)
        assert phase["train_state"] is None
    assert list((tmp_path / "cache").glob("features-test-*.pt"))
    # a finished run is not retrained: the checkpoint is not rewritten
    stamp = ckpt.stat().st_mtime_ns
    r = runner.invoke(app, args)
    assert r.exit_code == 0 and ckpt.stat().st_mtime_ns == stamp
    out = tmp_path / "ev.json"
    r = runner.invoke(
        app, ["evaluate", "--method", method, "--checkpoint", str(ckpt), "--data", str(s4), "--json", str(out)]
    )
    assert r.exit_code == 0, r.output
    rep = json.loads(out.read_text())
    for k in ("miou", "fscore", "batch_size", "pooled_j", "pooled_f", "per_category", "frames_per_second"):
        assert k in rep
    assert 0 <= rep["pooled_j"] <= 1
    frames = s4 / "s4_data" / "visual_frames" / "test"
    clip_dir = next(p for p in frames.rglob("*") if p.is_dir() and list(p.glob("*.png")))
    wav = next((s4 / "s4_data" / "audio_wav" / "test").rglob(f"{clip_dir.name}.wav"))
    seg_out = tmp_path / "seg"
    r = runner.invoke(
        app,
        [
            "segment",
            "--method",
            method,
            "--checkpoint",
            str(ckpt),
            "--frames",
            str(clip_dir),
            "--audio",
            str(wav),
            "--out",
            str(seg_out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert len(list((seg_out / "masks").glob("*.png"))) == 5 and (seg_out / "overlay.mp4").is_file()


def test_sdavs_resume_continues_to_the_same_losses(s4, tmp_path):
    cls = get_method("sdavs")
    opts = dict(
        split="test", val_split="", epochs=4, lr=2e-3, width=16, batch_size=2, cache_dir=str(tmp_path / "cache")
    )
    full = cls.train(s4, tmp_path / "full.pt", **opts)["net"]["loss"]

    with pytest.raises(StopTraining):
        cls.train(s4, tmp_path / "part.pt", progress=stop_after_epochs(2), **opts)
    resumed = cls.train(s4, tmp_path / "part.pt", **opts)["net"]["loss"]
    assert resumed == pytest.approx(full, rel=1e-5)


def test_feature_cache_is_reused_and_keyed(s4, tmp_path):
    ext = {"audio": "yamnet", "audio_path": None, "min_active": 0.6}
    a = build_training_features([s4], "test", ext, tmp_path)
    files = list(tmp_path.glob("*.pt"))
    b = build_training_features([s4], "test", ext, tmp_path)
    assert len(files) == 1 and b.key == a.key and (b.masks == a.masks).all()
    assert a.masks.shape[1:] == (112, 112) and a.valid.all() and len(a.categories) >= 1
    build_training_features([s4], "test", {**ext, "min_active": 0.5}, tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 2


def test_features_carry_every_objects_instance_and_avsc_targets_them(s4, tmp_path):
    from soundmask.avs2d.avsc.segmenter import _segments

    ext = {"audio": "yamnet", "audio_path": None, "min_active": 0.6}
    f = build_training_features([s4], "test", ext, tmp_path)
    ds = AVSBenchDataset(s4, split="test")
    silent_seen = 0
    for r in range(len(f.clip)):
        masks, cats = f.row_instances(r)
        assert len(masks) == len(cats) and (cats >= 0).all()
        union = masks.any(0) if len(masks) else torch.zeros_like(f.masks[r])
        # the sound mask is the union of the sounding instances: (almost) all of it lies on some instance
        assert (f.masks[r] & ~union).sum() <= 0.02 * max(1, int(f.masks[r].sum()))
        clip = ds[int(f.clip[r])]
        assert f.categories.index(clip.category) in cats.tolist()  # S4: the sounding object is one of them
        silent_seen += len(cats) - 1
    assert silent_seen > 0  # the fixture shows silent objects too
    with_inst, sound_only = _segments(f, True), _segments(f, False)
    assert sum(len(c) for _, c in with_inst.values()) == len(f.clip) + silent_seen
    assert all(len(c) == int(f.masks[r].any()) for r, (_, c) in sound_only.items())  # S4: the sound mask
    # a minimum area above every object leaves only the sounding ones (a sounding object always stays)
    big_only = _segments(f, True, 1.0)
    assert all(len(c) == int(f.masks[r].any()) for r, (_, c) in big_only.items())


def test_counterfactual_audio_pairs_a_silent_object_with_its_categorys_sound(s4_few, tmp_path):
    from soundmask.avs2d.supervised import CounterfactualAudio

    f = build_training_features([s4_few], "test", {"audio": "yamnet", "audio_path": None, "min_active": 0.6}, tmp_path)
    cf = CounterfactualAudio(f)
    assert cf.available > 0
    g = torch.Generator().manual_seed(0)
    made = 0
    for c, rows in enumerate(cf.clips):
        assert int(f.category[rows[0]]) not in cf.silent[c]  # the sounding object is never a swap target
        win = rows[1:4]
        sw = cf.window(win, g)
        if sw is None:
            continue
        made += 1
        donor = [k for k, d in enumerate(cf.clips) if any(torch.equal(sw.audio[0], f.audio[r]) for r in d)]
        assert donor and donor[0] != c
        cat = int(f.category[cf.clips[donor[0]][0]])
        assert cat in cf.silent[c]
        for t, r in enumerate(win.tolist()):
            masks, cats = f.row_instances(r)
            want = masks[cats == cat].any(0) if (cats == cat).any() else torch.zeros_like(sw.target[t])
            assert torch.equal(sw.target[t], want) or not sw.target[t].any()  # empty where the donor is silent
            assert not (sw.target[t] & f.masks[r]).any() or not f.valid[r]  # off the originally sounding object
    assert made > 0
    assert cf.draw([rows for rows in cf.clips], 0.0, g) == [None] * len(cf.clips)


def test_negative_audio_is_noise_or_an_offscreen_sound_with_an_empty_target(s4_few, tmp_path):
    from soundmask.avs2d.supervised import CounterfactualAudio, SupervisedConfig, noise_features

    f = build_training_features([s4_few], "test", {"audio": "yamnet", "audio_path": None, "min_active": 0.6}, tmp_path)
    noise = noise_features(SupervisedConfig(), count=8)
    assert noise.shape == (8, f.audio.shape[1]) and torch.isfinite(noise).all()
    assert not any(torch.allclose(n, a) for n in noise for a in f.audio)
    g = torch.Generator().manual_seed(0)
    offscreen = [CounterfactualAudio(f).negative(rows[:2], g) for rows in CounterfactualAudio(f).clips]
    cf = CounterfactualAudio(f)
    for c, neg in enumerate(offscreen):
        if neg is None:  # every category of the data is visible in this clip
            assert all(k in cf.visible[c] for k in cf.donors)
            continue
        assert not neg.target.any()
        donor = next(k for k, d in enumerate(cf.clips) if any(torch.equal(neg.audio[0], f.audio[r]) for r in d))
        assert int(f.category[cf.clips[donor][0]]) not in cf.visible[c]  # its category is nowhere in this clip
    assert any(n is not None for n in offscreen)
    with_noise = CounterfactualAudio(f, noise)
    draws = with_noise.draw([rows[:2] for rows in with_noise.clips] * 8, 0.0, g, negative_prob=1.0)
    assert all(d is not None and not d.target.any() for d in draws)
    from_noise = [d for d in draws if d is not None and any(torch.equal(d.audio[0], n) for n in noise)]
    assert 0 < len(from_noise) < len(draws)  # both kinds of negative occur
    assert with_noise.draw([rows[:2] for rows in with_noise.clips], 0.0, g) == [None] * len(with_noise.clips)


def test_sdavs_trains_with_counterfactual_audio(s4_few, s4, tmp_path):
    with pytest.raises(ConfigError, match="swap_prob"):  # no clip of s4 has a usable silent object
        get_method("sdavs").train(
            s4,
            tmp_path / "no.pt",
            split="test",
            val_split="",
            epochs=1,
            swap_prob=0.5,
            cache_dir=str(tmp_path / "cache"),
        )
    log = get_method("sdavs").train(
        s4_few,
        tmp_path / "cf.pt",
        split="test",
        val_split="",
        epochs=3,
        lr=2e-3,
        width=16,
        batch_size=2,
        swap_prob=0.5,
        negative_prob=0.3,
        cache_dir=str(tmp_path / "cache"),
    )
    assert len(log["net"]["loss"]) == 3 and all(np.isfinite(log["net"]["loss"]))


def test_errors_are_one_line(s4, tmp_path):
    import subprocess
    import sys

    from soundmask.errors import SoundmaskError

    with pytest.raises(ConfigError, match="checkpoint not found"):
        load_segmenter("avsc", tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "soundmask.cli",
            "evaluate",
            "--method",
            "sdavs",
            "--checkpoint",
            str(tmp_path / "junk.pt"),
            "--data",
            str(s4),
            "--json",
            str(tmp_path / "x.json"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "cannot read the checkpoint" in r.stderr and "junk.pt" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.json").exists()
    r = runner.invoke(app, ["train", "--method", "avsc", "--out", str(tmp_path / "a.pt")])
    assert isinstance(r.exception, SoundmaskError) and "needs --data" in str(r.exception)
    r = runner.invoke(
        app, ["train", "--method", "sdavs", "--data", str(s4), "--out", str(tmp_path / "a.pt"), "--set", "epochs=0"]
    )
    assert isinstance(r.exception, ConfigError) and not (tmp_path / "a.pt").exists()


def test_a_clip_subset_is_cut_from_the_cached_full_set(s4, tmp_path):
    ext = {"audio": "yamnet", "audio_path": None, "min_active": 0.6}
    full = build_training_features([s4], "test", ext, tmp_path)
    sub = build_training_features([s4], "test", ext, tmp_path, max_clips=2)
    assert sub.num_clips == 2 and len(list(tmp_path.glob("*.pt"))) == 1  # nothing new extracted
    rows = [r for r in full.clip_rows()]
    picked = [
        k for k in range(full.num_clips) if any(torch.equal(full.audio[rows[k]], sub.audio[r]) for r in sub.clip_rows())
    ]
    assert len(picked) == 2
    for r_sub, k in zip(sub.clip_rows(), picked, strict=True):
        assert torch.equal(sub.masks[r_sub], full.masks[rows[k]])
        assert torch.equal(sub.frame_levels(r_sub)[2], full.frame_levels(rows[k])[2])


def test_the_listening_sdavs_checkpoint_loads_and_predicts(s4):
    from soundmask.avs2d.sdavs.segmenter import SDAVS

    path = SDAVS.default_checkpoint().with_name("sdavs_listen.pt")
    seg = load_segmenter("sdavs", path)
    listen, default = (torch.load(p, weights_only=True) for p in (path, SDAVS.default_checkpoint()))
    assert len(set(listen["categories"]) - set(default["categories"])) > 20  # + the real-photo categories
    assert listen["train_config"]["negative_prob"] > 0 and listen["train_config"]["swap_prob"] > 0
    clip = AVSBenchDataset(s4, split="test")[0]
    pred = seg.predict(clip.frames, clip.audio, clip.sample_rate)
    assert pred.masks.shape == clip.masks.shape and np.isfinite(pred.masks).all()
    assert not (seg.predict(clip.frames, np.zeros_like(clip.audio), clip.sample_rate).masks > 0.5).any()
