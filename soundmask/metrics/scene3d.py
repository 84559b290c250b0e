"""3D audio-visual segmentation metrics: the EchoSegnet protocol (3DAVS-S34-O7), pooled J/F, centroid error.

Source of the protocol: Sokolov, Bhosale & Zhu, "3D Audio-Visual Segmentation" (NeurIPS 2024 workshop),
repository ``X-UP-Lab/3D-Audio-Visual-Segmentation``:

* test views — ``scene/dataset_readers.py::readColmapSceneInfo`` (3D Gaussian Splatting's ``llffhold = 8``):
  the cameras sorted by image name, view ``idx`` is a test view iff ``idx % 8 == 0`` (:func:`test_view_indices`);
* prediction — ``run_lifting_aisrm.py``: the selected Gaussians are rendered at every test view and the
  mask is ``alpha > 0.8`` (strict, compared in the alpha's dtype);
* per-scene scores — the same script calls AVSBench's ``mask_iou`` and ``Eval_Fmeasure``
  (``src/avs_3d/metrics.py``, a copy of AVSBench's) **once**, on all the scene's test views stacked as one
  batch, with the 0/1 masks themselves passed as "logits" (``sigmoid(0) = 0.5`` is negative, ``sigmoid(1)``
  positive) and the GT as float64 (``png / 255.``). :class:`Scene3DMetric` does exactly that with
  :func:`~soundmask.metrics.avsbench.mask_iou` / :func:`~soundmask.metrics.avsbench.f_score`;
* dataset scores — ``aggregate_metrics.py``: ``np.mean`` over scenes of the per-scene mIoU and F-score,
  i.e. every scene weighs the same whatever its number of test views.

Consequences of AVSBench's definitions on binary predictions (reproduced, not corrected):

* a test view whose GT is empty scores, in ``mask_iou``, the fraction of pixels where the prediction is
  empty too (1.0 for an empty prediction); ``f_score`` skips such views, and a scene whose test views all
  have an empty GT gets F = 0.0;
* ``f_score`` sweeps thresholds from 0, where every pixel is positive. With a binary prediction its curve
  takes two values, the mean per-view F of the mask and the mean per-view F of "everything positive"
  (``1.3·g / (0.3·g + 1)``, ``g`` the GT area fraction), and the max is reported: an empty or very poor
  prediction still scores that second value (e.g. ≈ 0.08 for an object covering 1/16 of the view).
  Passing ``where(mask, 20., -20.)`` instead of the 0/1 mask gives the same numbers.

soundmask's additions: ``pooled_j`` / ``pooled_f`` from :class:`~soundmask.metrics.pooled.PooledJF` over
all test views of all scenes (fed the binary masks as probabilities 0/1, so ``pooled_f`` has the same
"everything positive" floor, pooled), and a 3D ``centroid_error_m``: the distance in metres between the
centroid of the predicted 3D points and the GT source position (:func:`centroid_error`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from soundmask.constants import ALPHA_THRESHOLD, TEST_EVERY
from soundmask.data.io import to_jsonable
from soundmask.errors import ConfigError, DataError
from soundmask.metrics.avsbench import ArrayLike, f_score, mask_iou
from soundmask.metrics.pooled import PooledJF

if TYPE_CHECKING:
    from soundmask.data.types import Scene

__all__ = [
    "ALPHA_THRESHOLD",
    "TEST_EVERY",
    "Scene3DMetric",
    "Scene3DResult",
    "TimedObject",
    "centroid_error",
    "evaluate_scene",
    "mask_centroid_3d",
    "tag_centroid_errors",
    "test_view_indices",
]

_ALPHA_TOL = 1e-4  # rendered alpha may overshoot [0, 1] by rounding; more than this is not an alpha


# ----------------------------------------------------------------------------------------------------
# test views
# ----------------------------------------------------------------------------------------------------


def test_view_indices(num_frames: int, every: int = TEST_EVERY) -> list[int]:
    """Indices of the test views among ``num_frames`` views: ``idx % every == 0``.

    The indices refer to the cameras sorted by image name, as 3DGS's ``readColmapSceneInfo`` orders them
    (EchoSegnet keeps that split); the other views are the training views.

    Raises:
        ConfigError: when ``num_frames`` is negative or ``every`` is smaller than 1.
    """
    if isinstance(num_frames, bool) or not isinstance(num_frames, (int, np.integer)) or num_frames < 0:
        raise ConfigError(f"num_frames must be a non-negative integer, got {num_frames!r}")
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
        raise ConfigError(f"every must be a positive integer, got {every!r}", fix="use the default 8 (llffhold)")
    return list(range(0, int(num_frames), int(every)))


test_view_indices.__test__ = False  # type: ignore[attr-defined]  # not a pytest test despite its name


# ----------------------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------------------


def _tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as err:
        raise DataError(f"{name} cannot be converted to a tensor: {err}") from err


def _binary_prediction(pred: Any, alpha_threshold: float, scene: str) -> torch.Tensor:
    """T×H×W bool mask from a bool/0-1 integer mask or a float alpha (``alpha > alpha_threshold``)."""
    p = _tensor(pred, "pred")
    if p.dim() != 3:
        raise DataError(
            f"scene {scene!r}: pred must be T×H×W (3-D), got shape {tuple(p.shape)}",
            fix="stack the test views on the first axis, e.g. mask[None] for a single view",
        )
    if p.dtype == torch.bool:
        return p
    if torch.is_floating_point(p):
        if bool(torch.isnan(p).any()):
            raise DataError(f"scene {scene!r}: rendered alpha contains NaN", fix="check the renderer output")
        if p.numel() and (float(p.min()) < -_ALPHA_TOL or float(p.max()) > 1 + _ALPHA_TOL):
            raise DataError(
                f"scene {scene!r}: rendered alpha outside [0, 1] (min {float(p.min()):.4g}, max {float(p.max()):.4g})",
                fix="pass the accumulated alpha of the selected Gaussians, or a boolean mask",
            )
        return p > alpha_threshold  # compared in the alpha's dtype, as numpy does in EchoSegnet
    if p.is_complex():
        raise DataError(f"scene {scene!r}: pred must be a boolean mask or a real alpha, got {p.dtype}")
    if not bool(((p == 0) | (p == 1)).all()):
        raise DataError(
            f"scene {scene!r}: integer pred must be a 0/1 mask",
            fix="compare 0/255 masks with > 0, or pass the rendered alpha as floats",
        )
    return p != 0


def _binary_target(target: Any, scene: str) -> torch.Tensor:
    t = _tensor(target, "target")
    if t.dtype == torch.bool:
        return t
    if t.is_complex():
        raise DataError(f"scene {scene!r}: target must be a binary mask, got {t.dtype}")
    if torch.is_floating_point(t) and bool(torch.isnan(t).any()):
        raise DataError(f"scene {scene!r}: target contains NaN", fix="check the GT masks")
    if not bool(((t == 0) | (t == 1)).all()):
        raise DataError(
            f"scene {scene!r}: target must be a binary 0/1 mask", fix="divide 0/255 masks by 255 or compare > 0"
        )
    return t != 0


def _centroid_values(errors: Any, scene: str) -> np.ndarray:
    if isinstance(errors, torch.Tensor):
        errors = errors.detach().cpu().numpy()
    try:
        arr = np.asarray(errors, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise DataError(f"scene {scene!r}: centroid_errors are not numeric: {err}") from err
    finite = arr[~np.isnan(arr)]
    if np.isinf(finite).any() or (finite < 0).any():
        raise DataError(
            f"scene {scene!r}: centroid errors must be distances >= 0 (NaN for a failed prediction)",
            fix="pass the values returned by centroid_error",
        )
    return arr


# ----------------------------------------------------------------------------------------------------
# accumulation
# ----------------------------------------------------------------------------------------------------


class _SceneState:
    """One scene's test views (bit-packed masks, in update order), its PooledJF and its centroid errors."""

    def __init__(self) -> None:
        self.chunks: list[tuple[np.ndarray, np.ndarray, int]] = []  # (packed pred, packed target, n)
        self.hw: tuple[int, int] | None = None
        self.pooled = PooledJF(from_logits=False)
        self.centroids: list[float] = []

    @property
    def num_views(self) -> int:
        return sum(n for _, _, n in self.chunks)

    def add(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        n, h, w = pred.shape
        p = pred.numpy().reshape(n, h * w)
        t = target.numpy().reshape(n, h * w)
        self.chunks.append((np.packbits(p, axis=1), np.packbits(t, axis=1), n))
        self.hw = (h, w)
        self.pooled.update(pred.to(torch.float32), target)

    def masks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All views as two T×H×W bool tensors, in update order."""
        assert self.hw is not None
        h, w = self.hw

        def unpack(packed: list[np.ndarray]) -> torch.Tensor:
            rows = np.concatenate([np.unpackbits(a, axis=1, count=h * w) for a in packed], axis=0)
            return torch.from_numpy(rows.astype(bool).reshape(-1, h, w))

        return unpack([c[0] for c in self.chunks]), unpack([c[1] for c in self.chunks])

    def extend(self, other: _SceneState) -> None:
        self.chunks.extend(other.chunks)
        self.hw = other.hw if self.hw is None else self.hw
        self.pooled.merge(other.pooled)
        self.centroids.extend(other.centroids)


def _nan_mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


@dataclass(frozen=True)
class Scene3DResult:
    """Dataset-level 3D AVS scores (see the module docstring for the protocol).

    Attributes:
        miou: EchoSegnet mIoU — unweighted mean over scenes of AVSBench ``mask_iou`` of each scene's test
            views taken as one batch.
        fscore: EchoSegnet F-score — unweighted mean over scenes of AVSBench ``f_score`` (β² = 0.3), same batches.
        pooled_j: pooled IoU ``Σ|P∩G| / Σ|P∪G|`` over all test views of all scenes (:class:`PooledJF`).
        pooled_f: pooled max-F over all test views of all scenes (:class:`PooledJF`).
        centroid_error_m: mean of all finite centroid errors given (metres); NaN if none.
        per_scene: scene name → ``{"miou", "fscore", "pooled_j", "pooled_f", "num_views", "empty_views",
            "centroid_error_m", "num_centroids"}``, in the order scenes were first seen.
        num_scenes: number of scenes.
        num_views: number of test views over all scenes.
        num_centroids: number of finite centroid errors averaged in ``centroid_error_m``.
        centroid_failures: number of NaN centroid errors given (no predicted point), left out of the mean.
        alpha_threshold: the binarisation threshold of rendered alphas.
    """

    miou: float
    fscore: float
    pooled_j: float
    pooled_f: float
    centroid_error_m: float
    per_scene: dict[str, dict[str, Any]] = field(default_factory=dict)
    num_scenes: int = 0
    num_views: int = 0
    num_centroids: int = 0
    centroid_failures: int = 0
    alpha_threshold: float = ALPHA_THRESHOLD

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dict (non-finite floats become ``None``)."""
        return to_jsonable(
            {
                "miou": self.miou,
                "fscore": self.fscore,
                "pooled_j": self.pooled_j,
                "pooled_f": self.pooled_f,
                "centroid_error_m": self.centroid_error_m,
                "num_scenes": self.num_scenes,
                "num_views": self.num_views,
                "num_centroids": self.num_centroids,
                "centroid_failures": self.centroid_failures,
                "alpha_threshold": self.alpha_threshold,
                "per_scene": self.per_scene,
            }
        )


class Scene3DMetric:
    """Accumulates per-scene test-view masks; computes the EchoSegnet 3D AVS scores and pooled J/F.

    ``update`` may be called several times for the same scene: its views are appended, and the scene is
    still scored as one batch of all its views (the result equals a single ``update`` with the views
    concatenated in the same order). Masks are kept bit-packed (1 bit per pixel and mask) until
    :meth:`compute`.

    Args:
        alpha_threshold: float predictions (rendered alphas) are positive where ``alpha > alpha_threshold``.
    """

    def __init__(self, alpha_threshold: float = ALPHA_THRESHOLD) -> None:
        self.alpha_threshold = float(alpha_threshold)
        if not 0.0 <= self.alpha_threshold < 1.0:
            raise ConfigError(f"alpha_threshold must be in [0, 1), got {alpha_threshold!r}")
        self.reset()

    def reset(self) -> None:
        """Forget every scene."""
        self._scenes: dict[str, _SceneState] = {}

    def __len__(self) -> int:
        return len(self._scenes)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._scenes))

    def update(self, scene_name: str, pred: ArrayLike, target: ArrayLike, *, centroid_errors: Any = None) -> None:
        """Add test views of one scene.

        Args:
            scene_name: the scene's identifier (non-empty string).
            pred: T×H×W boolean masks (0/1 integers accepted) or rendered alphas (float, in [0, 1]), binarised
                with ``alpha > alpha_threshold``.
            target: T×H×W GT masks, boolean or 0/1.
            centroid_errors: optional centroid error(s) in metres for this scene (a float or a sequence; NaN
                marks a failed prediction and is counted in ``centroid_failures``).

        Raises:
            DataError: bad shapes (not 3-D, pred ≠ target, T = 0, H×W differing from this scene's earlier
                views), NaNs, non-binary targets, alphas outside [0, 1], negative or infinite centroid errors.
        """
        if not isinstance(scene_name, str) or not scene_name:
            raise DataError(f"scene_name must be a non-empty string, got {scene_name!r}")
        p = _binary_prediction(pred, self.alpha_threshold, scene_name)
        t = _binary_target(target, scene_name)
        if tuple(p.shape) != tuple(t.shape):
            raise DataError(
                f"scene {scene_name!r}: pred shape {tuple(p.shape)} and target shape {tuple(t.shape)} differ",
                fix="give one GT mask per rendered test view, at the render resolution",
            )
        if p.shape[0] == 0:
            raise DataError(f"scene {scene_name!r}: no test views (T = 0)", fix="pass at least one view")
        if p.shape[1] * p.shape[2] == 0:
            raise DataError(f"scene {scene_name!r}: views of {tuple(p.shape[1:])} pixels are empty")
        prior = self._scenes.get(scene_name)
        if prior is not None and prior.hw is not None and prior.hw != tuple(p.shape[1:]):
            raise DataError(
                f"scene {scene_name!r}: views of {tuple(p.shape[1:])} pixels after earlier views of {prior.hw}",
                fix="render every test view of a scene at the same resolution",
            )
        errs = _centroid_values(centroid_errors, scene_name) if centroid_errors is not None else None
        state = self._scenes.setdefault(scene_name, _SceneState())
        state.add(p.contiguous(), t.contiguous())
        if errs is not None:
            state.centroids.extend(float(e) for e in errs)

    def merge(self, other: Scene3DMetric) -> None:
        """Add another accumulator's scenes; views of a scene present in both are appended after ours."""
        if not isinstance(other, Scene3DMetric) or other.alpha_threshold != self.alpha_threshold:
            raise DataError("can only merge a Scene3DMetric with the same alpha_threshold")
        for name, theirs in other._scenes.items():
            mine = self._scenes.get(name)
            if mine is not None and mine.hw is not None and theirs.hw is not None and mine.hw != theirs.hw:
                raise DataError(f"scene {name!r}: views of {theirs.hw} pixels after earlier views of {mine.hw}")
            self._scenes.setdefault(name, _SceneState()).extend(theirs)  # copies: nothing mutable is shared

    def compute(self) -> Scene3DResult:
        """Score every scene and aggregate; with no scene seen every score is NaN."""
        per_scene: dict[str, dict[str, Any]] = {}
        pooled_all = PooledJF(from_logits=False)
        all_centroids: list[float] = []
        for name, state in self._scenes.items():
            pred, tgt = state.masks()
            # EchoSegnet: the 0/1 masks are the "logits", the GT is float64 (png / 255.)
            logits = pred.to(torch.float32)
            gt = tgt.to(torch.float64)
            pooled = state.pooled.compute()
            pooled_all.merge(state.pooled)
            finite = [c for c in state.centroids if not math.isnan(c)]
            all_centroids.extend(state.centroids)
            per_scene[name] = {
                "miou": mask_iou(logits, gt),
                "fscore": f_score(logits, gt),
                "pooled_j": float(pooled["j"]),
                "pooled_f": float(pooled["f"]),
                "num_views": int(pred.shape[0]),
                "empty_views": int(pooled["empty_frames"]),
                "centroid_error_m": _nan_mean(finite),
                "num_centroids": len(finite),
            }
        pooled = pooled_all.compute()
        finite_all = [c for c in all_centroids if not math.isnan(c)]
        return Scene3DResult(
            miou=_nan_mean([s["miou"] for s in per_scene.values()]),
            fscore=_nan_mean([s["fscore"] for s in per_scene.values()]),
            pooled_j=float(pooled["j"]),
            pooled_f=float(pooled["f"]),
            centroid_error_m=_nan_mean(finite_all),
            per_scene=per_scene,
            num_scenes=len(per_scene),
            num_views=int(pooled["frames"]),
            num_centroids=len(finite_all),
            centroid_failures=len(all_centroids) - len(finite_all),
            alpha_threshold=self.alpha_threshold,
        )


