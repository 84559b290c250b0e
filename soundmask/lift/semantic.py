"""The semantic cue of lifting (issue 29, item 3): does what a component *looks like* fit what a segment *sounds
like*?

Each component's visual category comes from its own pixels: :func:`component_categories` picks the few training
views where the component's visible mask is largest, crops the real training image around the mask (square, with a
margin; pixels outside the mask optionally dimmed towards grey), classifies all crops in one batched pass of
EfficientNet-Lite0 (ImageNet-1k) and averages the softmax over the views. The result per component is a
:class:`CategoryEvidence` — the top ImageNet class names with their mean probabilities (empty when the component is
never visible enough).

:func:`semantic_scores` matches that evidence with a segment's audio tags (AudioSet labels with weights) in the
MiniLM text space (:class:`soundmask.audio.textspace.TextSpace`). With ``p_c`` the mean probability of the
component's top ImageNet class ``c`` (renormalised over the kept top-k), ``w_a`` the weight of audio label ``a``
(the ``audio_top_k`` best) and ``cos(c, a)`` the cosine of their MiniLM embeddings::

    m_c = Σ_a w_a · cos(c, a) / Σ_a w_a          (audio_mode="soft": weighted mean over the audio labels)
    m_c = max_a w_a · cos(c, a)                  (audio_mode="max": the best single label, damped by its weight)
    S_k = Σ_c p_c · m_c                          (class_mode="mean": probability-weighted mean over the classes)
    S_k = max_c p_c · m_c / max_c p_c            (class_mode="max": the best class, damped by its relative share)

A component without evidence gets the mean score of the components that have some (0 when none has), so it is
neither favoured nor ruled out. :func:`semantic_likelihood` turns the K scores of one segment into a likelihood
across the components with evidence: ``L_k = exp((S_k − mean S) / T) / mean_j exp((S_j − mean S) / T)`` (their
count times the softmax at temperature ``T``), whose mean is 1 — all-equal scores give 1 — and 1 for a component
without evidence, so it can multiply the other cues' likelihoods without moving anything when it knows nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from soundmask.errors import ConfigError, DataError

if TYPE_CHECKING:
    from soundmask.audio.textspace import TextSpace
    from soundmask.audio.types import Tagging
    from soundmask.vision.efficientnet import EfficientNetLite0

__all__ = [
    "CategoryEvidence",
    "best_views",
    "component_categories",
    "crop_box",
    "crop_views",
    "semantic_likelihood",
    "semantic_scores",
]

_GREY = 0.5  # what dimmed pixels fade to: EfficientNet-Lite's normalisation maps it to ~0


@dataclass
class CategoryEvidence:
    """What one component looks like: the ``top_k`` ImageNet class ``names`` and their softmax ``probs`` averaged
    over the training ``views`` used (positions into the view list) in which its visible mask covered ``areas``
    pixels. Empty ``names`` when the component is never visible enough."""

    component: int
    names: tuple[str, ...] = ()
    probs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    views: tuple[int, ...] = ()
    areas: tuple[float, ...] = ()

    @property
    def visible(self) -> bool:
        return bool(self.names)

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable (class name, probability) pairs, best first."""
        return [(n, float(p)) for n, p in zip(self.names[:k], self.probs[:k], strict=True)]


