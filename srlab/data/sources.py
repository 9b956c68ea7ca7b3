"""Where training and test images come from.

A *source* turns a configuration (a folder, a named benchmark set, DIV2K, a Kaggle dataset, the sample
photos of scikit-image) into a list of :class:`ImageRecord`: an HR file and, where the dataset ships
real LR images (DIV2K's bicubic LR, a camera's own pairs), the matching LR file. Everything downstream
(:mod:`srlab.data.datamodule`, :mod:`srlab.analysis`, ``evaluate.py``) only sees records.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image

from srlab.imageio import is_image_file, save_png


@dataclass(frozen=True)
class ImageRecord:
    hr: Path
    lr: Path | None = None  # None: LR is made from ``hr`` by the configured degradation


class Source(Protocol):
    def records(self) -> list[ImageRecord]: ...


def _as_list(value: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(value, (str, Path)):
        return [Path(value)]
    return [Path(v) for v in value]


def list_images(root: Path, recursive: bool = True) -> list[Path]:
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    pattern = root.rglob("*") if recursive else root.iterdir()
    return sorted(p for p in pattern if p.is_file() and is_image_file(p))


class FolderSource:
    """Every image under one or more folders (recursively); LR is made on the fly."""

    def __init__(self, roots: str | Path | Sequence[str | Path], recursive: bool = True, limit: int | None = None):
        self.roots = _as_list(roots)
        self.recursive = recursive
        self.limit = limit

    def records(self) -> list[ImageRecord]:
        paths: list[Path] = []
        for root in self.roots:
            found = list_images(root, self.recursive)
            if not found:
                raise FileNotFoundError(f"no images (png, jpg, bmp, tif, webp) found in {root}")
            paths += found
        if self.limit is not None:
            paths = paths[: self.limit]
        return [ImageRecord(hr=p) for p in paths]




class PairedFolderSource:
    """A user's own LR/HR pairs: files matched by name (``0001.png`` with ``0001.png`` or ``0001x4.png``).

    Sizes are checked against the scale up front (headers only, no decoding): a pair whose LR is not
    exactly HR/scale is an error naming both files, because training on misaligned pairs fails silently.
    """

    def __init__(self, hr_root: str | Path, lr_root: str | Path, scale: int, recursive: bool = False):
        self.hr_root, self.lr_root = Path(hr_root), Path(lr_root)
        self.scale = scale
        self.recursive = recursive

    def records(self) -> list[ImageRecord]:
        lr_by_stem = {p.stem: p for p in list_images(self.lr_root, self.recursive)}
        out = []
        for hr in list_images(self.hr_root, self.recursive):
            lr = lr_by_stem.get(hr.stem) or lr_by_stem.get(f"{hr.stem}x{self.scale}")
            if lr is None:
                raise FileNotFoundError(f"no LR image for {hr} in {self.lr_root} (expected {hr.stem}.* or {hr.stem}x{self.scale}.*)")
            check_pair_size(hr, lr, self.scale)
            out.append(ImageRecord(hr=hr, lr=lr))
        if not out:
            raise FileNotFoundError(f"no images found in {self.hr_root}")
        return out


def check_pair_size(hr: Path, lr: Path, scale: int) -> None:
    with Image.open(hr) as h, Image.open(lr) as l:
        (hw, hh), (lw, lh) = h.size, l.size
    if (lw * scale, lh * scale) != (hw - hw % scale, hh - hh % scale):
        raise ValueError(
            f"LR/HR size mismatch for scale {scale}: {lr} is {lw}x{lh}, {hr} is {hw}x{hh} "
            f"(expected LR {hw // scale}x{hh // scale})"
        )


class BenchmarkSource:
    """Named sets under ``data_dir`` (Set5, Set14, BSD100, Urban100, T91, BSD200), fetched from their
    public mirror on first use when ``download`` is true and the folder is missing."""

    def __init__(self, names: str | Sequence[str], data_dir: str | Path, download: bool = True, limit: int | None = None):
        self.names = [names] if isinstance(names, str) else list(names)
        self.data_dir = Path(data_dir)
        self.download = download
        self.limit = limit

    def records(self) -> list[ImageRecord]:
        from srlab.data.benchmarks import ensure_benchmark

        roots = [ensure_benchmark(name, self.data_dir, download=self.download) for name in self.names]
        return FolderSource(roots, limit=self.limit).records()


class DIV2KSource:
    """DIV2K (train 0001-0800, valid 0801-0900), with its official bicubic LR when ``use_lr_files``."""

    def __init__(self, root: str | Path, split: str, scale: int, download: bool = True,
                 use_lr_files: bool = True, limit: int | None = None):
        self.root, self.split, self.scale = Path(root), split, scale
        self.download, self.use_lr_files, self.limit = download, use_lr_files, limit

    def records(self) -> list[ImageRecord]:
        from srlab.data.div2k import prepare_div2k

        pairs = prepare_div2k(self.root, self.scale, self.split, download=self.download, lr=self.use_lr_files)
        records = [ImageRecord(hr=hr, lr=lr if self.use_lr_files else None) for hr, lr in pairs]
        return records[: self.limit] if self.limit is not None else records


class KaggleSource:
    """A Kaggle dataset (``owner/dataset``) downloaded with kagglehub, then read as a folder."""

    def __init__(self, handle: str, subdir: str | None = None, limit: int | None = None):
        self.handle, self.subdir, self.limit = handle, subdir, limit

    def records(self) -> list[ImageRecord]:
        from srlab.data.kaggle import kaggle_dataset_path

        root = kaggle_dataset_path(self.handle)
        return FolderSource(root / self.subdir if self.subdir else root, limit=self.limit).records()


# Photos bundled with scikit-image (no download). Textures and microscopy are included on purpose:
# a tiny training set needs varied high-frequency content more than it needs many faces.
SAMPLE_TRAIN = ("astronaut", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
                "coins", "moon", "brick", "grass", "gravel", "cell", "clock")
SAMPLE_VAL = ("chelsea", "coffee", "camera")


class SampleSource:
    """scikit-image's sample photos, written once as PNG under ``cache_dir/<folder>`` (training and
    validation photos in separate folders, so that a folder can be handed to ``evaluate.py``)."""

    def __init__(self, names: Sequence[str], cache_dir: str | Path, folder: str = "samples"):
        self.names = list(names)
        self.cache_dir = Path(cache_dir) / folder

    def records(self) -> list[ImageRecord]:
        import numpy as np
        import skimage.data

        out = []
        for name in self.names:
            path = self.cache_dir / f"{name}.png"
            if not path.exists():
                loader = getattr(skimage.data, name, None)
                if loader is None:
                    raise ValueError(f"scikit-image has no sample image {name!r}")
                img = np.asarray(loader())
                if img.dtype != np.uint8:
                    warnings.warn(f"sample {name!r} is {img.dtype}, not a photo; skipped", stacklevel=2)
                    continue
                tmp = path.with_suffix(f".{os.getpid()}.tmp.png")  # parallel sweep jobs write the same file
                save_png(img, tmp)
                tmp.replace(path)  # atomic: a killed run never leaves a half-written PNG behind
            out.append(ImageRecord(hr=path))
        return out
