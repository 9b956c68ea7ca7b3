"""Learning-rate decay over a wall-clock budget (``trainer.max_time``) instead of a step count.

When every network gets the same minutes, nobody knows in advance how many steps each one will take,
so an epoch- or step-based schedule would decay too early for fast networks and never for slow ones.
Lightning has no time-based schedule; this callback sets each parameter group's rate from the fraction
of the budget that Lightning's own ``Timer`` (the one ``max_time`` creates) reports as spent. The Timer
keeps its elapsed time in checkpoints, so a resumed run continues the schedule where it stopped.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Timer


def budget_fraction(trainer: pl.Trainer) -> float:
    """Fraction (0-1) of ``trainer.max_time`` spent so far; raises if the trainer has no time budget."""
    for callback in trainer.callbacks:
        if isinstance(callback, Timer) and callback._duration:
            return min(1.0, callback.time_elapsed() / callback._duration)
    raise ValueError("TimeBudgetLR needs a time budget: set trainer.max_time (e.g. budget_minutes=10 in "
                     "experiment=budget)")


class TimeBudgetLR(pl.Callback):
    """Keep the initial rate for ``warm_fraction`` of the budget, then cosine-decay it to
    ``final_factor`` x initial at the end of the budget.

    Args:
        warm_fraction: share of the budget at the full rate (0 = decay from the start).
        final_factor: rate at the end of the budget, relative to the initial rate.
    """

    def __init__(self, warm_fraction: float = 0.0, final_factor: float = 0.01):
        if not 0.0 <= warm_fraction < 1.0 or not 0.0 <= final_factor <= 1.0:
            raise ValueError(f"TimeBudgetLR: warm_fraction must be in [0, 1) and final_factor in [0, 1], "
                             f"got {warm_fraction} and {final_factor}")
        self.warm_fraction, self.final_factor = warm_fraction, final_factor

    def factor(self, fraction: float) -> float:
        if fraction <= self.warm_fraction:
            return 1.0
        progress = (fraction - self.warm_fraction) / (1.0 - self.warm_fraction)
        return self.final_factor + (1.0 - self.final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        budget_fraction(trainer)  # fail at the start, not silently run at a constant rate
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])  # restored from the checkpoint on resume

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        factor = self.factor(budget_fraction(trainer))
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * factor
