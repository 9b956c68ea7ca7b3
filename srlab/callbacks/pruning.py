"""One-shot weight pruning on top of Lightning's ``ModelPruning``.

The seed study zeroed 10% of the weights at random once and kept training. ``ModelPruning`` does the
pruning, masking and "make permanent in checkpoints" work; this subclass only decides *what* and
*when*: the generator's conv/linear weights (never BatchNorm scales, PReLU slopes or a frozen VGG),
once, after ``prune_at_epoch``, without the lottery-ticket reset, and it logs the measured sparsity.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelPruning
from torch import nn
from torch.nn.utils import prune

PRUNABLE = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def prunable_weights(net: nn.Module) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in net.modules() if isinstance(m, PRUNABLE)]


def sparsity(net: nn.Module) -> float:
    """Fraction of exactly-zero entries over the prunable weights (what is really saved/exported)."""
    zeros = total = 0
    for module, name in prunable_weights(net):
        w = getattr(module, name)
        zeros += int((w == 0).sum())
        total += w.numel()
    return zeros / max(total, 1)


class OneShotPruning(ModelPruning):
    def __init__(self, pruning_fn: str = "random_unstructured", amount: float = 0.1, prune_at_epoch: int = 0):
        if not 0.0 < amount < 1.0:
            raise ValueError(f"pruning amount must be in (0, 1), got {amount}")
        self.prune_at_epoch = prune_at_epoch
        super().__init__(
            pruning_fn=pruning_fn,
            amount=amount,
            apply_pruning=lambda epoch: epoch == prune_at_epoch,
            use_global_unstructured=False,  # the seed pruned each layer by the same fraction
            use_lottery_ticket_hypothesis=False,  # keep the trained weights; don't rewind to init
            make_pruning_permanent=True,
            verbose=0,
        )

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._parameters_to_prune = prunable_weights(pl_module.net)
        super().setup(trainer, pl_module, stage)

    def _apply_local_pruning(self, amount: float) -> None:
        # torch.nn.utils.prune flattens weights with .view(-1), which fails on the channels_last
        # weights SRLitModule uses: prune a contiguous copy, then give the reparametrised weight
        # (``<name>_orig``, same Parameter object as before) and its mask the original layout back.
        for module, name in self._parameters_to_prune:
            weight = getattr(module, name)
            layout = torch.channels_last if weight.dim() == 4 and not weight.is_contiguous() else torch.contiguous_format
            weight.data = weight.data.contiguous()
            self.pruning_fn(module, name=name, amount=amount)
            orig = getattr(module, f"{name}_orig")
            orig.data = orig.data.contiguous(memory_format=layout)
            setattr(module, f"{name}_mask", getattr(module, f"{name}_mask").contiguous(memory_format=layout))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # A resumed run loads permanent (mask-free) weights: re-mask the zeros so they stay zero.
        if trainer.current_epoch > self.prune_at_epoch:
            for module, name in self._parameters_to_prune:
                prune.custom_from_mask(module, name, mask=(getattr(module, name) != 0).to(torch.float32))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        pl_module.log("train/sparsity", sparsity(pl_module.net))
