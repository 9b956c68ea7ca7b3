"""``SRLitModule``: trains any PSNR-oriented network (L1 or L2) and validates it under the paper protocol."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torchmetrics import MeanMetric

from srlab import metrics
from srlab.checkpoint import CheckpointError, net_state_dict, read_checkpoint
from srlab.resize import bicubic_upscale
from srlab.sr import network_input, super_resolve

LOSSES = {"l1": F.l1_loss, "l2": F.mse_loss}


def bicubic_baseline(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB-style bicubic upscaling of an RGB batch (the benchmark's bicubic row), same device/dtype."""
    out = [torch.from_numpy(np.array(bicubic_upscale(to_uint8(img), scale))).permute(2, 0, 1) for img in lr]
    return torch.stack(out).to(lr) / 255


def plain(cfg: Any) -> Any:
    """DictConfig -> plain containers, so checkpoints hold only types ``torch.load(weights_only=True)`` accepts."""
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def load_net_weights(net: nn.Module, ckpt_path: str) -> None:
    """Copy the network weights of a srlab checkpoint into ``net`` (fine-tuning: weights only, no
    optimizer or step). A checkpoint of another architecture or scale is a clear error."""
    weights = net_state_dict(read_checkpoint(ckpt_path))
    try:
        net.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(f"{ckpt_path} does not fit this network ({type(net).__name__}, x{net.scale}): {err}") from None


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """``3 x H x W`` float [0,1] -> ``H x W x 3`` uint8."""
    return img.detach().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


class SRLitModule(pl.LightningModule):
    """Batches are ``{"lr": N x 3 x h x w, "hr": N x 3 x sh x sw}``, RGB in [0, 1].

    ``net``, ``optimizer`` and ``scheduler`` are Hydra configs (``_target_``), instantiated here so that
    the checkpoint's hyper-parameters alone rebuild the model (``SRLitModule.load_from_checkpoint``).
    """

    def __init__(self, net: dict, optimizer: dict, scheduler: dict | None = None, loss: str = "l1",
                 init_from: str | None = None, channels_last: bool = True, log_images: int = 2,
                 name: str | None = None):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose from {sorted(LOSSES)}")
        self.save_hyperparameters({k: plain(v) for k, v in locals().items() if k not in ("self", "__class__")})
        self.net: nn.Module = instantiate(self.hparams.net)
        if init_from:
            load_net_weights(self.net, init_from)
        self.scale: int = self.net.scale
        self.loss_fn = LOSSES[loss]
        # channels_last measured 1.3-3x faster for these convnets on CPU (and helps tensor cores on GPU).
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        self.val_psnr, self.val_ssim = MeanMetric(), MeanMetric()
        self.val_bicubic_psnr = MeanMetric()  # the floor every network must beat, on the same images
        self.fp32_fallbacks = 0

    def _in_fp32_if_not_finite(self, compute: Callable[[], torch.Tensor], device: torch.device) -> torch.Tensor:
        """Run ``compute``; under bf16/fp16 autocast, redo it in fp32 when the result is NaN/inf.

        Half precision overflows in some of these networks (deep residual sums, sigmoid/ELU stacks);
        one bad step must not poison the weights or turn validation black, and fp32 is always right.
        """
        out = compute()
        if torch.isfinite(out).all() or not torch.is_autocast_enabled(device.type):
            return out
        self.fp32_fallbacks += 1
        if self.fp32_fallbacks == 1:
            warnings.warn("non-finite output in mixed precision: recomputing in fp32 (counted as train/fp32_fallbacks)",
                          stacklevel=2)
        with torch.autocast(device.type, enabled=False):
            return compute()

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        """LR RGB -> SR RGB, both ``N x 3 x H x W`` in [0, 1]."""
        lr = lr.contiguous(memory_format=self.memory_format)
        return self._in_fp32_if_not_finite(lambda: super_resolve(self.net, lr.float()), lr.device)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        lr = network_input(self.net, batch["lr"]).contiguous(memory_format=self.memory_format)
        hr = network_input(self.net, batch["hr"])
        loss = self._in_fp32_if_not_finite(lambda: self.loss_fn(self.net(lr).float(), hr.float()), lr.device)
        self.log("train/loss", loss, prog_bar=True)
        if self.fp32_fallbacks:
            self.log("train/fp32_fallbacks", float(self.fp32_fallbacks))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        sr = self(batch["lr"])
        gray = batch.get("gray", False)  # single-channel files are measured on their intensity
        psnr, ssim = metrics.psnr_ssim(sr, batch["hr"], crop=self.scale, gray=gray)
        self.val_psnr.update(psnr)
        self.val_ssim.update(ssim)
        bicubic = bicubic_baseline(batch["lr"], self.scale)
        self.val_bicubic_psnr.update(metrics.psnr(bicubic, batch["hr"], crop=self.scale, gray=gray))
        if batch_idx < self.hparams.log_images:
            self._log_images(batch, sr, bicubic, batch_idx)

    def on_validation_epoch_end(self) -> None:
        self.log("val/psnr", self.val_psnr.compute(), prog_bar=True)
        self.log("val/ssim", self.val_ssim.compute())
        self.log("val/bicubic_psnr", self.val_bicubic_psnr.compute())
        for metric in (self.val_psnr, self.val_ssim, self.val_bicubic_psnr):
            metric.reset()

    def _log_images(self, batch: dict, sr: torch.Tensor, bicubic: torch.Tensor, batch_idx: int) -> None:
        log_image = getattr(self.logger, "log_image", None)  # W&B has it; CSV does not
        if log_image is None or self.trainer.sanity_checking:
            return
        crops = [t[0, :, :256, :256].float().cpu() for t in (bicubic, sr, batch["hr"])]
        log_image(key=f"val/sample_{batch_idx}", images=crops, caption=["bicubic", "SR", "HR"], step=self.global_step)

    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.hparams.optimizer, params=self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        scheduler = instantiate(self.hparams.scheduler, optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
