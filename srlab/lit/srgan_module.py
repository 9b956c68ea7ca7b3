"""``SRGANModule``: the adversarial stage of SRGAN (Ledig et al., CVPR 2017).

The generator (``self.net``, an SRResNet) starts from a trained SRResNet-MSE checkpoint (``init_from``)
and is trained against :class:`srlab.models.SRGANDiscriminator` (``self.discriminator``) with

    g_loss = content_weight * MSE(phi(SR), phi(HR))                    content ("VGG54") loss
           + adversarial_weight * BCEWithLogits(D(SR), real)             adversarial loss (-log D(G(LR)))
           + pixel_weight * loss(SR, HR)                                 optional pixel loss (off by default)
    d_loss = BCEWithLogits(D(HR), real) + BCEWithLogits(D(SR.detach()), fake)

``phi`` is the frozen VGG19 of :class:`srlab.models.VGGFeatureExtractor` (``self.vgg``). The paper rescales
the VGG feature maps by 1/12.75, "equivalent to multiplying [the VGG loss] with a rescaling factor of
~0.006"; this module does the latter: ``content_weight = 0.006`` multiplies the MSE of unscaled features
((1/12.75)^2 = 0.00615). ``adversarial_weight = 1e-3`` is the paper's. ``content_weight = 0`` with
``pixel_weight = 1`` is the paper's SRGAN-MSE variant, which needs no VGG (none is built).

Training uses Lightning manual optimization: per batch one discriminator step, then one generator step
(the discriminator frozen through ``toggled_optimizer``). The discriminator step is not counted in
``trainer.global_step``, so ``max_steps``, ``every_n_train_steps`` and the logs count batches, as for
every other model (Lightning otherwise counts both optimizers' steps: Lightning-AI/pytorch-lightning#17958).
Manual optimization steps no scheduler: the G and D schedulers (epoch interval) are stepped here after
the last batch of every epoch, where Lightning steps them for SRLitModule. Lightning checkpoints both
optimizers and schedulers, so ``trainer.fit(ckpt_path=...)`` resumes all of them.

Validation, inference (``forward``) and the channels-last layout are :class:`SRLitModule`'s. The VGG is
built at the start of ``fit`` (``setup``), not in ``__init__``, and is never part of the state dict: it is
fixed ImageNet weights, so a checkpoint loads for evaluation or export on a machine without them (and
without re-reading the ``init_from`` checkpoint).
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from pytorch_lightning.utilities import rank_zero_warn
from torch import nn

from srlab.lit.sr_module import SRLitModule, load_net_weights, plain
from srlab.sr import network_input

#: The paper's discriminator; ``pool_size: 1`` is the lighter global-average variant (18.9 M fewer parameters).
DEFAULT_DISCRIMINATOR: dict[str, Any] = {"_target_": "srlab.models.SRGANDiscriminator", "pool_size": 6}
#: The paper's phi_{5,4}: VGG19 features after the 4th conv (and its ReLU) before the 5th max pool.
DEFAULT_VGG: dict[str, Any] = {"_target_": "srlab.models.VGGFeatureExtractor", "layer": "relu5_4",
                               "pretrained": True, "weights_path": None}
#: The paper: Adam, beta1 = 0.9, lr 1e-4 (then 1e-5), for G and D alike.
DEFAULT_D_OPTIMIZER: dict[str, Any] = {"_target_": "torch.optim.Adam", "lr": 1.0e-4, "betas": [0.9, 0.999]}

# Set while ``load_from_checkpoint`` builds a module: the checkpoint's weights replace the ``init_from``
# weights anyway, so that file is not read (it may not exist where the checkpoint is evaluated).
_LOADING_CHECKPOINT: contextvars.ContextVar[bool] = contextvars.ContextVar("srgan_loading_checkpoint", default=False)


@contextlib.contextmanager
def _not_counted(optimizer: Any) -> Iterator[None]:
    """Step ``optimizer`` (a ``LightningOptimizer``) without advancing ``trainer.global_step``.

    In manual optimization Lightning counts every optimizer step into ``global_step``: the hooks that do
    it are set on each ``LightningOptimizer`` by the manual-optimization loop for every batch; swap them
    for no-ops around the discriminator step only.
    """
    before, after = getattr(optimizer, "_on_before_step", None), getattr(optimizer, "_on_after_step", None)
    if before is None or after is None:  # not a LightningOptimizer (or Lightning changed): plain step
        yield
        return
    optimizer._on_before_step = optimizer._on_after_step = lambda: None
    try:
        yield
    finally:
        optimizer._on_before_step, optimizer._on_after_step = before, after


class SRGANModule(SRLitModule):
    """SRGAN training. Batches and ``forward`` as :class:`SRLitModule`; ``net`` is the generator.

    Args (beyond :class:`SRLitModule`'s, all plain dicts / numbers so checkpoints rebuild the module):
        net: generator config (``srlab.models.build_model`` with ``name: srgan`` = SRResNet).
        optimizer, scheduler: generator optimizer and (epoch) scheduler configs; ``scheduler`` may be empty.
        loss: pixel loss (``l2`` = MSE, ``l1``), used only when ``pixel_weight > 0``.
        init_from: a trained SRResNet checkpoint (any srlab checkpoint of the same architecture); weights
            only. Empty: a warning at the start of training, as SRGAN is meant to start from SRResNet-MSE.
        discriminator: discriminator config (default: the paper's :class:`SRGANDiscriminator`).
        vgg: :class:`VGGFeatureExtractor` config (default ``relu5_4`` = the paper's VGG54, ImageNet weights:
            downloaded into torch hub's cache, or ``weights_path``; a clear error when offline).
        d_optimizer, d_scheduler: discriminator optimizer (default Adam 1e-4, betas (0.9, 0.999)) and scheduler.
        content_weight, adversarial_weight, pixel_weight: loss weights (paper: 0.006, 1e-3, 0).
    """

    def __init__(self, net: dict, optimizer: dict, scheduler: dict | None = None, loss: str = "l2",
                 init_from: str | None = None, channels_last: bool = True, log_images: int = 2,
                 name: str | None = None, discriminator: dict | None = None, vgg: dict | None = None,
                 d_optimizer: dict | None = None, d_scheduler: dict | None = None,
                 content_weight: float | None = 0.006, adversarial_weight: float | None = 1.0e-3,
                 pixel_weight: float | None = 0.0):
        # Nulls (absent config keys) mean the defaults; the checkpoint records the resolved values.
        hparams = {k: plain(v) for k, v in locals().items() if k not in ("self", "__class__")}
        hparams["discriminator"] = hparams["discriminator"] or copy.deepcopy(DEFAULT_DISCRIMINATOR)
        hparams["vgg"] = hparams["vgg"] or copy.deepcopy(DEFAULT_VGG)
        hparams["d_optimizer"] = hparams["d_optimizer"] or copy.deepcopy(DEFAULT_D_OPTIMIZER)
        hparams["scheduler"] = hparams["scheduler"] or None
        hparams["d_scheduler"] = hparams["d_scheduler"] or None
        for key, default in (("content_weight", 0.006), ("adversarial_weight", 1.0e-3), ("pixel_weight", 0.0)):
            hparams[key] = float(default if hparams[key] is None else hparams[key])
        # SRLitModule instantiates the generator, checks ``loss``, sets channels-last and the metrics.
        super().__init__(net=hparams["net"], optimizer=hparams["optimizer"], scheduler=hparams["scheduler"],
                         loss=loss, init_from=None, channels_last=channels_last, log_images=log_images, name=name)
        self.save_hyperparameters(hparams)  # updates SRLitModule's (init_from and the GAN keys)
        self.automatic_optimization = False
        if init_from and not _LOADING_CHECKPOINT.get():
            load_net_weights(self.net, init_from)
        self.discriminator: nn.Module = instantiate(self.hparams.discriminator)
        self.discriminator.to(memory_format=self.memory_format)
        # The VGG (built in setup("fit")) is fixed ImageNet weights, not a trained part of the model: it
        # is held outside the module tree, so it is in no state dict, optimizer or model summary, and
        # Lightning does not see its modules (always in eval mode) as "modules in eval mode at the start
        # of training". _apply moves and casts it with the module.
        self._loss_nets: list[nn.Module] = []

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls, checkpoint_path: Any, *args: Any, **kwargs: Any
    ) -> SRGANModule:
        """As Lightning's; the ``init_from`` checkpoint is not read (the weights come from this one)."""
        token = _LOADING_CHECKPOINT.set(True)
        try:
            return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)
        finally:
            _LOADING_CHECKPOINT.reset(token)

    # --- the VGG loss network -----------------------------------------------------------------------------

    @property
    def vgg(self) -> nn.Module | None:
        """The frozen VGG19 feature extractor of the content loss; ``None`` until ``setup("fit")``."""
        return self._loss_nets[0] if self._loss_nets else None

    def setup(self, stage: str) -> None:
        # content_weight = 0 is the paper's SRGAN-MSE (pixel MSE + adversarial): no VGG, so no ImageNet
        # weights to download.
        if stage == "fit" and self.vgg is None and self.hparams.content_weight:
            vgg = instantiate(self.hparams.vgg)
            for p in vgg.parameters():  # VGGFeatureExtractor freezes itself; any other loss net too
                p.requires_grad_(False)
            self._loss_nets.append(vgg.eval().to(device=self.device, memory_format=self.memory_format))

    def _apply(self, fn: Any, recurse: bool = True) -> SRGANModule:
        super()._apply(fn, recurse)  # .to(device / dtype / memory_format), .cuda(), .half(), ...
        for net in getattr(self, "_loss_nets", ()):  # (absent while SRLitModule.__init__ runs)
            net._apply(fn)
        return self

    def on_fit_start(self) -> None:
        if not self.hparams.init_from and self.global_step == 0:
            rank_zero_warn(
                "SRGANModule: init_from is empty, so the SRGAN generator starts from random weights. SRGAN "
                "should start from a trained SRResNet (SRResNet-MSE, as in the paper): train one first with "
                "`python train.py model=srresnet ...`, then `python train.py model=srgan "
                "model.init_from=<run>/checkpoints/<best>.ckpt`."
            )

    # --- training ---------------------------------------------------------------------------------------

    def training_step(self, batch: dict, batch_idx: int) -> None:
        if self.vgg is None and self.hparams.content_weight:
            raise RuntimeError("SRGANModule.vgg is built in setup('fit'); train it with a Trainer")
        g_opt, d_opt = self.optimizers()
        hp = self.hparams
        lr = network_input(self.net, batch["lr"]).contiguous(memory_format=self.memory_format)
        hr = network_input(self.net, batch["hr"]).contiguous(memory_format=self.memory_format)
        sr = self.net(lr)

        # Discriminator: real HR -> 1, SR -> 0 (the generator is not differentiated here).
        with self.toggled_optimizer(d_opt):
            real_logits = self.discriminator(hr)
            fake_logits = self.discriminator(sr.detach())
            d_loss = (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                      + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
            d_opt.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            with _not_counted(d_opt):
                d_opt.step()

        # Generator: content + adversarial (+ pixel); the discriminator's parameters are frozen here.
        with self.toggled_optimizer(g_opt):
            if hp.content_weight:
                with torch.no_grad():
                    hr_features = self.vgg(hr)
                content = F.mse_loss(self.vgg(sr), hr_features)
            else:
                content = sr.new_zeros(())
            g_logits = self.discriminator(sr)
            adversarial = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
            g_loss = hp.content_weight * content + hp.adversarial_weight * adversarial
            if hp.pixel_weight:
                pixel = self.loss_fn(sr, hr)
                g_loss = g_loss + hp.pixel_weight * pixel
                self.log("train/pixel", pixel.detach())
            g_opt.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            g_opt.step()

        self.log("train/g_loss", g_loss.detach(), prog_bar=True)
        self.log("train/d_loss", d_loss.detach(), prog_bar=True)
        self.log("train/content", content.detach())
        self.log("train/adversarial", adversarial.detach())
        self.log("train/d_real_acc", (real_logits.detach() > 0).float().mean())
        self.log("train/d_fake_acc", (fake_logits.detach() < 0).float().mean())
        if self._last_batch_of_epoch(batch_idx):
            self._step_epoch_schedulers()

    def _last_batch_of_epoch(self, batch_idx: int) -> bool:
        progress = self.trainer.fit_loop.epoch_loop.batch_progress
        return batch_idx + 1 >= self.trainer.num_training_batches or bool(progress.is_last_batch)

    def _step_epoch_schedulers(self) -> None:
        """Step the G and D schedulers where Lightning steps epoch schedulers in automatic optimization
        (SRLitModule's): after the epoch's last batch, before its ``on_train_batch_end`` callbacks,
        validation and checkpoints, so that a checkpoint taken then, and a run resumed from it, are in
        the same state as for the other models."""
        for config in self.trainer.lr_scheduler_configs:
            if (self.current_epoch + 1) % config.frequency == 0:
                self.lr_scheduler_step(config.scheduler, None)

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        g_opt = instantiate(hp.optimizer, params=self.net.parameters())
        d_opt = instantiate(hp.d_optimizer, params=self.discriminator.parameters())
        schedulers = []
        for tag, opt, cfg in (("G", g_opt, hp.scheduler), ("D", d_opt, hp.d_scheduler)):
            if cfg:
                # "interval"/"name" are for LearningRateMonitor (lr-G, lr-D); training_step steps them.
                scheduler = instantiate(cfg, optimizer=opt)
                schedulers.append({"scheduler": scheduler, "interval": "epoch", "name": f"lr-{tag}"})
        return [g_opt, d_opt], schedulers


__all__ = ["SRGANModule"]
