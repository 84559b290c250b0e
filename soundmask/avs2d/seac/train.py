"""Unsupervised training of SeAC's association module (Sec. 2.4) from (frames, audio) pairs only.

No mask of the dataset is read: training sees each clip's frames and audio. Per clip, the frames' proposals and
local-global embeddings (frozen proposer and encoder) and the audio windows' patch embeddings are computed once
and cached next to the checkpoint (``<out>.features.pt``), so a second run or a resumed one starts at once.

Each epoch takes one active frame (its audio window sounds) of every clip, in random batches of ``batch_size``
(one frame per clip per batch, so no batch holds two windows of the same recording). With probability
``p_mix`` — ramped linearly from 0 to ``mix_max_prob`` (0.5) over the epochs, the paper's curriculum — a batch is
split into ``K = B/2`` random pairs whose waveforms are summed and re-embedded (audio mixing augmentation) and
the MSA-MICL loss (Eq. 8) is used; otherwise MICL (Eq. 6–7). AdamW (lr 1e-4, weight decay 0.01) with linear
decay; learnable temperature. The checkpoint is written after every epoch (atomically) together with the
optimiser state, and ``resume=True`` continues from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from soundmask.audio.io import resample
from soundmask.avs2d.audio import window_activity, window_embeddings
from soundmask.avs2d.base import check_inputs, frame_windows
from soundmask.avs2d.seac.checkpoint import checkpoint_dict, load_checkpoint
from soundmask.avs2d.seac.config import ProposerStageConfig, SeACConfig, SeACTrainConfig
from soundmask.avs2d.seac.losses import micl_loss, msa_micl_loss, random_groups, set_similarity
from soundmask.avs2d.seac.model import AssociationConfig, AssociationModule
from soundmask.data.io import atomic_path
from soundmask.errors import ConfigError, DataError

__all__ = ["ProposerStageConfig", "SeACTrainConfig", "TrainingFeatures", "extract_features", "train_seac"]

Progress = Callable[[str, int, int], None]


class FrozenStages(Protocol):
    """What training needs of a :class:`~soundmask.avs2d.seac.segmenter.SeAC` (passed in, so that this module does
    not import the segmenter): its options, frozen stages and categories, and the association it trains."""

    config: SeACConfig
    embedder: Any
    categories: tuple[str, ...]
    association: AssociationModule | None

    def segment_frames(self, frames: np.ndarray) -> list[tuple[Any, Any]]: ...


CALIBRATION_FRACTION = 0.1
"""Share of the training clips held out of training, with ``confidence_quantile``, to calibrate ``min_confidence``."""


@dataclass
class TrainingFeatures:
    """Cached inputs of the association module, one row per *active* frame.

    ``local``/``global_`` (M, N, D) float16 with ``valid`` (M, N) bool (zero-padded to N = top_n); ``audio``
    (M, P, Da) float32 patch embeddings of the frame's window; ``wave`` (M, L) float16 the window's mono
    waveform at ``sample_rate`` (zero-padded to L) with ``wave_len`` (M,); ``clip`` (M,) int the clip index."""

    local: torch.Tensor
    global_: torch.Tensor
    valid: torch.Tensor
    audio: torch.Tensor
    wave: torch.Tensor
    wave_len: torch.Tensor
    clip: torch.Tensor
    sample_rate: int
    key: dict[str, Any]

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            torch.save({k: getattr(self, k) for k in self.__dataclass_fields__}, tmp)

    def rows(self, keep: torch.Tensor) -> TrainingFeatures:
        """The rows where the (M,) bool ``keep`` is true (clip indices unchanged)."""
        per_row = ("local", "global_", "valid", "audio", "wave", "wave_len", "clip")
        return replace(self, **{k: getattr(self, k)[keep] for k in per_row})

    def split_clips(self, fraction: float, seed: int = 0) -> tuple[TrainingFeatures, TrainingFeatures]:
        """(rest, held): a seeded ``fraction`` of the clips (all their rows) held out, at least one clip each."""
        clips = torch.unique(self.clip)
        n = min(len(clips) - 1, max(1, int(round(fraction * len(clips)))))
        held = clips[torch.randperm(len(clips), generator=torch.Generator().manual_seed(seed))[:n]]
        mask = torch.isin(self.clip, held)
        return self.rows(~mask), self.rows(mask)

    @classmethod
    def load(cls, path: Path) -> TrainingFeatures | None:
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
            return cls(**d)
        except Exception:
            return None


class _Concat:
    """Several datasets read as one sequence of clips (e.g. ``--data s4 --data ms3``)."""

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts
        self.offsets = np.cumsum([0] + [len(p) for p in parts])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        k = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return self.parts[k][int(i - self.offsets[k])]


class _Pick:
    """The clips ``indices`` of ``dataset``, read lazily (``max_clips``: a seeded subset of every folder)."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset, self.indices = dataset, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[self.indices[i]]