# ----------------------------------------------------------------------------------------------------
# 3D localisation
# ----------------------------------------------------------------------------------------------------


def _points(points: Any) -> np.ndarray:
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu().numpy()
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DataError(f"points are not numeric: {err}") from err
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise DataError(f"points must be M×3, got shape {arr.shape}", fix="pass the selected Gaussians' xyz")
    if not np.isfinite(arr).all():
        raise DataError("points contain NaN or infinite coordinates")
    return arr


def mask_centroid_3d(points: ArrayLike, weights: ArrayLike | None = None) -> np.ndarray:
    """Centroid (3,) of M×3 points: their mean, or their ``weights``-weighted mean (weights ≥ 0, shape (M,)).

    Returns NaN coordinates when there is no point (M = 0) or the weights sum to 0.
    """
    pts = _points(points)
    if weights is None:
        return pts.mean(axis=0) if len(pts) else np.full(3, np.nan)
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().cpu().numpy()
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(pts),):
        raise DataError(f"weights must have shape ({len(pts)},), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise DataError("weights must be finite and non-negative")
    total = w.sum()
    if total <= 0:
        return np.full(3, np.nan)
    return (pts * w[:, None]).sum(axis=0) / total


def centroid_error(pred_points: ArrayLike, gt_position: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Distance (metres: the scene's units) from the centroid of the predicted 3D points to the GT position.

    Args:
        pred_points: M×3 positions of the predicted (selected) Gaussians or points.
        gt_position: (3,) GT sound-source position.
        weights: optional (M,) non-negative weights (e.g. opacities) for a weighted centroid.

    Returns:
        The Euclidean distance; NaN when there is no predicted point (M = 0) or all weights are 0.
    """
    if isinstance(gt_position, torch.Tensor):
        gt_position = gt_position.detach().cpu().numpy()
    try:
        gt = np.asarray(gt_position, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise DataError(f"gt_position is not numeric: {err}") from err
    if gt.shape != (3,) or not np.isfinite(gt).all():
        raise DataError(f"gt_position must be 3 finite coordinates, got {np.asarray(gt_position).shape}")
    c = mask_centroid_3d(pred_points, weights)
    if np.isnan(c).any():
        return float("nan")
    return float(np.linalg.norm(c - gt))


# ------------------------------------------------------------------------------------------ one lifted scene
class TimedObject(Protocol):
    """What the scene evaluation reads of a sound-tagged object (e.g. :class:`soundmask.lift.tags.SoundTag`)."""

    @property
    def centroid(self) -> np.ndarray: ...  # (3,) world metres
    @property
    def spans(self) -> list[tuple[float, float]]: ...  # when it sounds (s)
    @property
    def label(self) -> str: ...  # its audio tag


def evaluate_scene(
    scene: Scene,
    test_alpha: dict[int, np.ndarray],
    tags: Sequence[TimedObject],
    alpha_threshold: float = ALPHA_THRESHOLD,
    tracks: np.ndarray | None = None,
) -> dict[str, Any]:
    """The EchoSegnet protocol on one scene's test views: ``test_alpha`` maps a test frame to the rendered alpha
    (H, W) of its sounding Gaussians, scored against the scene's ground-truth sound mask at that size (mIoU, F,
    pooled J/F); the centroid error of each sounding object against ``tags`` (:func:`tag_centroid_errors`); and,
    when the scene lists sound events, which objects the tags found (``objects_found``, ``objects_missed``,
    ``false_sources``, ``label_accuracy``: :func:`soundmask.metrics.objects.score_objects`) and, when the scene
    has per-object audio and the tags carry their own signals (``audio``), how well those are separated
    (``separation_si_sdr_db``, ``separation_si_sdri_db``: :func:`soundmask.metrics.separation.score_separation`;
    None otherwise); with ``tracks`` ((F, K, 3): each tag's position at each frame's time), the track error of
    each found object (``track_errors_m``, their median ``track_error_m``:
    :func:`soundmask.metrics.objects.track_errors`). Without ground-truth masks the mask scores are None, with a
    note."""
    from soundmask.data.images import resize_mask
    from soundmask.data.scene import load_sound_mask
    from soundmask.metrics.objects import OBJECT_KEYS, score_objects, track_errors
    from soundmask.metrics.separation import SEPARATION_KEYS

    out: dict[str, Any] = dict.fromkeys(OBJECT_KEYS + SEPARATION_KEYS + ("track_error_m", "track_errors_m"))
    if scene.sound_events:
        obj = score_objects(scene, tags)
        out.update({k: getattr(obj, k) for k in OBJECT_KEYS})
        out["objects"] = obj.to_dict()
        out.update(_separation(scene, tags, obj.pairs))
        if tracks is not None:
            te = {i: e for i, e in track_errors(scene, tracks, obj.pairs).items() if np.isfinite(e)}
            out["track_errors_m"] = {str(i): round(e, 4) for i, e in te.items()}
            out["track_error_m"] = round(float(np.median(list(te.values()))), 4) if te else None
    gts, preds = [], []
    for i, a in test_alpha.items():
        H, W = np.shape(a)
        try:
            gts.append(resize_mask(load_sound_mask(scene, i), W, H))
        except DataError:
            return {
                "miou": None,
                "fscore": None,
                "pooled_j": None,
                "pooled_f": None,
                "centroid_error_m": None,
                **out,
                "note": "the scene has no ground-truth sound masks; nothing to score",
            }
        preds.append(a)
    errs = tag_centroid_errors(scene, tags)
    m = Scene3DMetric(alpha_threshold=alpha_threshold)
    if gts:
        m.update(scene.name or "scene", np.stack(preds).astype(np.float32), np.stack(gts), centroid_errors=errs)
        out.update(
            {
                k: v
                for k, v in m.compute().to_dict().items()
                if k in ("miou", "fscore", "pooled_j", "pooled_f", "centroid_error_m")
            }
        )
    out["centroid_errors_m"] = [None if not np.isfinite(e) else round(float(e), 4) for e in errs]
    return out


def _separation(scene: Scene, tags: Sequence[Any], pairs: dict[int, int]) -> dict[str, Any]:
    """``separation_*`` of the found objects' tag signals against the scene's stems ({} without stems/signals)."""
    from soundmask.data.scene import load_object_audio, load_stereo, object_audio_ids
    from soundmask.metrics.separation import score_separation

    est = {i: (k, getattr(tags[k], "audio", None)) for i, k in pairs.items()}
    est = {i: v for i, v in est.items() if v[1] is not None}
    if scene.root is None or not est:
        return {}
    have = set(object_audio_ids(scene))
    if not have:
        return {}
    try:
        stems = {i: load_object_audio(scene, i) for i in est if i in have}
        mixture = load_stereo(scene)
    except DataError:  # stems without a stereo recording: nothing to compare with
        return {}
    events: dict[int, list[tuple[float, float]]] = {}
    for e in scene.sound_events:
        events.setdefault(e.object_id, []).append((e.start, e.end))
    sc = score_separation(est, stems, mixture, scene.sample_rate, events)
    return {
        "separation_si_sdr_db": sc.separation_si_sdr_db,
        "separation_si_sdri_db": sc.separation_si_sdri_db,
        "separation_objects": sc.objects,
    }


def tag_centroid_errors(scene: Scene, tags: Sequence[TimedObject]) -> list[float]:
    """Per sounding object with events: distance from its (mean) position to the centroid of the tag whose spans
    overlap its events most (NaN when no tag overlaps it)."""
    errs = []
    for o in scene.objects:
        ev = [e for e in scene.sound_events if e.object_id == o.id]
        if not ev:
            continue
        best, best_ov = None, 0.0
        for t in tags:
            ov = sum(max(0.0, min(e.end, b) - max(e.start, a)) for e in ev for a, b in t.spans)
            if ov > best_ov:
                best, best_ov = t, ov
        pos = o.positions.mean(axis=0)
        errs.append(float(np.linalg.norm(best.centroid - pos)) if best is not None else float("nan"))
    return errs
