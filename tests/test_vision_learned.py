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
