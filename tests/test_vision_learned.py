"""The learned proposal source: targets ↔ grouping round trip, shipped weights on generator images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soundmask.errors import ConfigError
from soundmask.vision.proposals import get_proposer, select_top
from soundmask.vision.proposals.learned import group_instances, instance_targets
from soundmask.vision.types import Proposals, mask_boxes


def _toy_ids() -> np.ndarray:
    ids = np.zeros((112, 112), np.uint16)
    ids[10:40, 10:50] = 1
    ids[60:100, 20:35] = 2
    ids[50:90, 60:105] = 3
    return ids


def test_targets_then_grouping_recovers_the_instances():
    ids = _toy_ids()
    fg, heat, off, wgt = instance_targets(ids, size=112, sigma=3.0)
    assert fg.sum() == (ids > 0).sum() and wgt.sum() == fg.sum()
    assert heat.max() == pytest.approx(1.0, abs=0.05)
    logit = lambda p: torch.logit(torch.from_numpy(p).clamp(1e-4, 1 - 1e-4))  # noqa: E731
    props = group_instances(logit(fg), logit(heat), torch.from_numpy(off), center_threshold=0.5)
    assert len(props) == 3
    for k in (1, 2, 3):
        m = ids == k
        best = max(np.logical_and(p, m).sum() / np.logical_or(p, m).sum() for p in props.masks)
        assert best > 0.99


def test_select_top_applies_nms_then_top_n():
    masks = np.zeros((3, 20, 20), bool)
    masks[0, :10, :10] = masks[1, :10, :9] = masks[2, 10:, 10:] = True
    p = Proposals(masks, np.array([0.9, 0.8, 0.5]), mask_boxes(masks))
    assert select_top(p, 5).scores.tolist() == pytest.approx([0.9, 0.5])  # mask 1 overlaps mask 0 (IoU 0.9)
    assert len(select_top(p, 1)) == 1


def test_shipped_weights_find_generator_objects():
    pytest.importorskip("moderngl")
    from soundmask.synth.config import SynthConfig
    from soundmask.synth.generator import generate_scene

    prop = get_proposer("learned", top_n=8)
    ious = []
    for seed in (3, 8, 26):  # test-split seeds
        sc = generate_scene(SynthConfig(preset="s4"), seed)
        p = prop.propose(sc.rgb[0])
        assert p.masks.shape[1:] == sc.rgb.shape[1:3] and len(p) <= 8
        for oid in {o for t in range(5) for o in sc.sounding_ids(t)}:
            m = sc.instances[0] == oid
            ious.append(max([np.logical_and(q, m).sum() / np.logical_or(q, m).sum() for q in p.masks] or [0]))
    assert np.mean(ious) > 0.6


def test_missing_weights_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        get_proposer("learned", weights=tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk")
    with pytest.raises(ConfigError, match="not a proposer checkpoint"):
        get_proposer("learned", weights=bad)


def test_proposer_stage_trains_on_generated_avsbench_instance_masks(tmp_path):
    """``soundmask train --method seac --stage proposer --data DIR``: DIR's instance masks are the targets."""
    pytest.importorskip("moderngl")
    from soundmask.avs2d.seac.train import ProposerStageConfig, avsbench_instance_images, train_proposer_stage
    from soundmask.errors import DataError
    from soundmask.synth.config import SynthConfig
    from soundmask.synth.generator import generate_dataset, generate_scene

    root = tmp_path / "s4"
    generate_dataset(SynthConfig(preset="s4", split="test"), root, count=3, seed=70)
    images, ids = avsbench_instance_images(root, "test")
    assert len(images) == 3  # static camera: one image per clip
    sc = generate_scene(SynthConfig(preset="s4", split="test"), 70)
    assert np.array_equal(images[0], sc.rgb[0]) and np.array_equal(ids[0], sc.instances[0])
    with pytest.raises(DataError, match="no train clip with instance masks"):
        avsbench_instance_images(root, "train")

    out = tmp_path / "prop.pt"
    log = train_proposer_stage(out, ProposerStageConfig(proposer_epochs=2, split="test"), data=[root])
    assert log["images"] == 3 and len(log["loss"]) == 2
    p = get_proposer("learned", weights=out, top_n=4).propose(images[0])
    assert len(p) <= 4 and p.masks.shape[1:] == images[0].shape[:2]
    tuned = train_proposer_stage(
        tmp_path / "tuned.pt", ProposerStageConfig(proposer_epochs=1, split="test", proposer_init=str(out)), data=root
    )
    assert tuned["config"]["init"] == str(out)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="neither"):
        train_proposer_stage(tmp_path / "x.pt", ProposerStageConfig(), data=tmp_path / "empty")


def test_batch_targets_from_target_grid_ids_equal_full_resolution_targets():
    """Training keeps only the ids on the target grid and makes targets per batch: they must equal the targets
    of the full-resolution instance image (including its mirror image)."""
    from soundmask.vision.proposals.learned import _batch_targets, target_ids

    big = np.kron(_toy_ids(), np.ones((2, 2), np.uint16))  # 224² → sampled back to the 112² grid
    for im in (big, big[:, ::-1]):
        full = np.concatenate([a if a.ndim == 3 else a[None] for a in instance_targets(im, sigma=3.0)])
        small = torch.from_numpy(target_ids(im).astype(np.int32))[None]
        np.testing.assert_array_equal(_batch_targets(small, 3.0)[0].numpy(), full)