def _subset(dataset: Any, max_clips: int) -> Any:
    """At most ``max_clips`` clips of ``dataset`` (0: all): a seeded draw over every folder, in order, so that
    ``--data s4 --data s4real --set max_clips=N`` sees both folders, not the first one only."""
    if not 0 < max_clips < len(dataset):
        return dataset
    from soundmask.avs2d.features import seeded_subset

    return _Pick(dataset, seeded_subset(len(dataset), max_clips))


def _feature_key(
    seac: FrozenStages, data: Path, split: str, max_clips: int, frames_per_clip: int = 0
) -> dict[str, Any]:
    c = seac.config
    return {
        "data": str(data.resolve()),
        "split": split,
        "max_clips": max_clips,
        "subset": "seeded",  # max_clips draws clips from every folder (before: the first max_clips)
        "frames_per_clip": frames_per_clip,
        "proposer": c.proposer,
        "proposer_path": c.proposer_path,
        "top_n": c.top_n,
        "encoder": c.encoder,
        "encoder_path": c.encoder_path,
        "view_size": c.view_size,
        "audio": c.audio,
        "audio_path": c.audio_path,
        "min_active": c.min_active,
    }


def extract_features(
    seac: FrozenStages, clips: Any, key: dict[str, Any], progress: Progress | None = None
) -> TrainingFeatures:
    """Run the frozen stages over every clip (frames + audio only; masks are never read); with
    ``key["frames_per_clip"]`` > 0, over at most that many of a clip's active frames (drawn with a fixed seed)."""
    top_n = seac.config.top_n
    per_clip = int(key.get("frames_per_clip", 0))
    pick_rng = np.random.default_rng(0)
    rows: dict[str, list[Any]] = {k: [] for k in ("local", "global_", "valid", "audio", "wave", "clip")}
    sr_out = int(getattr(seac.embedder, "sample_rate", 16000) or 16000)
    total = len(clips)
    for ci in range(total):
        clip = clips[ci]
        frames, audio = check_inputs(clip.frames, clip.audio, clip.sample_rate, clip.name)
        windows = frame_windows(len(frames), audio.shape[1], clip.sample_rate, clip.frame_times)
        active, _ = window_activity(audio, clip.sample_rate, windows, seac.config.min_active)
        if active.any():
            act = np.flatnonzero(active)
            if 0 < per_clip < len(act):
                act = np.sort(pick_rng.choice(act, per_clip, replace=False))
            visual = seac.segment_frames(frames[act])
            patches = window_embeddings(seac.embedder, audio, clip.sample_rate, [windows[t] for t in act])
            mono = audio.mean(0)
            for k, (t, p) in enumerate(zip(act, patches, strict=True)):
                w = windows[t]
                props, emb = visual[k]
                n = min(len(props), top_n)
                if n == 0:
                    continue
                loc = np.zeros((top_n, emb.local.shape[1]), np.float16)
                glo = np.zeros_like(loc)
                val = np.zeros(top_n, bool)
                loc[:n], glo[:n], val[:n] = emb.local[:n], emb.global_[:n], True
                wave = mono[w[0] : w[1]]
                if clip.sample_rate != sr_out:
                    wave = resample(wave, clip.sample_rate, sr_out)
                rows["local"].append(loc)
                rows["global_"].append(glo)
                rows["valid"].append(val)
                rows["audio"].append(np.asarray(p, np.float32))
                rows["wave"].append(np.asarray(wave, np.float32))
                rows["clip"].append(ci)
        if progress is not None:
            progress("features", ci + 1, total)
    if not rows["clip"]:
        raise DataError(
            "no clip has a frame with sound and at least one proposal",
            key["data"],
            "check the audio (is it silent?) and the frames",
        )
    P = max(a.shape[0] for a in rows["audio"])
    L = max(len(w) for w in rows["wave"])
    audio = np.stack([_pad_patches(a, P) for a in rows["audio"]])
    wave = np.zeros((len(rows["wave"]), L), np.float16)
    for i, w in enumerate(rows["wave"]):
        wave[i, : len(w)] = w
    return TrainingFeatures(
        torch.from_numpy(np.stack(rows["local"])),
        torch.from_numpy(np.stack(rows["global_"])),
        torch.from_numpy(np.stack(rows["valid"])),
        torch.from_numpy(audio),
        torch.from_numpy(wave),
        torch.tensor([len(w) for w in rows["wave"]]),
        torch.tensor(rows["clip"]),
        sr_out,
        key,
    )


