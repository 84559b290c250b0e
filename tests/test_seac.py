"""SeAC end to end: shipped weights, training (loss goes down), evaluate/segment/train commands, audio gating."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from soundmask.avs2d import get_method, load_segmenter
from soundmask.avs2d.base import frame_windows
from soundmask.cli import app
from soundmask.data.avsbench import AVSBenchDataset
from soundmask.errors import ConfigError

pytest.importorskip("moderngl")
runner = CliRunner()


@pytest.fixture(scope="module")
def s4(tmp_path_factory) -> Path:
    from soundmask.synth.config import SynthConfig
    from soundmask.synth.generator import generate_dataset

    root = tmp_path_factory.mktemp("s4") / "s4"
    generate_dataset(SynthConfig(preset="s4", split="test"), root, count=6, seed=40)
    return root


@pytest.fixture(scope="module")
def seac():
    return load_segmenter("seac")


def test_frame_windows_cover_the_audio():
    w = frame_windows(5, 80000, 16000)
    assert w[0] == (0, 16000) and w[-1] == (64000, 80000)
    w = frame_windows(3, 1000, 1000, frame_times=[0.0, 0.1, 0.5], window=0.2)
    assert w == [(0, 200), (100, 300), (500, 700)]


def test_predict_shapes_and_muted_audio_gives_empty_masks(s4, seac):
    clip = AVSBenchDataset(s4, split="test")[0]
    pred = seac.predict(clip.frames, clip.audio, clip.sample_rate, clip.frame_times)
    assert pred.masks.shape == clip.masks.shape and pred.masks.dtype == np.float32
    assert 0 <= pred.masks.min() and pred.masks.max() <= 1
    assert len(pred.objects) == len(clip.frames)
    muted = seac.predict(clip.frames, np.zeros_like(clip.audio), clip.sample_rate, clip.frame_times)
    assert not muted.binary().any() and not muted.active.any()


def test_semantic_masks_follow_eq5(s4, seac):
    clip = AVSBenchDataset(s4, split="test")[1]
    pred = seac.predict(clip.frames, clip.audio, clip.sample_rate, clip.frame_times, semantic=True)
    assert pred.semantic is not None and pred.semantic.shape == clip.masks.shape
    assert pred.semantic.max() <= len(pred.categories)
    # a pixel is labelled only where the (normalised) similarity map exceeds σ
    assert not (pred.semantic[pred.masks <= seac.config.sigma] > 0).any()


def test_bad_inputs_raise_one_line_errors(seac):
    from soundmask.errors import DataError

    frames = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(DataError, match="NaN"):
        seac.predict(frames, np.full((1, 16000), np.nan, np.float32), 16000)
    with pytest.raises(DataError, match="uint8"):
        seac.predict(frames.astype(np.float32), np.zeros((1, 16000), np.float32), 16000)
    with pytest.raises(DataError, match="frame times"):
        seac.predict(frames, np.zeros((1, 16000), np.float32), 16000, frame_times=[0.0])


def test_a_short_training_run_lowers_the_loss(s4, tmp_path):
    ckpt = tmp_path / "seac.pt"
    log = get_method("seac").train(s4, ckpt, split="test", epochs=8, batch_size=4, lr=1e-3, mix_max_prob=0.5)
    assert len(log["loss"]) == 8 and log["loss"][-1] < log["loss"][0]
    assert (tmp_path / "seac.pt.features.pt").is_file()
    again = get_method("seac").train(s4, ckpt, split="test", epochs=8, batch_size=4, lr=1e-3, mix_max_prob=0.5)
    assert again["loss"] == log["loss"]  # finished run: nothing retrained
    seg = load_segmenter("seac", ckpt)
    assert seg.config.top_n == 8
    # the ablation without mask context trains and loads too
    log0 = get_method("seac").train(
        s4, tmp_path / "m0.pt", split="test", epochs=3, batch_size=4, lr=1e-3, mask_layers=0
    )
    assert len(log0["loss"]) == 3
    assert load_segmenter("seac", tmp_path / "m0.pt").association.mask_encoder is None


def test_noise_negatives_and_the_calibrated_confidence_floor(s4, tmp_path):
    ckpt = tmp_path / "neg.pt"
    kw = dict(split="test", epochs=3, batch_size=4, lr=1e-3, mask_layers=0)
    log = get_method("seac").train(s4, ckpt, noise_negatives=0.5, confidence_quantile=0.2, **kw)
    assert len(log["loss"]) == 3 and all(np.isfinite(log["loss"]))
    again = get_method("seac").train(s4, ckpt, noise_negatives=0.5, confidence_quantile=0.2, **kw)
    assert again == log  # finished, calibrated run: nothing retrained
    one = get_method("seac").train(s4, tmp_path / "one.pt", frames_per_clip=1, **kw)
    assert one["samples"] == one["clips"] < log["samples"]  # one cached frame per clip
    with pytest.raises(ConfigError, match="confidence_quantile"):
        get_method("seac").train(s4, tmp_path / "bad.pt", confidence_quantile=1.0, **kw)
    seg = load_segmenter("seac", ckpt)
    assert seg.config.min_confidence == pytest.approx(log["min_confidence"]) and -1 < log["min_confidence"] < 1
    # the floor is the quantile of the held-out clips' frames (never trained on); below it nothing is predicted
    clips = AVSBenchDataset(s4, split="test")
    held = log["calibration_clips"]
    assert len(held) == 1 and log["clips"] == len(clips) - 1  # a tenth of 6 clips, at least one
    best, heard, held_best = [], [], []
    for i, clip in enumerate(clips):
        pred = seg.predict(clip.frames, clip.audio, clip.sample_rate)
        for t, o in enumerate(pred.objects):
            if pred.active[t] and len(o.confidence):
                best.append(float(o.confidence.max()))
                heard.append(bool(pred.masks[t].max() > 0.5))
                if i in held:
                    held_best.append(best[-1])
    best_a = np.array(best)
    assert np.array_equal(np.array(heard), best_a >= seg.config.min_confidence)
    assert seg.config.min_confidence == pytest.approx(np.quantile(held_best, 0.2), abs=0.02)
    plain = get_method("seac").train(s4, tmp_path / "plain.pt", **kw)
    assert "min_confidence" not in plain and load_segmenter("seac", tmp_path / "plain.pt").config.min_confidence == -1


def test_train_resumes_an_interrupted_run(s4, tmp_path):
    kw = dict(split="test", epochs=4, batch_size=4, lr=1e-3, mix_max_prob=0.5)
    full = get_method("seac").train(s4, tmp_path / "full.pt", **kw)

    class Stop(Exception):
        pass

    def stop_after_two(what, done, total):
        if what.startswith("epoch") and done == 2:
            raise Stop

    ckpt = tmp_path / "part.pt"
    with pytest.raises(Stop):
        get_method("seac").train(s4, ckpt, progress=stop_after_two, **kw)
    resumed = get_method("seac").train(s4, ckpt, **kw)
    assert np.allclose(resumed["loss"], full["loss"], rtol=1e-5)


def test_evaluate_command_writes_the_report(s4, tmp_path):
    out = tmp_path / "eval.json"
    r = runner.invoke(app, ["evaluate", "--method", "seac", "--data", str(s4), "--json", str(out)])
    assert r.exit_code == 0, r.output
    d = json.loads(out.read_text())
    for k in ("miou", "fscore", "batch_size", "pooled_j", "pooled_f", "per_category", "frames_per_second"):
        assert k in d
    assert 0 <= d["miou"] <= 1 and 0 <= d["pooled_j"] <= 1 and d["frames_per_second"] > 0
    assert d["batch_size"] == 1 and d["frames"] == 30


def test_segment_command_on_a_frame_folder(s4, tmp_path):
    ds = AVSBenchDataset(s4, split="test")
    src = ds.frame_paths(0)[0].parent
    wav = ds.audio_path(0)
    out = tmp_path / "seg"
    r = runner.invoke(app, ["segment", "--frames", str(src), "--audio", str(wav), "--out", str(out)])
    assert r.exit_code == 0, r.output
    pngs = sorted((out / "masks").glob("*.png"))
    assert [p.stem for p in pngs] == sorted(p.stem for p in ds.frame_paths(0))
    from PIL import Image

    assert set(np.unique(np.asarray(Image.open(pngs[0])))) <= {0, 255}
    assert (out / "overlay.mp4").stat().st_size > 0


def test_command_errors_exit_2(tmp_path):
    from soundmask.cli import main

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    for args in (
        ["evaluate", "--data", str(tmp_path / "missing")],
        ["segment", "--frames", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")],
        ["train", "--data", str(tmp_path), "--out", str(tmp_path / "x.pt"), "--set", "nope=1"],
    ):
        with pytest.raises(SystemExit) as e:
            import sys

            old = sys.argv
            sys.argv = ["soundmask", *args]
            try:
                main()
            finally:
                sys.argv = old
        assert e.value.code == 2, args
    with pytest.raises(ConfigError, match="not a SeAC checkpoint|cannot read"):
        load_segmenter("seac", bad)
    assert not (tmp_path / "o").exists()


def test_segment_command_on_a_video_with_its_sound(s4, tmp_path):
    import av

    clip = AVSBenchDataset(s4, split="test")[2]
    video = tmp_path / "clip.mkv"
    with av.open(str(video), "w", format="matroska") as c:
        vs = c.add_stream("mpeg4", rate=1, options={"qscale": "2"})
        vs.width, vs.height, vs.pix_fmt = 224, 224, "yuv420p"
        aus = c.add_stream("pcm_s16le", rate=clip.sample_rate, layout="mono")
        for f in clip.frames:
            c.mux(vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.mux(vs.encode(None))
        x = np.round(np.clip(clip.audio.mean(0), -1, 1) * 32767).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(x, format="s16", layout="mono")
        frame.sample_rate = clip.sample_rate
        c.mux(aus.encode(frame))
        c.mux(aus.encode(None))
    out = tmp_path / "seg"
    r = runner.invoke(app, ["segment", "--frames", str(video), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert len(list((out / "masks").glob("*.png"))) == 5
    assert (out / "overlay.mp4").is_file()


def test_max_clips_draws_a_seeded_subset_of_every_folder():
    from soundmask.avs2d.seac.train import _Concat, _subset

    both = _Concat([[f"a{i}" for i in range(50)], [f"b{i}" for i in range(50)]])
    sub = _subset(both, 20)
    names = [sub[i] for i in range(len(sub))]
    assert len(names) == 20 == len(set(names))
    assert any(n.startswith("a") for n in names) and any(n.startswith("b") for n in names)
    assert names == [_subset(both, 20)[i] for i in range(20)]  # seeded: the same clips every run
    assert _subset(both, 0) is both and _subset(both, 100) is both


def test_the_listening_seac_checkpoint_loads_and_predicts(s4, seac):
    """``weights/seac_listen.pt``: the association retrained with noise negatives on generated and real-photo
    clips, its confidence floor calibrated on held-out training clips."""
    import torch

    path = Path(seac.default_checkpoint()).with_name("seac_listen.pt")
    ck = torch.load(path, weights_only=False)
    cfg, log = ck["train_config"], ck["train_log"]
    assert cfg["noise_negatives"] > 0 and cfg["confidence_quantile"] > 0 and len(log["calibration_clips"]) > 0
    seg = load_segmenter("seac", path)
    assert seg.config.min_confidence == pytest.approx(log["min_confidence"]) and -1 < seg.config.min_confidence < 1
    clip = AVSBenchDataset(s4, split="test")[0]
    pred = seg.predict(clip.frames, clip.audio, clip.sample_rate)
    assert pred.masks.shape == clip.masks.shape and np.isfinite(pred.masks).all()
    assert not seg.predict(clip.frames, np.zeros_like(clip.audio), clip.sample_rate).binary().any()
