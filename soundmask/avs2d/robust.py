"""``soundmask evaluate --robust``: does a 2D segmenter *listen*, or segment the visually salient object whatever
it hears? (Li et al. 2025, "Do Audio-Visual Segmentation Models Truly Segment Sounding Objects?", AVSBench-Robust.)

Every clip of a split is segmented again under up to five audio conditions (the frames never change):

* ``original`` — its own audio: pooled J/F (and AVSBench's mIoU/F, batch size 1) as ``evaluate``, and
  ``empty_predicted_on_empty``;
* ``silence`` — zeros;
* ``noise`` — noise at the RMS of the clip's audio: white/pink/brown (seeded) and real ambience recordings
  (:mod:`soundmask.audio.noise`), one source per clip in turn (from a seeded start), scores kept per source;
* ``offscreen`` — the audio of another clip of the split whose S4 category is *not* among this clip's object
  categories (``instance_categories``; the clip's category when it has no instance data), scored in the frames
  where that donor sounds (its sound mask is not empty) — elsewhere it would be a silence test;
* ``swap`` — the audio of another *visible, silent* object of the clip: its own recording
  (``clip.object_audio[id]``) when the clip has one, else the audio of another clip of the split whose S4
  category is that object's. The target is the object's instance mask, in the frames where it is visible and the
  donor's audio sounds (the donor's ground truth is not empty, or its recording's window is not quiet).
  An object is *sounding* when more than half of its mask lies in the sound mask in some annotated frame, and a
  swap never targets an object of a sounding category (its audio could not tell the two apart).

Metrics: for the negatives (silence, noise, offscreen) ``negative_empty`` = fraction of frames predicted empty (no
pixel > 0.5); for swap ``swap_moved`` / ``swap_stayed`` = fraction of swap frames whose mask has IoU ≥ 0.5 with
the target object / with the original sound mask, and the pooled J/F against the target. One ``score``: the
harmonic mean of the original pooled J and the mean ``negative_empty`` of the negatives evaluated.

The random choices (noise offsets and order, donors, swap objects) are drawn per clip and per condition from
``seed``, so a report is reproducible and a condition's numbers do not depend on which others were asked for.
Pattern: :class:`RobustConditions` builds the audio (:class:`Trial`), a score per condition accumulates
sufficient statistics (``update``) and ``compute`` returns small typed results gathered in a :class:`RobustReport`.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from soundmask.audio.noise import NoiseSource, fit_audio, noise_like, noise_sources, rms
from soundmask.avs2d.base import Segmenter, frame_windows
from soundmask.avs2d.evaluate import ClipScores
from soundmask.errors import ConfigError, DataError
from soundmask.metrics.pooled import PooledJF

__all__ = [
    "CONDITIONS",
    "NEGATIVE_CONDITIONS",
    "ClipInfo",
    "ConditionResult",
    "NegativeResult",
    "NegativeScore",
    "OriginalResult",
    "OriginalScore",
    "RobustConditions",
    "RobustReport",
    "SourceResult",
    "SwapCase",
    "SwapResult",
    "SwapScore",
    "Trial",
    "evaluate_robust",
    "listening_score",
    "parse_conditions",
    "silent_objects",
    "sounding_objects",
]

CONDITIONS = ("original", "silence", "noise", "offscreen", "swap")
NEGATIVE_CONDITIONS = ("silence", "noise", "offscreen")
MIN_OBJECT_AREA = 0.005  # fraction of the frame an object must cover to count as visible in it
HIT_IOU = 0.5  # a mask "is on" an object when their IoU reaches this


def parse_conditions(conditions: str | Iterable[str] | None) -> tuple[str, ...]:
    """The conditions named in ``conditions`` (comma-separated text or names; None: all), in canonical order."""
    if conditions is None:
        return CONDITIONS
    names = conditions.split(",") if isinstance(conditions, str) else list(conditions)
    names = [n.strip().lower() for n in names if n.strip()]
    bad = [n for n in names if n not in CONDITIONS]
    if bad:
        raise ConfigError(f"unknown condition {bad[0]!r}", fix=f"use some of {','.join(CONDITIONS)}")
    if not names:
        raise ConfigError("no condition given", fix=f"use some of {','.join(CONDITIONS)}")
    return tuple(c for c in CONDITIONS if c in names)


def listening_score(original_j: float, negative_empty: Sequence[float]) -> float:
    """Harmonic mean of the original pooled J and the mean of ``negative_empty`` (NaN when either is missing)."""
    neg = [float(v) for v in negative_empty if np.isfinite(v)]
    if not neg or not np.isfinite(original_j):
        return float("nan")
    a, b = float(original_j), float(np.mean(neg))
    return 2 * a * b / (a + b) if a + b > 0 else 0.0


# ------------------------------------------------------------------------------------------------ objects
def _valid(clip: Any) -> np.ndarray:
    return clip.mask_valid if clip.mask_valid is not None else np.ones(len(clip.frames), bool)


def sounding_objects(clip: Any) -> set[int]:
    """Ids of the objects that have more than half of their mask inside the sound mask in some annotated frame."""
    if clip.instances is None or clip.masks is None:
        return set()
    out: set[int] = set()
    for t in np.flatnonzero(_valid(clip)):
        inst, gt = clip.instances[t], clip.masks[t]
        ids, area = np.unique(inst, return_counts=True)
        inside = dict(zip(*np.unique(inst[gt], return_counts=True), strict=True))
        out.update(int(o) for o, a in zip(ids, area, strict=True) if o != 0 and inside.get(o, 0) > a / 2)
    return out


def silent_objects(clip: Any, min_area: float = MIN_OBJECT_AREA) -> list[int]:
    """Ids of the visible (≥ ``min_area`` of a frame) objects that are not sounding and whose category is neither
    the clip's nor a sounding object's."""
    if clip.instances is None:
        return []
    sounding = sounding_objects(clip)
    cats = clip.instance_categories
    loud = {cats.get(o, "") for o in sounding} | {clip.category}
    loud.discard("")
    T = len(clip.instances)
    ids, out = np.unique(clip.instances), []
    for o in ids.tolist():
        if o == 0 or o in sounding or cats.get(o, "") in loud:
            continue
        if ((clip.instances == o).reshape(T, -1).mean(1) >= min_area).any():
            out.append(int(o))
    return out


@dataclass(frozen=True)
class ClipInfo:
    """What the conditions of *other* clips need to know of a clip: its S4 ``category``, the ``categories`` it
    shows (its objects', or its own when it has no instance data), whether it has instance masks, and ``active``:
    per frame, whether it sounds (its sound mask is not empty; where the frame has no ground truth, its audio
    window is not quiet)."""

    name: str
    category: str
    categories: frozenset[str]
    has_instances: bool
    active: tuple[bool, ...]

    @classmethod
    def of(cls, clip: Any) -> ClipInfo:
        cats = frozenset(v for v in clip.instance_categories.values() if v) or frozenset({clip.category} - {""})
        loud = _sounding_windows(clip.audio, clip)
        if clip.masks is not None:
            valid = _valid(clip)
            loud = np.where(valid, clip.masks.reshape(len(valid), -1).any(1), loud)
        return cls(clip.name, clip.category, cats, clip.instances is not None, tuple(bool(v) for v in loud))

    def frames(self, n: int) -> np.ndarray:
        """``active`` for ``n`` frames (False past this clip's own frames)."""
        a = self.active[:n]
        return np.array(a + (False,) * (n - len(a)), bool)


# ------------------------------------------------------------------------------------------------- trials
@dataclass
class Trial:
    """A clip's audio under one condition. ``source`` names where the audio came from (``own``, ``zeros``, a noise
    source, ``<category>:<clip>`` or ``object_audio:<id>``); ``frames`` (T,) bool: the frames that count (None:
    all; ``offscreen`` and ``swap``: those where the played sound sounds); for ``swap``, ``target`` (T, H, W) is
    the object's instance mask and ``object_id`` / ``category`` the object (``offscreen``: the donor's category)."""

    condition: str
    audio: np.ndarray
    source: str
    target: np.ndarray | None = None
    frames: np.ndarray | None = None
    object_id: int = 0
    category: str = ""


class RobustConditions:
    """The audio of every condition for the clips of ``dataset`` (a split), deterministic given ``seed``.

    Construction reads the split once when ``offscreen`` or ``swap`` is asked for (donors come from the other
    clips) and raises a :class:`DataError` when the data cannot support a condition (no S4 category for
    ``offscreen``, no instance masks for ``swap``). :meth:`trial` gives a clip's audio under a condition, or None
    when the clip has no usable donor / object for it.
    """

    def __init__(
        self,
        dataset: Sequence[Any],
        conditions: str | Iterable[str] | None = None,
        seed: int = 0,
        noise: Sequence[NoiseSource] | None = None,
        data: str = "",
    ) -> None:
        self.dataset = dataset
        self.conditions = parse_conditions(conditions)
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.where = data or None
        if len(dataset) == 0:
            raise DataError("the dataset has no clips", self.where, "check --split")
        self.noise = list(noise) if noise is not None else (noise_sources() if "noise" in self.conditions else [])
        if "noise" in self.conditions and not self.noise:
            raise ConfigError("the noise condition needs at least one noise source")
        self._noise_shift = int(np.random.default_rng([self.seed]).integers(max(1, len(self.noise))))
        self.infos: list[ClipInfo] = []
        self.by_category: dict[str, list[int]] = defaultdict(list)
        if "offscreen" in self.conditions or "swap" in self.conditions:
            self.infos = [ClipInfo.of(dataset[i]) for i in range(len(dataset))]
            for i, info in enumerate(self.infos):
                if info.category:
                    self.by_category[info.category].append(i)
        if "offscreen" in self.conditions and not self.by_category:
            raise DataError(
                "the offscreen condition needs each clip's category (S4), this data has none",
                self.where,
                "drop offscreen from --conditions or evaluate S4 data",
            )
        if "swap" in self.conditions and not any(c.has_instances for c in self.infos):
            raise DataError(
                "the swap condition needs every object's instance mask (instance_masks/), this data has none",
                self.where,
                "drop swap from --conditions or evaluate generated data (`soundmask synth`)",
            )

    def rng(self, i: int, condition: str) -> np.random.Generator:
        """The random stream of clip ``i`` under ``condition``."""
        return np.random.default_rng([self.seed, i, CONDITIONS.index(condition)])

    def noise_source(self, i: int) -> NoiseSource:
        """The noise source of clip ``i``: the sources in turn from a seeded start."""
        return self.noise[(i + self._noise_shift) % len(self.noise)]

    def trial(self, condition: str, i: int, clip: Any) -> Trial | None:
        """Clip ``i`` (``clip`` = ``dataset[i]``) under ``condition``; None when it has nothing usable for it."""
        if condition not in CONDITIONS:
            raise ConfigError(f"unknown condition {condition!r}", fix=f"use one of {','.join(CONDITIONS)}")
        rng = self.rng(i, condition)
        if condition == "original":
            return Trial(condition, clip.audio, "own")
        if condition == "silence":
            return Trial(condition, np.zeros_like(clip.audio), "zeros")
        if condition == "noise":
            src = self.noise_source(i)
            return Trial(condition, noise_like(src, clip.audio, clip.sample_rate, rng), src.name)
        if condition == "offscreen":
            return self._offscreen(i, clip, rng)
        return self._swap(i, clip, rng)

    def _donor_audio(self, j: int, like: Any) -> np.ndarray:
        """Clip ``j``'s audio fitted to ``like``'s rate, channels and length."""
        ds = self.dataset
        if hasattr(ds, "audio_path"):  # AVSBench: only the wav, not the frames
            from soundmask.data.io import read_audio

            audio, sr = read_audio(ds.audio_path(j))
        else:
            donor = ds[j]
            audio, sr = donor.audio, donor.sample_rate
        C, S = like.audio.shape
        return fit_audio(audio, sr, like.sample_rate, C, S)

    def _offscreen(self, i: int, clip: Any, rng: np.random.Generator) -> Trial | None:
        shown, T = self.infos[i].categories, len(clip.frames)
        donors = [
            j
            for j, d in enumerate(self.infos)
            if j != i and d.category and d.category not in shown and d.frames(T).any()
        ]
        if not donors:
            return None
        j = donors[int(rng.integers(len(donors)))]
        d = self.infos[j]
        audio = self._donor_audio(j, clip)
        return Trial("offscreen", audio, f"{d.category}:{d.name}", frames=d.frames(T), category=d.category)

    def _swap(self, i: int, clip: Any, rng: np.random.Generator) -> Trial | None:
        if clip.instances is None or clip.masks is None:
            return None
        own = getattr(clip, "object_audio", {}) or {}
        T = len(clip.frames)
        options = []
        for o in silent_objects(clip):
            cat = clip.instance_categories.get(o, "")
            if o in own or [j for j in self.by_category.get(cat, []) if j != i]:
                options.append((o, cat))
        for k in rng.permutation(len(options)).tolist():
            o, cat = options[k]
            if o in own:
                audio = fit_audio(own[o], clip.sample_rate, clip.sample_rate, *clip.audio.shape)
                active = _sounding_windows(audio, clip)
                source = f"object_audio:{o}"
            else:
                donors = [j for j in self.by_category[cat] if j != i]
                j = donors[int(rng.integers(len(donors)))]
                audio = self._donor_audio(j, clip)
                active = self.infos[j].frames(T)
                source = f"{cat}:{self.infos[j].name}"
            target = clip.instances == o
            frames = active & (target.reshape(T, -1).mean(1) >= MIN_OBJECT_AREA)
            if frames.any():
                return Trial("swap", audio, source, target=target, frames=frames, object_id=o, category=cat)
        return None


def _sounding_windows(audio: np.ndarray, clip: Any, rel: float = 0.05, floor: float = 1e-4) -> np.ndarray:
    """(T,) bool: the frames whose audio window has an RMS above ``rel`` × the loudest window's (and ``floor``)."""
    wins = frame_windows(len(clip.frames), audio.shape[1], clip.sample_rate, clip.frame_times)
    r = np.array([rms(audio[:, s0:s1]) for s0, s1 in wins])
    return r > max(floor, rel * float(r.max(initial=0.0)))


# ------------------------------------------------------------------------------------------------ results
@dataclass
class ConditionResult:
    """What every condition reports: clips scored and skipped (no usable donor / object), frames scored, and the
    segmenter's throughput on them (prediction time only)."""

    condition: str
    clips: int
    skipped_clips: int
    frames: int
    seconds: float
    frames_per_second: float


@dataclass
class OriginalResult(ConditionResult):
    pooled_j: float
    pooled_f: float
    miou: float
    fscore: float
    empty_frames: int
    empty_predicted_on_empty: float
    per_category: dict[str, dict[str, float]]


@dataclass
class SourceResult:
    """One audio source of a negative condition: clips and frames it was played on, the fraction predicted empty."""

    clips: int
    frames: int
    negative_empty: float


@dataclass
class NegativeResult(ConditionResult):
    negative_empty: float
    by_source: dict[str, SourceResult]


@dataclass
class SwapCase:
    """One swapped clip: the target object, where its audio came from, and per counted frame whether the mask
    moved to it / stayed on the originally sounding object."""

    clip: str
    object_id: int
    category: str
    source: str
    frames: int
    moved: int
    stayed: int


@dataclass
class SwapResult(ConditionResult):
    swap_moved: float
    swap_stayed: float
    pooled_j: float
    pooled_f: float
    cases: list[SwapCase]


@dataclass
class RobustReport:
    """``results``: condition → its result (in the order asked); ``score``: :func:`listening_score`."""

    method: str
    data: str
    split: str
    seed: int
    clips: int
    conditions: tuple[str, ...]
    results: dict[str, ConditionResult]
    score: float
    frames_per_second: float
    seconds: float
    noise_sources: list[NoiseSource]
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------------- scores
def _checked(masks: Any, shape: tuple[int, ...] | None, condition: str) -> np.ndarray:
    """``masks`` as float32 (T, H, W) probabilities of ``shape`` (any T×H×W when None); DataError otherwise."""
    p = np.asarray(masks)
    if p.ndim != 3 or (shape is not None and p.shape != shape):
        raise DataError(f"{condition}: predicted masks have shape {p.shape}, expected {shape or 'T×H×W'}")
    if not np.issubdtype(p.dtype, np.floating) and p.dtype != bool:
        raise DataError(f"{condition}: predicted masks must be probabilities, got {p.dtype}")
    p = p.astype(np.float32, copy=False)
    if not np.isfinite(p).all() or p.min(initial=0) < 0 or p.max(initial=0) > 1:
        raise DataError(f"{condition}: predicted masks must be finite probabilities in [0, 1]")
    return p


def _empty(p: np.ndarray) -> np.ndarray:
    return np.asarray(~(p > 0.5).reshape(len(p), -1).any(1))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / u) if u else 1.0


class _Score:
    def __init__(self, condition: str) -> None:
        self.condition = condition
        self.clips = 0
        self.skipped = 0
        self.predicted = 0
        self.seconds = 0.0

    def skip(self) -> None:
        """Count a clip that has no usable audio for this condition."""
        self.skipped += 1

    def timed(self, frames: int, seconds: float) -> None:
        """Count ``frames`` predicted in ``seconds``."""
        self.predicted += int(frames)
        self.seconds += float(seconds)

    def _base(self, frames: int) -> dict[str, Any]:
        fps = self.predicted / self.seconds if self.seconds > 0 else float("nan")
        return {
            "condition": self.condition, "clips": self.clips, "skipped_clips": self.skipped, "frames": frames,
            "seconds": self.seconds, "frames_per_second": fps,
        }  # fmt: skip


class OriginalScore(_Score):
    """The original audio: :class:`~soundmask.avs2d.evaluate.ClipScores` (pooled J/F as ``evaluate``)."""

    def __init__(self) -> None:
        super().__init__("original")
        self.scores = ClipScores(batch_size=1)

    def update(self, clip: Any, masks: Any) -> None:
        """Add one clip's predicted masks (T, H, W) under its own audio."""
        self.scores.update(clip, _checked(masks, clip.frames.shape[:3], self.condition))
        self.clips += 1

    def compute(self) -> OriginalResult:
        s = self.scores.compute()
        return OriginalResult(
            **self._base(s["frames"]), pooled_j=s["pooled_j"], pooled_f=s["pooled_f"], miou=s["miou"],
            fscore=s["fscore"], empty_frames=s["empty_frames"],
            empty_predicted_on_empty=s["empty_predicted_on_empty"], per_category=s["per_category"],
        )  # fmt: skip


class NegativeScore(_Score):
    """A negative condition (nothing visible sounds): every frame should be predicted empty."""

    def __init__(self, condition: str) -> None:
        super().__init__(condition)
        self._by_source: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # clips, frames, empty

    def update(self, masks: Any, source: str = "", frames: np.ndarray | None = None) -> None:
        """Add one clip's predicted masks (T, H, W) under audio from ``source``; ``frames`` (T,) bool: the frames
        that count (default all; ``offscreen``: those where the donor sounds)."""
        p = _checked(masks, None, self.condition)
        if frames is not None:
            f = np.asarray(frames, bool)
            if f.shape != (len(p),):
                raise DataError(f"{self.condition}: {f.shape} frame flags for {len(p)} frames")
            p = p[f]
        s = self._by_source[source]
        s[0] += 1
        s[1] += len(p)
        s[2] += int(_empty(p).sum())
        self.clips += 1

    def compute(self) -> NegativeResult:
        frames = sum(v[1] for v in self._by_source.values())
        empty = sum(v[2] for v in self._by_source.values())
        by = {
            k: SourceResult(v[0], v[1], v[2] / v[1] if v[1] else float("nan"))
            for k, v in sorted(self._by_source.items())
        }
        return NegativeResult(
            **self._base(frames), negative_empty=empty / frames if frames else float("nan"), by_source=by
        )


class SwapScore(_Score):
    """The swap condition: does the mask move to the object whose sound is played?"""

    def __init__(self) -> None:
        super().__init__("swap")
        self.pooled = PooledJF(from_logits=False)
        self.cases: list[SwapCase] = []

    def update(
        self, masks: Any, target: np.ndarray, original: np.ndarray, frames: np.ndarray, *, clip: str = "",
        object_id: int = 0, category: str = "", source: str = "",
    ) -> None:  # fmt: skip
        """Add one clip: predicted ``masks`` (T, H, W), the ``target`` object's masks, the ``original`` sound masks
        and the ``frames`` (T,) bool that count."""
        tgt = np.asarray(target, bool)
        p = _checked(masks, tgt.shape, self.condition)
        orig = np.asarray(original, bool)
        f = np.asarray(frames, bool)
        if orig.shape != tgt.shape or f.shape != (len(tgt),):
            raise DataError(f"swap: target {tgt.shape}, original {orig.shape} and frames {f.shape} do not match")
        if not f.any():
            return
        hit = p[f] > 0.5
        moved = sum(_iou(h, t) >= HIT_IOU for h, t in zip(hit, tgt[f], strict=True))
        stayed = sum(o.any() and _iou(h, o) >= HIT_IOU for h, o in zip(hit, orig[f], strict=True))
        self.pooled.update(p[f], tgt[f])
        self.cases.append(SwapCase(clip, int(object_id), category, source, int(f.sum()), int(moved), int(stayed)))
        self.clips += 1

    def compute(self) -> SwapResult:
        n = sum(c.frames for c in self.cases)
        pj = self.pooled.compute()
        return SwapResult(
            **self._base(n),
            swap_moved=sum(c.moved for c in self.cases) / n if n else float("nan"),
            swap_stayed=sum(c.stayed for c in self.cases) / n if n else float("nan"),
            pooled_j=float(pj["j"]), pooled_f=float(pj["f"]), cases=list(self.cases),
        )  # fmt: skip


# ----------------------------------------------------------------------------------------------- evaluate
def evaluate_robust(
    segmenter: Segmenter,
    dataset: Sequence[Any],
    conditions: str | Iterable[str] | RobustConditions | None = None,
    *,
    seed: int = 0,
    noise: Sequence[NoiseSource] | None = None,
    data: str = "",
    split: str = "",
    progress: Callable[[int, int], None] | None = None,
    options: dict[str, Any] | None = None,
) -> RobustReport:
    """Score ``segmenter`` on every clip of ``dataset`` under ``conditions`` (default: all five; see the module
    docstring). ``noise``: the noise sources (default :func:`~soundmask.audio.noise.noise_sources`).
    ``conditions`` may also be a ready :class:`RobustConditions` of ``dataset`` (then ``seed`` and ``noise`` are its
    own), e.g. to fail on unsupported data before loading a model."""
    if isinstance(conditions, RobustConditions):
        if conditions.dataset is not dataset:
            raise ConfigError("the RobustConditions were built for another dataset")
        conds = conditions
    else:
        conds = RobustConditions(dataset, conditions, seed, noise, data)
    scores: dict[str, Any] = {}
    for c in conds.conditions:
        scores[c] = OriginalScore() if c == "original" else SwapScore() if c == "swap" else NegativeScore(c)
    n = len(dataset)
    for i in range(n):
        clip = dataset[i]
        if "original" in scores and clip.masks is None:
            raise DataError(f"clip {clip.name} has no ground-truth masks", conds.where, "evaluate a split with masks")
        for c in conds.conditions:
            trial = conds.trial(c, i, clip)
            sc = scores[c]
            if trial is None:
                sc.skip()
                continue
            t0 = time.perf_counter()
            pred = segmenter.predict(clip.frames, trial.audio, clip.sample_rate, clip.frame_times)
            sc.timed(len(clip.frames), time.perf_counter() - t0)
            if c == "original":
                sc.update(clip, pred.masks)
            elif c == "swap":
                assert trial.target is not None and trial.frames is not None and clip.masks is not None
                sc.update(
                    pred.masks, trial.target, clip.masks & _valid(clip)[:, None, None], trial.frames,
                    clip=clip.name, object_id=trial.object_id, category=trial.category, source=trial.source,
                )  # fmt: skip
            else:
                sc.update(pred.masks, trial.source, trial.frames)
        if progress is not None:
            progress(i + 1, n)
    results = {c: s.compute() for c, s in scores.items()}
    seconds = sum(s.seconds for s in scores.values())
    frames = sum(s.predicted for s in scores.values())
    orig = results.get("original")
    negatives = [results[c].negative_empty for c in NEGATIVE_CONDITIONS if c in results]  # type: ignore[attr-defined]
    return RobustReport(
        method=getattr(segmenter, "name", type(segmenter).__name__),
        data=str(data),
        split=split,
        seed=conds.seed,
        clips=n,
        conditions=conds.conditions,
        results=results,
        score=listening_score(orig.pooled_j if isinstance(orig, OriginalResult) else float("nan"), negatives),
        frames_per_second=frames / seconds if seconds > 0 else float("nan"),
        seconds=seconds,
        noise_sources=list(conds.noise),
        options=dict(options or {}),
    )