def _pad_patches(e: np.ndarray, P: int) -> np.ndarray:
    """(P, D) float32: the patch embeddings ``e`` cut to ``P`` rows or padded by repeating the last one."""
    e = np.asarray(e, np.float32)
    return np.concatenate([e, np.repeat(e[-1:], max(0, P - len(e)), 0)])[:P]


def _mixed_patches(
    seac: FrozenStages, feats: TrainingFeatures, idx: torch.Tensor, groups: torch.Tensor, K: int
) -> torch.Tensor:
    """Audio mixing augmentation: ``a_k = Σ_{i∈K_k} a_i`` (waveforms), re-embedded → (K, P, Da)."""
    out = []
    P = feats.audio.shape[1]
    for k in range(K):
        members = idx[groups == k]
        n = int(feats.wave_len[members].max())
        mix = feats.wave[members, :n].float().sum(0).numpy()
        out.append(torch.from_numpy(_pad_patches(seac.embedder.embed(mix, feats.sample_rate).embeddings, P)))
    return torch.stack(out)


def _batches(feats: TrainingFeatures, batch: int, g: torch.Generator) -> list[torch.Tensor]:
    """One random active frame per clip, shuffled into batches (the last short batch is dropped if < 2)."""
    clips = feats.clip
    order = torch.randperm(len(clips), generator=g)
    seen: set[int] = set()
    pick = []
    for i in order.tolist():
        c = int(clips[i])
        if c not in seen:
            seen.add(c)
            pick.append(i)
    pick_t = torch.tensor(pick)
    out = [pick_t[b : b + batch] for b in range(0, len(pick_t), batch)]
    return [b for b in out if len(b) >= 2]