# ------------------------------------------------------------------------------------------------- inputs
def _image(img: Any) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1] from uint8 or float input."""
    a = np.asarray(img)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise DataError(f"an image must be (H, W, 3), got shape {a.shape}", fix="pass RGB images")
    a = a[..., :3]
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    return np.clip(a.astype(np.float32), 0.0, 1.0)


def _view_masks(masks: Any, n_views: int) -> list[np.ndarray]:
    """The (K, H, W) float32 masks of each view."""
    out = [np.asarray(m, dtype=np.float32) for m in masks]
    if len(out) != n_views:
        raise DataError(f"{len(out)} mask stacks for {n_views} images", fix="pass one (K, H, W) stack per image")
    ks = {m.shape[0] if m.ndim == 3 else -1 for m in out}
    if len(ks) != 1 or -1 in ks:
        raise DataError(
            f"masks must be (K, H, W) with the same K in every view, got {sorted({m.shape for m in out})}",
            fix="pass (V, K, H, W) or a list of (K, H, W), one channel per component",
        )
    return out


def _resize_mask(m: np.ndarray, h: int, w: int) -> np.ndarray:
    if m.shape[-2:] == (h, w):
        return m
    t = torch.from_numpy(np.ascontiguousarray(m))[None]
    return torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)[0].numpy()


# ------------------------------------------------------------------------------------------ views and crops
def best_views(areas: np.ndarray, views_per_component: int = 3, min_area: float = 32.0) -> list[list[int]]:
    """For each component (column of ``areas``, (V, K) visible mask areas in pixels), the up to
    ``views_per_component`` views where its area is largest and at least ``min_area``, largest first (ties: the
    earlier view)."""
    a = np.asarray(areas, dtype=np.float64)
    if a.ndim != 2:
        raise DataError(f"areas must be (V, K), got shape {a.shape}")
    out = []
    for k in range(a.shape[1]):
        order = np.argsort(-a[:, k], kind="stable")
        out.append([int(v) for v in order[: max(0, int(views_per_component))] if a[v, k] >= min_area])
    return out


def crop_box(mask: np.ndarray, margin: float = 0.15, threshold: float = 0.5) -> tuple[int, int, int, int] | None:
    """The square box ``(top, left, side, side)`` around ``mask > threshold`` ((H, W)): centred on the mask's
    bounding box, side ``max(h, w) · (1 + 2 · margin)`` (at least 1 pixel); it may reach outside the image.
    None for an empty mask."""
    ys, xs = np.nonzero(np.asarray(mask) > threshold)
    if ys.size == 0:
        return None
    y0, y1, x0, x1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    side = max(1, int(round(max(y1 - y0, x1 - x0) * (1.0 + 2.0 * margin))))
    top = int(round((y0 + y1 - side) / 2.0))
    left = int(round((x0 + x1 - side) / 2.0))
    return top, left, side, side


def crop_views(
    image: np.ndarray,
    mask: np.ndarray,
    size: int = 224,
    margin: float = 0.15,
    outside: float = 1.0,
    threshold: float = 0.5,
) -> np.ndarray | None:
    """(3, size, size) float32 crop of ``image`` ((H, W, 3) in [0, 1]) around ``mask`` ((H, W) soft, same size),
    see :func:`crop_box`; pixels outside the image are grey. ``outside`` in [0, 1] is how much of the image is kept
    where the mask is 0 (1: the plain crop; 0: grey outside the object), blended by the soft mask. Resized with
    bilinear interpolation (antialiased when shrinking). None for an empty mask."""
    box = crop_box(mask, margin, threshold)
    if box is None:
        return None
    top, left, side, _ = box
    h, w = mask.shape
    m = np.clip(mask, 0.0, 1.0).astype(np.float32)
    keep = outside + (1.0 - outside) * m  # (H, W): 1 on the object, ``outside`` far from it
    shown = image * keep[..., None] + _GREY * (1.0 - keep[..., None])
    crop = np.full((side, side, 3), _GREY, dtype=np.float32)
    sy0, sx0, sy1, sx1 = max(top, 0), max(left, 0), min(top + side, h), min(left + side, w)
    crop[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = shown[sy0:sy1, sx0:sx1]
    t = torch.from_numpy(crop).permute(2, 0, 1)[None]
    t = torch.nn.functional.interpolate(
        t, size=(size, size), mode="bilinear", align_corners=False, antialias=side > size
    )
    return t[0].clamp_(0.0, 1.0).numpy()


# ------------------------------------------------------------------------------------------- classification
def component_categories(
    images: Sequence[Any],
    masks: Any,
    encoder: EfficientNetLite0 | None = None,
    views_per_component: int = 3,
    min_area: float = 32.0,
    margin: float = 0.15,
    outside: float = 1.0,
    top_k: int = 5,
    batch_size: int = 16,
    threshold: float = 0.5,
    size: int | None = None,
) -> list[CategoryEvidence]:
    """What each component looks like, from the real training images (see the module docstring).

    ``images``: V RGB images (H, W, 3), uint8 or float in [0, 1]. ``masks``: (V, K, H, W) or V stacks (K, H, W) of
    the components' visible (soft) masks — :func:`soundmask.lift.associate.component_masks` — resized to the image
    when their size differs. A component is classified in its ``views_per_component`` views of largest mask area
    (Σ of the soft mask, at least ``min_area`` pixels) — crops by :func:`crop_views` with ``margin`` and
    ``outside`` — and its softmax averaged over them; ``top_k`` classes are kept. ``encoder``: an
    :class:`~soundmask.vision.efficientnet.EfficientNetLite0` (loaded when None). All crops go through the network
    in batches of ``batch_size``, resized to ``size`` pixels (default: the encoder's ``input_size``, 224; the
    network pools globally, so a smaller size, e.g. 160, halves the time for small objects at some accuracy)."""
    if views_per_component < 1 or top_k < 1 or batch_size < 1 or (size is not None and size < 8):
        raise ConfigError("views_per_component, top_k and batch_size must be ≥ 1, and size ≥ 8")
    if not 0.0 <= outside <= 1.0 or margin < 0.0:
        raise ConfigError(f"outside must be in [0, 1] and margin ≥ 0, got {outside}, {margin}")
    imgs = [_image(im) for im in images]
    stacks = _view_masks(masks, len(imgs))
    stacks = [_resize_mask(m, im.shape[0], im.shape[1]) for m, im in zip(stacks, imgs, strict=True)]
    n_comp = stacks[0].shape[0] if stacks else 0
    if not imgs or n_comp == 0:
        return [CategoryEvidence(k) for k in range(n_comp)]
    areas = np.stack([np.clip(m, 0.0, 1.0).sum(axis=(1, 2)) for m in stacks])  # (V, K)
    picks = best_views(areas, views_per_component, min_area)
    if encoder is None:
        from soundmask.vision.efficientnet import EfficientNetLite0

        encoder = EfficientNetLite0()
    size = int(size if size is not None else getattr(encoder, "input_size", 224))
    crops: list[np.ndarray] = []
    owner: list[int] = []
    used: list[list[int]] = [[] for _ in range(n_comp)]
    for k, views in enumerate(picks):
        for v in views:
            c = crop_views(imgs[v], stacks[v][k], size, margin, outside, threshold)
            if c is None:  # soft area above the bar but nothing above the threshold
                continue
            crops.append(c)
            owner.append(k)
            used[k].append(v)
    probs = np.zeros((len(crops), 0), dtype=np.float32)
    if crops:
        batch = torch.from_numpy(np.stack(crops))
        with torch.no_grad():
            logits = torch.cat([encoder.classify(batch[i : i + batch_size]) for i in range(0, len(crops), batch_size)])
        probs = torch.softmax(logits.float(), dim=1).numpy()
    names = encoder.class_names
    out = []
    owner_a = np.asarray(owner, dtype=np.int64)
    for k in range(n_comp):
        rows = probs[owner_a == k] if len(owner) else probs
        if rows.shape[0] == 0:
            out.append(CategoryEvidence(k))
            continue
        mean = rows.mean(axis=0)
        best = np.argsort(-mean, kind="stable")[:top_k]
        out.append(
            CategoryEvidence(
                k,
                tuple(names[i] for i in best),
                mean[best].astype(np.float32),
                tuple(used[k]),
                tuple(float(areas[v, k]) for v in used[k]),
            )
        )
    return out


# ------------------------------------------------------------------------------------------------ matching
def semantic_scores(
    categories: Sequence[CategoryEvidence],
    audio_labels: Tagging | Mapping[str, float] | Iterable[tuple[str, float]],
    space: TextSpace,
    audio_mode: str = "soft",
    class_mode: str = "mean",
    audio_top_k: int | None = 10,
) -> np.ndarray:
    """(K,) float32: how well each component's category matches the audio labels of one segment, ``S_k`` of the
    module docstring — cosines in ``space``, so in [-1, 1]. ``audio_labels``: a
    :class:`~soundmask.audio.types.Tagging`, ``{label: weight}`` or ``(label, weight)`` pairs; the
    ``audio_top_k`` best count. A component without evidence gets the mean of the others' scores."""
    if class_mode not in ("mean", "max"):
        raise ConfigError(f"unknown class_mode {class_mode!r}", fix="use 'mean' or 'max'")
    pairs: Any = audio_labels
    if not isinstance(pairs, Mapping) and not hasattr(pairs, "scores"):  # not a Tagging: read an iterator once
        pairs = [(str(a), float(w)) for a, w in pairs]
    names = sorted({n for c in categories for n in c.names})
    per_name = dict(zip(names, space.match(pairs, names, mode=audio_mode, top_k=audio_top_k), strict=True))
    scores = np.zeros(len(categories), dtype=np.float64)
    seen = np.array([c.visible for c in categories], dtype=bool)
    for k, c in enumerate(categories):
        if not c.visible:
            continue
        p = np.clip(np.asarray(c.probs, dtype=np.float64), 0.0, None)
        m = np.array([per_name[n] for n in c.names], dtype=np.float64)
        if p.sum() <= 0:
            p = np.ones_like(p)
        if class_mode == "mean":
            scores[k] = float(p @ m / p.sum())
        else:
            scores[k] = float((p * m).max() / p.max())
    if seen.any() and not seen.all():
        scores[~seen] = scores[seen].mean()
    return scores.astype(np.float32)


