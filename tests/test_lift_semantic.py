"""The semantic cue of lifting: view picking, crops, per-component ImageNet evidence, and its match with audio tags
in the MiniLM text space."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from soundmask.errors import ConfigError, DataError
from soundmask.lift.semantic import (
    CategoryEvidence,
    best_views,
    component_categories,
    crop_box,
    crop_views,
    semantic_likelihood,
    semantic_scores,
)


class FakeEncoder:
    """Classifies a crop by its mean colour: class 0 red, 1 green, 2 blue; counts its calls."""

    input_size = 16
    class_names = ("red", "green", "blue")

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.sizes: set[int] = set()

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        self.batches.append(images.shape[0])
        self.sizes.add(images.shape[-1])
        return images.mean(dim=(2, 3)) * 20.0


# ---------------------------------------------------------------------------------------------- unit tests
def test_best_views_picks_largest_above_the_bar():
    areas = np.array([[10.0, 0.0, 50.0], [40.0, 0.0, 50.0], [30.0, 5.0, 60.0], [100.0, 0.0, 1.0]])
    assert best_views(areas, 2, min_area=20) == [[3, 1], [], [2, 0]]
    assert best_views(areas, 3, min_area=20) == [[3, 1, 2], [], [2, 0, 1]]
    assert best_views(areas, 1, min_area=0) == [[3], [2], [2]]


def test_crop_box_is_square_centred_with_margin():
    m = np.zeros((40, 60))
    m[10:20, 20:40] = 1.0  # 10 x 20 box, centre (15, 30)
    top, left, h, w = crop_box(m, margin=0.25)
    assert h == w == 30 and top == 0 and left == 15
    assert crop_box(m, margin=0.0) == (5, 20, 20, 20)
    assert crop_box(np.zeros((5, 5))) is None
    assert crop_box(np.full((5, 5), 0.4)) is None  # soft values below the threshold


def test_crop_views_resizes_pads_and_dims():
    img = np.zeros((40, 40, 3), np.float32)
    img[..., 0] = 1.0  # red everywhere
    m = np.zeros((40, 40), np.float32)
    m[0:10, 0:10] = 1.0  # in the corner: the square crop reaches outside the image
    c = crop_views(img, m, size=32, margin=0.5)
    assert c.shape == (3, 32, 32) and c.dtype == np.float32
    assert c[0, 20, 20] == pytest.approx(1.0) and c[1, 20, 20] == pytest.approx(0.0)  # inside: the image
    assert c[0, 0, 0] == pytest.approx(0.5) and c[1, 0, 0] == pytest.approx(0.5)  # outside the image: grey
    m2 = np.zeros((40, 40), np.float32)
    m2[15:25, 15:25] = 1.0
    plain = crop_views(img, m2, size=40, margin=0.5, outside=1.0)
    grey = crop_views(img, m2, size=40, margin=0.5, outside=0.0)
    half = crop_views(img, m2, size=40, margin=0.5, outside=0.5)
    np.testing.assert_allclose(plain[:, 2, 2], [1.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(grey[:, 2, 2], [0.5, 0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(half[:, 2, 2], [0.75, 0.25, 0.25], atol=1e-6)
    np.testing.assert_allclose(grey[:, 20, 20], [1.0, 0.0, 0.0], atol=1e-6)  # the object is never dimmed
    assert crop_views(img, np.zeros((40, 40)), size=8) is None


def test_component_categories_batches_and_averages():
    """Two views; component 0 is red in both, component 1 red in one and green in the other, component 2 is
    too small, component 3 never visible: batched crops, softmax averaged over the views used."""
    rng = np.random.default_rng(0)
    h, w = 24, 48
    views, masks = [], []
    for v in range(2):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, :24, 0] = 255
        img[:, 24:, 0 if v == 0 else 1] = 255
        m = np.zeros((4, h, w), np.float32)
        m[0, 4:20, 4:20] = 1.0
        m[1, 4 : 20 - v, 28:44] = 1.0  # larger in view 0
        m[2, 0:2, 0:2] = 1.0
        views.append(img)
        masks.append(m + rng.uniform(0, 0.01, m.shape).astype(np.float32) * (m > 0))
    enc = FakeEncoder()
    ev = component_categories(views, np.stack(masks), enc, views_per_component=2, min_area=16, top_k=2, batch_size=3)
    assert enc.batches == [3, 1]  # 4 crops in batches of 3
    assert [e.component for e in ev] == [0, 1, 2, 3]
    assert [e.visible for e in ev] == [True, True, False, False]
    assert ev[0].names[0] == "red" and ev[0].views == (0, 1) and ev[0].probs[0] > 0.99
    assert ev[1].views == (0, 1) and ev[1].areas[0] > ev[1].areas[1]
    assert set(ev[1].names) == {"red", "green"}
    np.testing.assert_allclose(ev[1].probs, [0.5, 0.5], atol=1e-3)  # one red view, one green view
    assert ev[2].names == () and ev[2].probs.shape == (0,) and ev[3].top() == []
    # masks at another resolution than the images are resized; a list of (K, H, W) works too
    small = [m[:, ::2, ::2] for m in masks]
    enc2 = FakeEncoder()
    ev2 = component_categories(views, small, enc2, views_per_component=2, min_area=4, top_k=2, size=8)
    assert ev2[0].names[0] == "red" and ev2[1].visible and enc2.sizes == {8} and enc.sizes == {16}
    assert component_categories(views, np.zeros((2, 0, h, w)), enc) == []


def test_component_categories_rejects_bad_input():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(DataError):
        component_categories([img, img], np.zeros((1, 2, 8, 8)), FakeEncoder())
    with pytest.raises(DataError):
        component_categories([img], [np.zeros((8, 8))], FakeEncoder())
    with pytest.raises(ConfigError):
        component_categories([img], np.zeros((1, 2, 8, 8)), FakeEncoder(), outside=2.0)
    with pytest.raises(ConfigError):
        component_categories([img], np.zeros((1, 2, 8, 8)), FakeEncoder(), size=4)


class FakeSpace:
    """Cosine 1 between a class name and an audio label with the same first letter, else 0."""

    def match(self, audio, names, mode="soft", top_k=10):
        pairs = list(audio.items()) if isinstance(audio, dict) else list(audio)
        w = np.array([s for _, s in pairs])
        cos = np.array([[float(a[0].lower() == n[0].lower()) for n in names] for a, _ in pairs])
        return (w @ cos / w.sum()) if mode == "soft" else (w[:, None] * cos).max(axis=0)


def test_semantic_scores_formula_and_neutral_component():
    cats = [
        CategoryEvidence(0, ("cat", "dog"), np.array([0.6, 0.2], np.float32)),
        CategoryEvidence(1, ("piano", "cat"), np.array([0.5, 0.3], np.float32)),
        CategoryEvidence(2),  # never visible
    ]
    audio = [("Cat", 1.0), ("Meow", 1.0)]  # per-name match m: cat 0.5, dog 0, piano 0
    s = semantic_scores(cats, audio, FakeSpace())
    np.testing.assert_allclose(s[:2], [0.6 * 0.5 / 0.8, 0.3 * 0.5 / 0.8], rtol=1e-6)
    assert s[2] == pytest.approx(s[:2].mean())  # neutral: the mean of the others
    smax = semantic_scores(cats, iter(audio), FakeSpace(), class_mode="max")
    np.testing.assert_allclose(smax[:2], [0.6 * 0.5 / 0.6, 0.3 * 0.5 / 0.5], rtol=1e-6)
    assert semantic_scores([CategoryEvidence(0)], audio, FakeSpace()).tolist() == [0.0]
    with pytest.raises(ConfigError):
        semantic_scores(cats, audio, FakeSpace(), class_mode="median")


def test_semantic_likelihood():
    lik = semantic_likelihood([0.3, 0.2, 0.25], temperature=0.05, known=[True, True, False])
    assert lik[2] == 1.0  # the component without evidence is neutral
    assert lik[:2].mean() == pytest.approx(1.0) and lik[0] / lik[1] == pytest.approx(np.e**2, rel=1e-5)
    np.testing.assert_allclose(semantic_likelihood([0.4, 0.4, 0.4]), 1.0)
    np.testing.assert_allclose(semantic_likelihood([0.4, np.nan]), 1.0)  # NaN counts as no evidence
    assert semantic_likelihood([]).shape == (0,)
    with pytest.raises(ConfigError):
        semantic_likelihood([0.1], temperature=0.0)


# ------------------------------------------------------------------------------ real EfficientNet + MiniLM
@pytest.fixture(scope="module")
def photos_evidence():
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    from soundmask.vision.efficientnet import EfficientNetLite0

    def square(a: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(a).resize((160, 160), Image.BILINEAR))

    img = np.full((200, 400, 3), 90, np.uint8)
    img[20:180, 20:180] = square(skdata.chelsea())  # a cat
    img[20:180, 220:380] = square(skdata.coffee())  # a cup of coffee
    masks = np.zeros((3, 200, 400), np.float32)
    masks[0, 20:180, 20:180] = 1.0
    masks[1, 20:180, 220:380] = 1.0  # component 2: never visible
    flipped = np.ascontiguousarray(img[:, ::-1])
    return component_categories([img, flipped], [masks, np.ascontiguousarray(masks[:, :, ::-1])], EfficientNetLite0())


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    from soundmask.audio.textspace import TextSpace

    return TextSpace(cache_dir=tmp_path_factory.mktemp("semantic-textspace"))


def test_photos_are_classified(photos_evidence):
    cat, coffee, never = photos_evidence
    assert cat.visible and coffee.visible and not never.visible
    assert cat.views == (0, 1) and sum(cat.probs) > 0.5
    assert any("cat" in n.lower() or n in ("Egyptian Mau", "lynx") for n in cat.names[:2]), cat.top()
    assert any(n in ("espresso", "coffee mug", "cup", "tea cup") for n in coffee.names[:2]), coffee.top()


def test_cat_photo_matches_cat_sounds(photos_evidence, space):
    cat_audio = [("Cat", 0.8), ("Meow", 0.6), ("Purr", 0.3)]
    music_audio = [("Music", 0.8), ("Piano", 0.6)]
    on_cat = semantic_scores(photos_evidence, cat_audio, space)
    on_music = semantic_scores(photos_evidence, music_audio, space)
    assert on_cat[0] > on_music[0] + 0.05  # the cat component: its own sound over music
    assert on_cat[1] < on_music[1] + 0.02  # the coffee component is not drawn to cat sounds
    assert on_cat[0] > on_cat[1] + 0.05  # and for cat sounds the cat beats the coffee
    assert on_cat[2] == pytest.approx(on_cat[:2].mean())  # never visible: neutral
    lik = semantic_likelihood(on_cat, known=[c.visible for c in photos_evidence])
    assert lik.argmax() == 0 and lik[2] == 1.0 and lik[0] / lik[1] > 2.0
