"""SAM / SAM-HQ proposals (``get_proposer("sam")``) with tiny random checkpoints the tests write themselves."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from soundmask.errors import ConfigError
from soundmask.vision.proposals import Proposals, ProposalSource, box_iou, get_proposer
from soundmask.vision.proposals.sam import SamProposer, point_grid

transformers = pytest.importorskip("transformers")

SIDE = 64  # the tiny model's input side (patch 16: a 4×4 image embedding, 16×16 low-resolution masks)
IOU_BIAS = [0.1, 0.3, 0.9, 0.6]  # the IoU head's outputs: single-mask token, then the three multimask tokens


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def _save_tiny(folder: Path, hq: bool = False) -> Path:
    prefix = "SamHQ" if hq else "Sam"
    cls = {
        k: getattr(transformers, prefix + k)
        for k in ("Config", "Model", "VisionConfig", "PromptEncoderConfig", "MaskDecoderConfig")
    }
    vision = cls["VisionConfig"](
        hidden_size=32,
        output_channels=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=SIDE,
        patch_size=16,
        window_size=2,
        global_attn_indexes=[1],
        num_pos_feats=8,
        mlp_dim=64,
        initializer_range=0.02,
    )  # default 1e-10: denormals, slow
    prompt = cls["PromptEncoderConfig"](hidden_size=16, image_size=SIDE, patch_size=16, mask_input_channels=4)
    decoder = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, mlp_dim=32, iou_head_hidden_dim=16)
    if hq:
        decoder["vit_dim"] = 32
    config = cls["Config"](
        vision_config=vision.to_dict(),
        prompt_encoder_config=prompt.to_dict(),
        mask_decoder_config=cls["MaskDecoderConfig"](**decoder).to_dict(),
    )
    torch.manual_seed(0)
    model = cls["Model"](config).eval()
    with torch.no_grad():  # a known predicted IoU per multimask output: the second of the three is the best
        head = model.mask_decoder.iou_prediction_head.proj_out
        head.weight.zero_()
        head.bias.copy_(torch.tensor(IOU_BIAS))
    model.save_pretrained(folder)
    image_processor = transformers.SamImageProcessor(
        size={"longest_edge": SIDE},
        pad_size={"height": SIDE, "width": SIDE},
        mask_size={"longest_edge": 16},
        mask_pad_size={"height": 16, "width": 16},
    )
    proc = getattr(transformers, prefix + "Processor", transformers.SamProcessor)
    proc(image_processor=image_processor).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def sam_folder(tmp_path_factory) -> Path:
    return _save_tiny(tmp_path_factory.mktemp("sam"))


class FixedBoxes(ProposalSource):
    """Three fixed boxes with confidences 0.9, 0.6, 0.3 (the last one overlapping the first)."""

    name = "fixed"
    boxes = np.array([[4, 6, 40, 30], [30, 20, 76, 46], [6, 8, 38, 28]], np.float32)

    def _propose(self, image):
        h, w = image.shape[:2]
        return Proposals(np.zeros((3, h, w), bool), [0.9, 0.6, 0.3], self.boxes, ("dog", "piano", "cat"), self.name)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)  # not square: resize + pad


def test_box_prompts(sam_folder, image):
    sam = get_proposer("sam", path=sam_folder, boxes_from=FixedBoxes(top_n=8, nms_iou=1.0), device="cpu")
    assert sam.boxes_from == "fixed" and sam.model_type == "sam"
    p = sam.propose(image)
    assert p.source == "sam" and p.masks.shape[1:] == (48, 80) and p.masks.dtype == bool and 1 <= len(p) <= 3
    assert p.masks.reshape(len(p), -1).any(axis=1).all()
    # best of the three multimask outputs by predicted IoU (0.9); score = box confidence × IoU
    np.testing.assert_allclose(p.extra["pred_iou"], 0.9, rtol=1e-5)
    by_name = dict(zip(p.names, p.scores, strict=True))
    for name, conf in (("dog", 0.9), ("piano", 0.6), ("cat", 0.3)):
        if name in by_name:
            assert by_name[name] == pytest.approx(conf * 0.9, rel=1e-5)
    assert p.names[0] == "dog" and np.all(np.diff(p.scores) <= 0)
    boxes_of = {tuple(b) for b in FixedBoxes.boxes.tolist()}
    assert all(tuple(b) in boxes_of for b in p.extra["prompt_boxes"].tolist())
    iou = box_iou(p.boxes, p.boxes)[np.triu_indices(len(p), 1)]
    assert np.all(iou <= 0.5)
    # the boxes are the masks' tight boxes
    for m, b in zip(p.masks, p.boxes, strict=True):
        ys, xs = np.nonzero(m)
        assert tuple(b) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    # deterministic, and the same as transformers' own pipeline (processor coordinates + post-processing)
    np.testing.assert_array_equal(sam.propose(image).masks, p.masks)
    enc = sam.processor(images=image, input_boxes=[FixedBoxes.boxes.tolist()], return_tensors="pt")
    with torch.no_grad():
        out = sam.model(pixel_values=enc["pixel_values"], input_boxes=enc["input_boxes"], multimask_output=True)
    ref = sam.processor.post_process_masks(out.pred_masks, enc["original_sizes"], enc["reshaped_input_sizes"])[0]
    best = out.iou_scores[0].argmax(dim=1)
    assert best.tolist() == [1, 1, 1]
    for m, prompt in zip(p.masks, p.extra["prompt_boxes"], strict=True):
        i = [tuple(b) for b in FixedBoxes.boxes.tolist()].index(tuple(prompt))
        np.testing.assert_array_equal(m, ref[i, best[i]].numpy())


def test_grid_prompts(sam_folder, image):
    pts = point_grid(4, 48, 80)
    assert pts.shape == (16, 2) and pts[0].tolist() == [10.0, 6.0] and pts[-1].tolist() == [70.0, 42.0]
    sam = SamProposer(path=sam_folder, boxes_from="grid", points_per_side=4, batch_size=5, top_n=3, device="cpu")
    p = sam.propose(image)
    assert 1 <= len(p) <= 3 and p.names == () and p.extra["boxes_from"] == "grid"
    np.testing.assert_allclose(p.scores, 0.9, rtol=1e-5)  # grid score: the predicted IoU
    assert {tuple(x) for x in p.extra["prompt_points"].tolist()} <= {tuple(x) for x in pts.tolist()}
    masks = p.masks
    sam.batch_size = 64  # all prompts in one mask-decoder call: the same masks
    np.testing.assert_array_equal(sam.propose(image).masks, masks)
    sam.points_per_side, sam.pred_iou_thresh = 2, 0.95
    assert len(sam.propose(image)) == 0  # every predicted IoU is 0.9


def test_yolo_boxes_by_default(sam_folder):
    sam = get_proposer("sam", path=sam_folder, box_kwargs={"refine": False})
    assert sam.boxes_from == "yolo"
    grey = np.full((40, 40, 3), 128, np.uint8)  # no detection: no prompt, no mask
    p = sam.propose(grey)
    assert len(p) == 0 and p.masks.shape == (0, 40, 40)


def test_image_processor_only_folder(tmp_path, sam_folder, image):
    """A folder with the image processor's preprocessor_config.json (transformers 4's processor layout too)
    instead of transformers 5's processor_config.json loads the same."""
    folder = tmp_path / "sam_v4_layout"
    folder.mkdir()
    for f in sam_folder.iterdir():
        if f.name != "processor_config.json":
            (folder / f.name).write_bytes(f.read_bytes())
    transformers.SamProcessor.from_pretrained(sam_folder).image_processor.save_pretrained(folder)
    assert (folder / "preprocessor_config.json").is_file() and not (folder / "processor_config.json").exists()
    a = get_proposer("sam", path=folder, boxes_from=FixedBoxes(), device="cpu").propose(image)
    b = get_proposer("sam", path=sam_folder, boxes_from=FixedBoxes(), device="cpu").propose(image)
    np.testing.assert_array_equal(a.masks, b.masks)


