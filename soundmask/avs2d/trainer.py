"""The shared trainer of the supervised 2D methods (AVSC, SDAVS): typed config, deterministic seeding, AdamW with
linear decay, a checkpoint after every epoch with everything needed to resume, progress with loss and
throughput, early validation (the best validated weights are what the final checkpoint holds), a patience
and a wall-clock budget (``max_minutes``).

A method trains one or more **phases** (AVSC: the potential-object network, then the audio branch; SDAVS: one).
Each phase lives under ``checkpoint["phases"][name]`` as ``{"weights", "log", "train_state"}``; a finished
phase has ``train_state = None`` and is skipped on a re-run (``resume``), an unfinished one continues where it
stopped with the same optimiser, scheduler and random state, so an interrupted run reaches the same weights.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from soundmask.config import option
from soundmask.data.io import atomic_path
from soundmask.errors import ConfigError

__all__ = ["TrainConfig", "fit_phase", "read_checkpoint", "write_checkpoint"]

Progress = Callable[[str, int, int], None]


@dataclass
class TrainConfig:
    """Options shared by every supervised method's ``soundmask train`` (``--set KEY=VALUE``)."""

    epochs: int = option(30, "training epochs")
    batch_size: int = option(16, "frames (AVSC) or clips (SDAVS) per batch")
    lr: float = option(5e-4, "AdamW learning rate (linearly decayed to 0)")
    weight_decay: float = option(0.01, "AdamW weight decay")
    split: str = option("train", "dataset split to train on")
    val_split: str = option("val", "split for early validation after every epoch ('' to skip)")
    max_clips: int = option(0, "use at most this many training clips (0: all)")
    val_clips: int = option(0, "use at most this many validation clips (0: all)")
    max_minutes: float = option(0.0, "stop a phase after this many minutes of training (0: no limit)")
    patience: int = option(0, "stop a phase when validation has not improved for this many epochs (0: never)")
    cache_dir: str | None = option(None, "folder for the cached frozen features (default: beside --out)")
    seed: int = option(0, "random seed (initialisation, batches)")
    init: str | None = option(
        None,
        "start each phase from this checkpoint's weights for it (fine-tuning); same method and architecture options",
    )

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be >= 1")
        if self.lr <= 0 or self.max_minutes < 0 or self.patience < 0:
            raise ConfigError("lr must be > 0; max_minutes and patience >= 0")


