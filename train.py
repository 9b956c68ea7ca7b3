"""Train one SR network, or sweep many: ``python train.py -m model=srcnn,vdsr optimizer=adam,rmsprop``.

Composes ``conf/train.yaml``, instantiates data, model, callbacks, loggers and trainer with Hydra,
then fits (resuming exactly from ``ckpt_path`` when given). Returns the best validation PSNR, which
Hydra sweepers can optimise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import hydra
import pytorch_lightning as pl
from pytorch_lightning.callbacks import LearningRateMonitor
from hydra.utils import instantiate
from omegaconf import DictConfig

from srlab.runtime import configure_torch

log = logging.getLogger("srlab.train")


def instantiate_all(nodes: DictConfig | None) -> list:
    """Instantiate every ``_target_`` node of a group (callbacks, loggers); empty groups give []."""
    return [instantiate(node) for node in (nodes or {}).values() if isinstance(node, DictConfig) and "_target_" in node]


def train(cfg: DictConfig, extra_callbacks: Sequence[pl.Callback] = ()) -> dict[str, Any]:
    """Fit one run described by a composed ``train.yaml`` (the body of ``main``; tests call it with
    Hydra's compose API). Returns ``best_psnr`` and the live ``trainer``, ``module`` and ``datamodule``."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    threads = configure_torch(cfg.threads, data_workers=datamodule.num_workers)
    module = instantiate(cfg.module, **cfg.model.get("module_kwargs", {}))  # e.g. SRGAN's discriminator and VGG
    callbacks = instantiate_all(cfg.callbacks) + list(extra_callbacks)
    if cfg.pruning and "_target_" in cfg.pruning:
        callbacks.append(instantiate(cfg.pruning))
    loggers = instantiate_all(cfg.logger)
    if not loggers:  # logger=none: nothing to monitor the learning rate into (Lightning would refuse)
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    log.info("run %s: %s threads, output in %s", cfg.run_name, threads, cfg.paths.output_dir)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    best = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    return {"best_psnr": float(best) if best is not None else None,
            "trainer": trainer, "module": module, "datamodule": datamodule}


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    return train(cfg)["best_psnr"]


if __name__ == "__main__":
    main()