def test_sam_hq(tmp_path, image):
    if not hasattr(transformers, "SamHQModel"):
        pytest.skip("this transformers has no SAM-HQ")
    folder = _save_tiny(tmp_path / "sam_hq", hq=True)
    sam = get_proposer("sam", path=folder, boxes_from=FixedBoxes())
    assert sam.model_type == "sam_hq"
    p = sam.propose(image)
    assert 1 <= len(p) <= 3 and p.masks.shape[1:] == (48, 80) and p.names[0] == "dog"


def test_folder_errors(tmp_path, sam_folder):
    with pytest.raises(ConfigError) as e:
        get_proposer("sam", path=tmp_path / "no_such_model")
    assert "no_such_model" in _one_line(e)
    with pytest.raises(ConfigError) as e:
        get_proposer("sam")
    assert "path=" in _one_line(e)
    clip_like = tmp_path / "clip"
    clip_like.mkdir()
    (clip_like / "config.json").write_text(json.dumps({"model_type": "clip"}))
    with pytest.raises(ConfigError) as e:
        get_proposer("sam", path=clip_like)
    assert "'clip'" in _one_line(e) and "'sam'" in str(e.value)
    no_proc = tmp_path / "no_processor"
    no_proc.mkdir()
    (no_proc / "config.json").write_bytes((sam_folder / "config.json").read_bytes())
    with pytest.raises(ConfigError) as e:
        get_proposer("sam", path=no_proc)
    assert "processor" in _one_line(e)
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    for f in sam_folder.iterdir():
        if not f.name.endswith(".safetensors"):
            (no_weights / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ConfigError) as e:
        get_proposer("sam", path=no_weights)
    assert "cannot load the SAM model" in _one_line(e)
    for bad in ("sam", "nope"):
        with pytest.raises(ConfigError) as e:
            get_proposer("sam", path=sam_folder, boxes_from=bad)
        assert "grid" in _one_line(e) and "yolo" in str(e.value)
    with pytest.raises(ConfigError):
        get_proposer("sam", path=sam_folder, boxes_from="grid", points_per_side=0)