def semantic_likelihood(scores: Any, temperature: float = 0.05, known: Any = None) -> np.ndarray:
    """(K,) float32 likelihood across components from one segment's :func:`semantic_scores`:
    ``exp((S_k − mean S) / T) / mean_j exp((S_j − mean S) / T)`` over the components with evidence (``known``,
    (K,) bool, e.g. ``[c.visible for c in categories]``; default: the finite scores) — mean 1 over them, 1
    everywhere when their scores are equal — and exactly 1 for the others (see the module docstring).
    ``temperature`` T > 0 in cosine units: a score ``T`` above another makes a component e times as likely."""
    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    ok = np.isfinite(s) if known is None else np.asarray(known, dtype=bool).reshape(-1) & np.isfinite(s)
    if ok.shape != s.shape:
        raise DataError(f"known has {ok.size} entries for {s.size} scores")
    out = np.ones(s.shape, dtype=np.float64)
    if ok.any():
        z = (s[ok] - s[ok].mean()) / temperature
        e = np.exp(z - z.max())
        out[ok] = e / e.mean()
    return out.astype(np.float32)


def semantic_matrix(categories: Sequence[CategoryEvidence], taggings: Sequence[Any], space: TextSpace) -> np.ndarray:
    """(V, K): per audio window (``taggings[v]``, a :class:`~soundmask.audio.types.Tagging` or None) each
    component's :func:`semantic_scores` minus their mean over the components (so 0 = average fit, and a window
    without tags is all 0) — the binding's semantic cue (:mod:`soundmask.lift.binding`)."""
    out = np.zeros((len(taggings), len(categories)))
    if not any(c.visible for c in categories):
        return out
    for v, tg in enumerate(taggings):
        if tg is None or not np.size(getattr(tg, "scores", ())):
            continue
        s = semantic_scores(categories, tg, space)
        out[v] = s - s.mean()
    return out
