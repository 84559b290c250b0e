"""The shared trainer: resume reaches the same weights, the best validated weights are kept, the time budget,
patience, and checkpoints with NaNs are refused with a one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from soundmask.avs2d.trainer import TrainConfig, fit_phase, read_checkpoint, write_checkpoint
from soundmask.errors import ConfigError

from _training import StopTraining, stop_after_epochs

X = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
Y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.3


def _task():
    model = torch.nn.Linear(3, 1)

    def batches(g):
        perm = torch.randperm(64, generator=g)
        return [perm[b : b + 16] for b in range(0, 64, 16)]

    def loss(idx):
        return ((model(X[idx])[:, 0] - Y[idx]) ** 2).mean(), len(idx)

    return model, batches, loss


def test_training_lowers_the_loss_and_writes_a_finished_phase(tmp_path):
    model, batches, loss = _task()
    cfg = TrainConfig(epochs=15, lr=0.05, val_split="")
    log = fit_phase("p", model, batches, loss, cfg, tmp_path / "m.pt", {"kind": "toy"})
    assert log["loss"][-1] < 0.2 * log["loss"][0]
    ck = read_checkpoint(tmp_path / "m.pt", "toy")
    assert ck["phases"]["p"]["train_state"] is None and len(ck["phases"]["p"]["log"]["loss"]) == 15


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path):
    cfg = TrainConfig(epochs=6, lr=0.05)
    model, batches, loss = _task()
    full = fit_phase("p", model, batches, loss, cfg, tmp_path / "full.pt", {"kind": "toy"})

    model2, batches2, loss2 = _task()
    with pytest.raises(StopTraining):
        fit_phase(
            "p", model2, batches2, loss2, cfg, tmp_path / "part.pt", {"kind": "toy"}, progress=stop_after_epochs(3)
        )
    model3, batches3, loss3 = _task()
    resumed = fit_phase("p", model3, batches3, loss3, cfg, tmp_path / "part.pt", {"kind": "toy"})
    assert resumed["loss"] == pytest.approx(full["loss"], rel=1e-6)
    assert torch.allclose(model3.weight, model.weight, atol=1e-6)
    # a finished phase is not trained again
    model4, batches4, loss4 = _task()
    again = fit_phase("p", model4, batches4, loss4, cfg, tmp_path / "part.pt", {"kind": "toy"})
    assert again["loss"] == resumed["loss"] and torch.allclose(model4.weight, model3.weight)


def test_the_best_validated_weights_are_kept_and_patience_stops(tmp_path):
    model, batches, loss = _task()
    scores = iter([0.1, 0.9, 0.2, 0.3, 0.4, 0.5])
    snapshots = []

    def validate():
        snapshots.append(model.weight.detach().clone())
        return next(scores)

    log = fit_phase(
        "p",
        model,
        batches,
        loss,
        TrainConfig(epochs=6, lr=0.05, patience=2),
        tmp_path / "m.pt",
        {"kind": "toy"},
        validate=validate,
    )
    assert log["best_epoch"] == 1 and len(log["loss"]) == 4 and "no improvement" in log["stopped"]
    assert torch.allclose(model.weight, snapshots[1])


def test_max_minutes_stops_after_the_first_epoch(tmp_path):
    model, batches, loss = _task()
    log = fit_phase(
        "p", model, batches, loss, TrainConfig(epochs=50, max_minutes=1e-9), tmp_path / "m.pt", {"kind": "toy"}
    )
    assert len(log["loss"]) == 1 and "max_minutes" in log["stopped"]


def test_bad_checkpoints_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        read_checkpoint(tmp_path / "missing.pt", "toy")
    (tmp_path / "junk.pt").write_text("junk")
    with pytest.raises(ConfigError, match="cannot read"):
        read_checkpoint(tmp_path / "junk.pt", "toy")
    write_checkpoint(tmp_path / "other.pt", {"kind": "other"})
    with pytest.raises(ConfigError, match="not a toy checkpoint"):
        read_checkpoint(tmp_path / "other.pt", "toy")
    write_checkpoint(
        tmp_path / "nan.pt", {"kind": "toy", "phases": {"p": {"weights": {"w": torch.tensor([float("nan")])}}}}
    )
    with pytest.raises(ConfigError, match="NaN"):
        read_checkpoint(Path(tmp_path / "nan.pt"), "toy")


def test_phases_share_one_checkpoint_and_retraining_one_drops_its_dependents(tmp_path):
    out = tmp_path / "m.pt"
    cfg = TrainConfig(epochs=2, lr=0.05)
    m1, b1, l1 = _task()
    fit_phase("first", m1, b1, l1, cfg, out, {"kind": "toy"}, invalidates=("second",))
    m2, b2, l2 = _task()
    fit_phase("second", m2, b2, l2, cfg, out, {"kind": "toy"}, resume=False)
    assert set(read_checkpoint(out, "toy")["phases"]) == {"first", "second"}  # --no-resume keeps the others
    m3, b3, l3 = _task()
    fit_phase("first", m3, b3, l3, TrainConfig(epochs=3, lr=0.05), out, {"kind": "toy"}, invalidates=("second",))
    assert set(read_checkpoint(out, "toy")["phases"]) == {"first"}


def test_a_run_stopped_by_max_minutes_continues_with_a_larger_budget(tmp_path):
    out = tmp_path / "m.pt"
    m1, b1, l1 = _task()
    first = fit_phase("p", m1, b1, l1, TrainConfig(epochs=5, lr=0.05, max_minutes=1e-9), out, {"kind": "toy"})
    assert len(first["loss"]) == 1
    m2, b2, l2 = _task()
    same_budget = fit_phase("p", m2, b2, l2, TrainConfig(epochs=5, lr=0.05, max_minutes=1e-9), out, {"kind": "toy"})
    assert len(same_budget["loss"]) == 1  # the budget is spent: nothing more
    m3, b3, l3 = _task()
    more = fit_phase("p", m3, b3, l3, TrainConfig(epochs=5, lr=0.05), out, {"kind": "toy"})
    m4, b4, l4 = _task()
    straight = fit_phase("p", m4, b4, l4, TrainConfig(epochs=5, lr=0.05), tmp_path / "s.pt", {"kind": "toy"})
    assert more["loss"] == pytest.approx(straight["loss"], rel=1e-6)


def test_init_fine_tunes_from_a_checkpoint_and_refuses_one_that_does_not_fit(tmp_path):
    model, batches, loss = _task()
    first = fit_phase(
        "p", model, batches, loss, TrainConfig(epochs=15, lr=0.05, val_split=""), tmp_path / "a.pt", {"kind": "toy"}
    )
    model2, batches2, loss2 = _task()
    tuned = fit_phase(
        "p",
        model2,
        batches2,
        loss2,
        TrainConfig(epochs=1, lr=1e-6, init=str(tmp_path / "a.pt")),
        tmp_path / "b.pt",
        {"kind": "toy"},
    )
    # starts where the first run ended: the first epoch's loss is the first run's last, not a random start's
    assert tuned["loss"][0] < 2 * first["loss"][-1] < first["loss"][0]
    with pytest.raises(ConfigError, match="no trained 'q' phase"):
        fit_phase("q", *_task(), TrainConfig(epochs=1, init=str(tmp_path / "a.pt")), tmp_path / "c.pt", {"kind": "toy"})
    wide = torch.nn.Linear(4, 1)
    with pytest.raises(ConfigError, match="do not fit"):
        fit_phase(
            "p",
            wide,
            batches,
            lambda i: (wide(torch.cat([X[i], X[i, :1]], 1)).pow(2).mean(), len(i)),
            TrainConfig(epochs=1, init=str(tmp_path / "a.pt")),
            tmp_path / "d.pt",
            {"kind": "toy"},
        )
    with pytest.raises(ConfigError, match="not a sdavs checkpoint"):
        fit_phase(
            "p", *_task(), TrainConfig(epochs=1, init=str(tmp_path / "a.pt")), tmp_path / "e.pt", {"kind": "sdavs"}
        )