def read_checkpoint(path: Path, kind: str) -> dict[str, Any]:
    """The checkpoint at ``path`` (a dict with ``kind``); :class:`ConfigError` naming the file otherwise."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise ConfigError(
            f"{kind} checkpoint not found", path, f"train one with `soundmask train --method {kind}`"
        ) from e
    except Exception as e:
        raise ConfigError(
            f"cannot read the checkpoint ({type(e).__name__}: {' '.join(str(e).split())[:160]})",
            path,
            f"pass a file written by `soundmask train --method {kind}`",
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("kind") != kind:
        raise ConfigError(f"not a {kind} checkpoint", path, f"pass a file written by `soundmask train --method {kind}`")
    from soundmask.avs2d.base import check_finite_checkpoint

    check_finite_checkpoint({name: phase.get("weights") or {} for name, phase in ckpt.get("phases", {}).items()}, path)
    return ckpt


def write_checkpoint(path: Path, ckpt: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def init_weights(model: torch.nn.Module, path: Path, kind: str, phase: str) -> None:
    """Load the weights that the ``kind`` checkpoint ``path`` holds for ``phase`` into ``model`` (``--set init``)."""
    weights = (read_checkpoint(path, kind).get("phases", {}).get(phase) or {}).get("weights")
    if not weights:
        raise ConfigError(
            f"the checkpoint has no trained {phase!r} phase",
            path,
            f"pass a finished `soundmask train --method {kind}` checkpoint as init",
        )
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        first = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), "")[:160]
        raise ConfigError(
            f"its {phase!r} weights do not fit this model ({first})",
            path,
            "fine-tune with the architecture --set options, and data with the categories, that the "
            "init checkpoint was trained with",
        ) from e


def fit_phase(
    name: str,
    model: torch.nn.Module,
    batches: Callable[[torch.Generator], Iterable[Any]],
    loss_fn: Callable[[Any], tuple[torch.Tensor, int]],
    cfg: TrainConfig,
    out: Path,
    base: dict[str, Any],
    validate: Callable[[], float] | None = None,
    resume: bool = True,
    progress: Progress | None = None,
    params: Iterable[torch.nn.Parameter] | None = None,
    invalidates: tuple[str, ...] = (),
    identity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``model`` for phase ``name`` and write it into the checkpoint ``out`` (``base`` holds the other keys:
    kind, configs...). ``batches(generator)`` yields one epoch's batches; ``loss_fn(batch)`` returns (loss,
    number of items); ``validate()`` scores the current model (higher is better). The other phases already in
    ``out`` are kept, except those named in ``invalidates`` (phases built on this one), which are dropped when
    this phase trains. ``resume=False`` retrains this phase from scratch. ``identity`` (default: the training
    config) is what a stored phase must match to be resumed or skipped: pass the model options the phase
    depends on too. Returns the phase's log."""
    budget_keys = ("max_minutes", "patience", "cache_dir")  # when to stop / where to cache, not what is learnt
    ident = {"train": {k: v for k, v in asdict(cfg).items() if k not in budget_keys}, **(identity or {})}
    ckpt: dict[str, Any] = {**base, "phases": {}}
    if out.is_file():
        try:
            old = torch.load(out, map_location="cpu", weights_only=True)
        except Exception:
            old = None
        if isinstance(old, dict) and old.get("kind") == base.get("kind"):
            ckpt["phases"] = dict(old.get("phases", {}))
    phase: dict[str, Any] = (ckpt["phases"].get(name) or {}) if resume else {}  # {}: no stored phase
    same = phase.get("config") == ident
    spent = same and cfg.max_minutes and phase["log"]["seconds"] >= 60 * cfg.max_minutes
    if same and (phase.get("train_state") is None or spent):
        model.load_state_dict(phase["weights"])
        if progress is not None:
            progress(f"{name}: already trained (use --no-resume to train again)", 1, 1)
        return phase["log"]
    for later in invalidates:
        ckpt["phases"].pop(later, None)
    if cfg.init:
        init_weights(model, Path(cfg.init), str(base.get("kind")), name)
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    params = list(params) if params is not None else [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, sum(1 for _ in batches(torch.Generator().manual_seed(cfg.seed))))
    total = cfg.epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1.0 - s / total))
    log: dict[str, Any] = {"loss": [], "val": [], "seconds": 0.0, "best_epoch": -1, "stopped": ""}
    best: dict[str, Any] | None = None
    best_score = -float("inf")
    if same and phase.get("train_state"):
        st = phase["train_state"]
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        g.set_state(st["generator"])
        torch.set_rng_state(st["torch_rng"])
        log = phase["log"]
        best = phase["weights"]
        best_score = st["best_score"]
    start = len(log["loss"])
    step = start * steps_per_epoch
    for ep in range(start, cfg.epochs):
        model.train()
        t0 = time.perf_counter()
        run, items = 0.0, 0
        for batch in batches(g):
            loss, n = loss_fn(batch)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            sched.step()
            step += 1
            run += float(loss.detach()) * n
            items += n
            if progress is not None:
                rate = items / max(1e-6, time.perf_counter() - t0)
                progress(
                    f"{name} epoch {ep + 1}/{cfg.epochs} loss {run / max(1, items):.3f} {rate:.0f} items/s", step, total
                )
        log["loss"].append(run / max(1, items))
        model.eval()
        score = float(validate()) if validate is not None else -log["loss"][-1]
        log["val"].append(score)
        log["seconds"] += time.perf_counter() - t0
        if score > best_score:
            best_score, best = score, copy.deepcopy(model.state_dict())
            log["best_epoch"] = ep
        stop = ""
        if cfg.max_minutes and log["seconds"] >= 60 * cfg.max_minutes:
            stop = f"max_minutes ({cfg.max_minutes}) reached after epoch {ep + 1}"
        elif cfg.patience and ep - log["best_epoch"] >= cfg.patience:
            stop = f"no improvement for {cfg.patience} epochs after epoch {ep + 1}"
        log["stopped"] = stop
        # a run stopped by max_minutes keeps its state: rerun with a larger budget to continue it
        final = ep + 1 == cfg.epochs or (bool(stop) and not stop.startswith("max_minutes"))
        state = (
            None
            if final
            else {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "generator": g.get_state(),
                "torch_rng": torch.get_rng_state(),
                "best_score": best_score,
            }
        )
        ckpt["phases"][name] = {"weights": best, "log": log, "train_state": state, "config": ident}
        write_checkpoint(out, ckpt)
        if progress is not None:
            progress(f"{name} epoch {ep + 1}/{cfg.epochs} loss {log['loss'][-1]:.3f} val {score:.3f}", step, total)
        if stop:
            break
    assert best is not None
    model.load_state_dict(best)
    return log