def train_seac(
    data: str | Path | list[str | Path],
    out: str | Path,
    config: SeACTrainConfig | None = None,
    seac_config: SeACConfig | None = None,
    resume: bool = True,
    progress: Progress | None = None,
    dataset: Any = None,
    *,
    segmenter: Callable[[SeACConfig, AssociationModule], FrozenStages],
) -> dict[str, Any]:
    """Train the association module on the AVSBench-layout dataset(s) or folders of generated scenes ``data``
    (frames + audio of ``split``). ``segmenter(seac_config, association)`` builds the frozen stages: the
    :class:`~soundmask.avs2d.seac.segmenter.SeAC` class, which ``SeAC.train`` passes."""
    cfg = config or SeACTrainConfig()
    sc = seac_config or SeACConfig()
    if sc.mode != "trained":
        raise ConfigError("only the trained mode has something to train", fix="drop --mode training-free")
    out = Path(out)
    roots = [Path(d) for d in (data if isinstance(data, (list, tuple)) else [data])]
    if dataset is None:
        from soundmask.avs2d.features import open_training_dataset

        dataset = _Concat([open_training_dataset(r, cfg.split) for r in roots])
    clips = _subset(dataset, cfg.max_clips)
    if len(clips) == 0:
        raise DataError(f"no clips in split {cfg.split!r}", roots[0], "pass --split with clips in it")
    data = roots[0] if len(roots) == 1 else Path(",".join(str(r.resolve()) for r in roots))
    torch.manual_seed(cfg.seed)
    model = AssociationModule(AssociationConfig())
    seac = segmenter(sc, model)
    key = _feature_key(seac, data, cfg.split, cfg.max_clips, cfg.frames_per_clip)
    cache = out.with_name(out.name + ".features.pt")
    feats = TrainingFeatures.load(cache) if cache.is_file() else None
    if feats is None or feats.key != key:
        feats = extract_features(seac, clips, key, progress)
        out.parent.mkdir(parents=True, exist_ok=True)
        feats.save(cache)
    calib = None
    if cfg.confidence_quantile > 0:
        # the floor is a quantile of frames the association never trained on: its own training frames score
        # higher cosines than new clips do (measured: median 0.63 on training frames, 0.27 on held-out renders)
        if len(torch.unique(feats.clip)) < 2:
            raise DataError("confidence_quantile needs at least 2 clips with sound", roots[0], "add clips")
        feats, calib = feats.split_clips(CALIBRATION_FRACTION, cfg.seed)
    model = AssociationModule(
        AssociationConfig(audio_dim=feats.audio.shape[-1], mask_dim=feats.local.shape[-1], layers=cfg.mask_layers)
    )
    seac.association = model
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(cfg.seed)
    steps_per_epoch = len(_batches(feats, cfg.batch_size, torch.Generator().manual_seed(0)))
    total_steps = max(1, cfg.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / total_steps))
    log: dict[str, Any] = {
        "config": asdict(cfg),
        "samples": int(len(feats.clip)),
        "clips": int(len(torch.unique(feats.clip))),
        "loss": [],
        "mix_prob": [],
        "tau": [],
    }
    start = 0
    if resume and out.is_file():
        old = load_checkpoint(out)
        calibrated = old.get("train_log", {}).get("min_confidence")  # set by confidence_quantile at the end
        want = asdict(sc if calibrated is None else replace(sc, min_confidence=calibrated))
        same = old.get("train_config") == asdict(cfg) and old.get("seac") == want
        if same and not old.get("train_state") and len(old.get("train_log", {}).get("loss", [])) == cfg.epochs:
            if progress is not None:
                progress("already trained (use --no-resume to train again)", cfg.epochs, cfg.epochs)
            return old["train_log"]
        if same and old.get("train_state"):
            model.load_state_dict(old["association"])
            opt.load_state_dict(old["train_state"]["optimizer"])
            sched.load_state_dict(old["train_state"]["scheduler"])
            g.set_state(old["train_state"]["generator"])
            torch.set_rng_state(old["train_state"]["torch_rng"])
            log = old["train_log"]
            start = len(log["loss"])
    t0 = time.time()
    lam = sc.lam
    noise = _noise_patches(seac, feats, cfg) if cfg.noise_negatives > 0 else None
    n_noise = int(round(cfg.noise_negatives * cfg.batch_size))
    for ep in range(start, cfg.epochs):
        model.train()
        p_mix = cfg.mix_max_prob * (ep / max(1, cfg.epochs - 1))
        total, count = 0.0, 0
        for idx in _batches(feats, cfg.batch_size, g):
            f = lam * feats.local[idx].float() + (1 - lam) * feats.global_[idx].float()
            valid = feats.valid[idx]
            masks = model.embed_masks(f, valid)
            B = len(idx)
            neg = None
            if noise is not None and n_noise > 0:
                pick = torch.randint(len(noise), (n_noise,), generator=g)
                neg = set_similarity(masks, valid, model.embed_audio(noise[pick]))
            if float(torch.rand(1, generator=g)) < p_mix and B >= 4:
                K = B // 2
                groups = random_groups(B, K, g)
                with torch.no_grad():
                    patches = _mixed_patches(seac, feats, idx, groups, K)
                a = model.embed_audio(patches)
                loss = msa_micl_loss(set_similarity(masks, valid, a), groups, model.tau, neg)
            else:
                a = model.embed_audio(feats.audio[idx])
                loss = micl_loss(set_similarity(masks, valid, a), model.tau, neg)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * B
            count += B
        log["loss"].append(total / max(1, count))
        log["mix_prob"].append(p_mix)
        log["tau"].append(float(model.tau.detach()))
        log["seconds"] = log.get("seconds", 0.0) + (time.time() - t0)
        t0 = time.time()
        state = {
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "generator": g.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        final = ep + 1 == cfg.epochs
        if final and cfg.confidence_quantile > 0:
            assert calib is not None
            sc = replace(sc, min_confidence=_confidence_floor(model, calib, lam, cfg.confidence_quantile))
            log["min_confidence"] = sc.min_confidence
            log["calibration_clips"] = sorted(int(c) for c in torch.unique(calib.clip))
        ckpt = checkpoint_dict(
            model.eval(),
            sc,
            seac.categories,
            train_log=log,
            train_config=asdict(cfg),
            train_state=None if final else state,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            torch.save(ckpt, tmp)
        if progress is not None:
            progress(
                f"epoch {ep + 1}/{cfg.epochs} loss {log['loss'][-1]:.3f} τ {log['tau'][-1]:.3f}", ep + 1, cfg.epochs
            )
    return log


def _noise_patches(seac: FrozenStages, feats: TrainingFeatures, cfg: SeACTrainConfig) -> torch.Tensor:
    """(Q, P, Da) patch embeddings of ambient-noise windows (:func:`soundmask.avs2d.negatives.noise_waves`), the
    length of a frame's window, embedded like the training audio."""
    from soundmask.avs2d.negatives import noise_waves

    sr, P = feats.sample_rate, feats.audio.shape[1]
    seconds = float(feats.wave_len.float().median()) / sr
    waves = noise_waves(sr, max(64, 2 * cfg.batch_size), seconds, cfg.seed + 1)
    return torch.stack([torch.from_numpy(_pad_patches(seac.embedder.embed(w, sr).embeddings, P)) for w in waves])


@torch.no_grad()
def _confidence_floor(model: AssociationModule, feats: TrainingFeatures, lam: float, quantile: float) -> float:
    """The ``quantile`` of the frames ``feats``' best cosine with their own audio (``max_n s_n``, the score that
    ``min_confidence`` thresholds): below it a frame is taken to hear none of its objects. ``feats``: clips held
    out of training (:data:`CALIBRATION_FRACTION`)."""
    model.eval()
    best = []
    for b in range(0, len(feats.clip), 256):
        sl = slice(b, b + 256)
        f = lam * feats.local[sl].float() + (1 - lam) * feats.global_[sl].float()
        valid = feats.valid[sl]
        masks = model.embed_masks(f, valid)
        a = model.embed_audio(feats.audio[sl])
        best.append(torch.diagonal(set_similarity(masks, valid, a)))
    return float(torch.quantile(torch.cat(best), quantile))


# ------------------------------------------------------------------------------------------ proposer stage
def synth_instance_images(
    cfg: ProposerStageConfig, progress: Progress | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """First frame and instance ids of generator scenes whose seed falls in the *train* split (the generator's
    val/test seeds are never seen), alternating presets."""
    from soundmask.synth.config import SynthConfig, split_of
    from soundmask.synth.generator import generate_scene

    images, ids = [], []
    seeds = [s for s in range(cfg.synth_seed, cfg.synth_seed + cfg.synth_count) if split_of(s) == "train"]
    for k, s in enumerate(seeds):
        preset = cfg.synth_presets[k % len(cfg.synth_presets)]
        sc = generate_scene(SynthConfig(preset=preset), s)  # type: ignore[arg-type]
        for t in sorted({0, len(sc.rgb) - 1}):
            if t == 0 or not np.array_equal(sc.rgb[t], sc.rgb[0]):
                images.append(sc.rgb[t])
                ids.append(sc.instances[t])
        if progress is not None:
            progress("generate", k + 1, len(seeds))
    return images, ids


def avsbench_instance_images(
    root: str | Path, split: str = "train", progress: Progress | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """First frame and instance ids of each ``split`` clip of an AVSBench-layout folder written by ``soundmask
    synth`` (its ``instance_masks/``), plus any later frame whose instances differ from the first's (a moving
    camera; frames that differ only by noise, as in the real-photo presets, add nothing)."""
    from soundmask.data.avsbench import AVSBenchDataset

    ds = AVSBenchDataset(root, split=split)
    images: list[np.ndarray] = []
    ids: list[np.ndarray] = []
    for i in range(len(ds)):
        clip = ds[i]
        if clip.instances is None:
            continue
        for k, im in enumerate(clip.frames):
            if k == 0 or not np.array_equal(clip.instances[k], clip.instances[0]):
                images.append(im)
                ids.append(clip.instances[k])
        if progress is not None:
            progress(f"read {Path(root).name}", i + 1, len(ds))
    if not images:
        raise DataError(
            f"no {split} clip with instance masks (instance_masks/<...>/objects.csv)",
            root,
            "generate the data with `soundmask synth --preset s4|ms3`, or pass *.npz instance images",
        )
    return images, ids


def npz_instance_images(folder: str | Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``rgb`` / ``ids`` arrays of every ``*.npz`` in ``folder``."""
    images, ids = [], []
    for f in sorted(Path(folder).glob("*.npz")):
        with np.load(f) as z:
            images.append(z["rgb"])
            ids.append(z["ids"])
    return images, ids


def train_proposer_stage(
    out: str | Path, cfg: ProposerStageConfig, data: Any = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Train :class:`~soundmask.vision.proposals.learned.LearnedProposer`'s decoder into ``out``.

    ``data``: None (generate training images in memory), or one or more folders, each either an AVSBench-layout
    folder written by ``soundmask synth`` (its train clips' instance masks) or a folder of ``*.npz`` files with
    ``rgb`` / ``ids`` arrays."""
    from soundmask.data.avsbench import detect_subset
    from soundmask.vision.proposals.learned import ProposerTrainConfig, train_proposer

    if data is None:
        images, ids = synth_instance_images(cfg, progress)
    else:
        images, ids = [], []
        for d in data if isinstance(data, (list, tuple)) else [data]:
            if any(Path(d).glob("*.npz")):
                im, i_ = npz_instance_images(d)
            else:
                try:
                    detect_subset(Path(d))
                except DataError as e:
                    raise DataError(
                        "neither *.npz instance images (arrays rgb, ids) nor an AVSBench-layout folder",
                        d,
                        "pass a folder written by `soundmask synth --preset s4|ms3`, or omit "
                        "--data to generate training images",
                    ) from e
                im, i_ = avsbench_instance_images(d, cfg.split, progress)
            images += im
            ids += i_
    tcfg = ProposerTrainConfig(epochs=cfg.proposer_epochs, lr=cfg.proposer_lr, init=cfg.proposer_init)
    return train_proposer(images, ids, out, tcfg, progress=progress)
