"""Torch datasets: random aligned LR/HR training patches, and whole images for validation/testing.

Every item is a dict of float tensors, RGB, [0, 1], ``3 x h x w`` for ``"lr"`` and
``3 x (h*scale) x (w*scale)`` for ``"hr"``; networks that work on Y convert inside the
LightningModule, so one data pipeline serves every architecture.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from srlab.data.cache import DecodedCache
from srlab.data.sources import ImageRecord
from srlab.imageio import is_single_channel_file

Degradation = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``uint8`` ``H x W x 3`` -> float ``3 x H x W`` in [0, 1]."""
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float().div_(255)  # copy: cache arrays are read-only memmaps


def augment_pair(lr: np.ndarray, hr: np.ndarray, code: int) -> tuple[np.ndarray, np.ndarray]:
    """One of the 8 flips/rotations (``code`` in 0..7), applied identically to both arrays."""
    def apply(a: np.ndarray) -> np.ndarray:
        if code & 1:
            a = a[:, ::-1]
        if code & 2:
            a = a[::-1, :]
        if code & 4:
            a = a.transpose(1, 0, 2)
        return a
    return apply(lr), apply(hr)


class TrainPatches(Dataset):
    """``length`` random patches; each picks an image, an aligned LR/HR crop and an augmentation.

    Randomness comes from a generator seeded from torch's seed, which the DataLoader sets differently
    in every worker (and Lightning's ``seed_everything(workers=True)`` makes reproducible), offset by
    ``rank`` so that DDP processes drawing patches in their main process don't draw the same ones.
    """

    def __init__(self, records: Sequence[ImageRecord], scale: int, patch_size: int, length: int,
                 cache: DecodedCache, degradation: Degradation | None = None, augment: bool = True,
                 rank: int = 0):
        if not records:
            raise ValueError("no training images")
        self.records, self.scale, self.patch, self.length = list(records), scale, patch_size, length
        self.cache, self.degradation, self.augment, self.rank = cache, degradation, augment, rank
        self._gen: torch.Generator | None = None
        self._gen_pid = -1

    def _randint(self, high: int) -> int:
        if self._gen is None or self._gen_pid != os.getpid():  # first use in this (worker) process
            self._gen = torch.Generator().manual_seed(torch.initial_seed() + 7919 * self.rank)
            self._gen_pid = os.getpid()
        return int(torch.randint(high, (), generator=self._gen))

    def __len__(self) -> int:
        return self.length

    def _lr_for(self, record: ImageRecord) -> np.ndarray | None:
        if record.lr is not None:
            return self.cache.image(record.lr)
        if self.degradation is None:
            return self.cache.bicubic_lr(record.hr, self.scale)
        return None  # degraded on the fly, patch by patch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        s, p = self.scale, self.patch
        record = self.records[self._randint(len(self.records))]
        hr = self.cache.hr(record.hr, s)
        lr = self._lr_for(record)
        h, w = hr.shape[0] // s, hr.shape[1] // s
        y, x = self._randint(h - p + 1), self._randint(w - p + 1)
        hr_patch = np.asarray(hr[y * s:(y + p) * s, x * s:(x + p) * s])
        if lr is not None:
            lr_patch = np.asarray(lr[y:y + p, x:x + p])
        else:
            rng = np.random.default_rng(self._randint(2**62))
            lr_patch = self.degradation(hr_patch, s, rng)
        if self.augment:
            lr_patch, hr_patch = augment_pair(lr_patch, hr_patch, self._randint(8))
        return {"lr": to_tensor(lr_patch), "hr": to_tensor(hr_patch)}


class EvalImages(Dataset):
    """Whole images (HR mod-cropped; LR from the record's file or MATLAB-style bicubic).

    ``max_side`` centre-crops large images (aligned to the scale) to keep validation quick on a CPU;
    benchmark numbers come from ``evaluate.py``, which never crops.
    """

    def __init__(self, records: Sequence[ImageRecord], scale: int, cache: DecodedCache, max_side: int | None = None):
        self.records, self.scale, self.cache, self.max_side = list(records), scale, cache, max_side
        self.gray = [is_single_channel_file(r.hr) for r in self.records]  # header reads, once

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record, s = self.records[index], self.scale
        hr = self.cache.hr(record.hr, s)
        lr = self.cache.image(record.lr) if record.lr is not None else self.cache.bicubic_lr(record.hr, s)
        if self.max_side:
            side = max(self.max_side // s, 1)
            h, w = lr.shape[:2]
            y, x = max((h - side) // 2, 0), max((w - side) // 2, 0)
            lr = lr[y:y + side, x:x + side]
            hr = hr[y * s:(y + side) * s, x * s:(x + side) * s]
        return {"lr": to_tensor(np.asarray(lr)), "hr": to_tensor(np.asarray(hr)), "name": record.hr.stem,
                "gray": self.gray[index]}
