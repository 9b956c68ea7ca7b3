"""The wall-clock learning-rate schedule of experiment=budget (srlab.callbacks.time_budget_lr)."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from pytorch_lightning.callbacks import Timer
from torch.utils.data import DataLoader, TensorDataset

from srlab.callbacks.time_budget_lr import TimeBudgetLR
from _train_utils import compose_cfg


def test_factor_is_flat_then_cosine_to_the_final_factor():
    cb = TimeBudgetLR(warm_fraction=0.2, final_factor=0.01)
    assert cb.factor(0.0) == 1.0 and cb.factor(0.2) == 1.0
    assert cb.factor(0.6) == pytest.approx(0.01 + 0.99 * 0.5)  # half-way through the decay
    assert cb.factor(1.0) == pytest.approx(0.01)
    values = [cb.factor(f / 100) for f in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


@pytest.mark.parametrize("kwargs", [{"warm_fraction": 1.0}, {"final_factor": -0.1}, {"final_factor": 2}])
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError, match="TimeBudgetLR"):
        TimeBudgetLR(**kwargs)


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.lrs: list[float] = []

    def training_step(self, batch, batch_idx):
        self.lrs.append(self.trainer.optimizers[0].param_groups[0]["lr"])
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(64, 2)), batch_size=4)


def test_rate_follows_the_budget_lightning_s_timer_reports(monkeypatch):
    # A fake clock: every finished step "takes" one second of a ten-second budget.
    module = Tiny()
    monkeypatch.setattr(Timer, "time_elapsed", lambda self, stage="train": float(module.global_step))
    cb = TimeBudgetLR(final_factor=0.1)
    trainer = pl.Trainer(max_time=timedelta(seconds=10), max_epochs=-1, callbacks=[cb], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, loader())
    assert trainer.global_step == 10  # the Timer stopped training at the end of the budget
    expected = [0.5 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / 10))) for step in range(10)]
    assert module.lrs == pytest.approx(expected)


def test_without_a_time_budget_it_fails_at_the_start():
    trainer = pl.Trainer(max_steps=2, callbacks=[TimeBudgetLR()], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(ValueError, match="max_time"):
        trainer.fit(Tiny(), loader())


def test_budget_experiment_sets_the_time_limit_and_the_schedule(tmp_path):
    cfg = compose_cfg(["experiment=budget", "budget_minutes=3", "model=fsrcnn"], tmp_path / "run")
    assert instantiate(cfg.trainer.max_time) == timedelta(minutes=3)
    assert cfg.trainer.max_epochs == -1
    assert cfg.group == "budget_3m"
    assert isinstance(instantiate(cfg.callbacks.time_budget_lr), TimeBudgetLR)
    assert cfg.callbacks.final.filename == "final"
    assert cfg.scheduler == {}  # the callback owns the rate; no epoch scheduler on top
