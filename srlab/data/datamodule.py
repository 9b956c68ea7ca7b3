"""``SRDataModule``: any image source -> LR/HR training patches and whole validation images."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from srlab.data.cache import DecodedCache
from srlab.data.datasets import EvalImages, TrainPatches
from srlab.data.sources import ImageRecord, Source
from srlab.imageio import ImageReadError
from srlab.runtime import default_data_workers


class SRDataModule(pl.LightningDataModule):
    """Serves batches of ``{"lr": N x 3 x p x p, "hr": N x 3 x ps x ps}`` (RGB, [0, 1]).

    ``train`` and ``val`` are sources (:mod:`srlab.data.sources`); downloads happen in
    ``prepare_data`` (once per machine), decoding in ``setup``: every image is decoded once into the
    cache, and unusable ones (unreadable, smaller than a patch) are skipped with a warning naming them.
    """

    def __init__(self, train: Source, val: Source, scale: int, patch_size: int = 24, batch_size: int = 16,
                 iters_per_epoch: int = 200, degradation: str = "bicubic", augment: bool = True,
                 num_workers: int | None = None, cache_dir: str | Path = "cache", val_max_side: int | None = None,
                 degradation_options: dict | None = None):
        super().__init__()
        if scale not in (2, 3, 4):
            raise ValueError(f"scale must be 2, 3 or 4, got {scale}")
        self.train_source, self.val_source = train, val
        self.scale, self.patch_size, self.batch_size = scale, patch_size, batch_size
        self.iters_per_epoch, self.augment = iters_per_epoch, augment
        self.num_workers = default_data_workers() if num_workers is None else num_workers
        self.degradation_name = degradation
        self.degradation_options = dict(degradation_options or {})
        self.cache = DecodedCache(cache_dir)
        self.val_max_side = val_max_side
        self.train_records: list[ImageRecord] = []
        self.val_records: list[ImageRecord] = []

    def prepare_data(self) -> None:
        # Listing a source downloads it when needed (DIV2K, benchmark sets, Kaggle).
        self.train_source.records()
        self.val_source.records()

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and not self.train_records:
            self.train_records = self._usable(self.train_source.records(), min_lr_side=self.patch_size, what="training")
        if stage in (None, "fit", "validate") and not self.val_records:
            self.val_records = self._usable(self.val_source.records(), min_lr_side=1, what="validation")

    def _usable(self, records: list[ImageRecord], min_lr_side: int, what: str) -> list[ImageRecord]:
        kept = []
        for record in records:
            try:
                hr = self.cache.hr(record.hr, self.scale)
                if record.lr is not None:
                    self.cache.image(record.lr)
            except ImageReadError as err:
                warnings.warn(f"skipping {what} image: {err}", stacklevel=2)
                continue
            lr_h, lr_w = hr.shape[0] // self.scale, hr.shape[1] // self.scale
            if min(lr_h, lr_w) < min_lr_side:
                warnings.warn(
                    f"skipping {what} image {record.hr}: {hr.shape[1]}x{hr.shape[0]} is smaller than a "
                    f"{min_lr_side * self.scale}px HR patch at x{self.scale}", stacklevel=2)
                continue
            kept.append(record)
        if not kept:
            raise ValueError(f"no usable {what} images (all {len(records)} were unreadable or too small)")
        return kept

    def _degradation(self):
        if self.degradation_name == "bicubic":
            return None  # the whole-image bicubic LR, cached once per scale, is exact and fastest
        from srlab.data.degradation import make_degradation

        return make_degradation(self.degradation_name, **self.degradation_options)

    def train_dataloader(self) -> DataLoader:
        dataset = TrainPatches(self.train_records, self.scale, self.patch_size,
                               self.iters_per_epoch * self.batch_size, self.cache,
                               degradation=self._degradation(), augment=self.augment,
                               rank=self.trainer.global_rank if self.trainer is not None else 0)
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=False, drop_last=True,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        dataset = EvalImages(self.val_records, self.scale, self.cache, max_side=self.val_max_side)
        return DataLoader(dataset, batch_size=1, num_workers=0)
