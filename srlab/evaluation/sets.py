"""The test sets: a benchmark name (fetched into ``data_dir`` when missing) or any folder of images,
decoded once into a :class:`TestSet` whose LR images (MATLAB-style bicubic ``uint8`` downscales of the
mod-cropped HR) are made once per scale and shared by every model evaluated on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srlab.evaluation.errors import EvaluationError
from srlab.imageio import (
    GRAY_MODES,
    ImageReadError,
    is_image_file,
    open_image,
    to_rgb_array,
)
from srlab.resize import bicubic_downscale, modcrop

DEFAULT_SETS = ("Set5", "Set14", "BSD100", "Urban100")


@dataclass
class TestImage:
    __test__ = False  # not a pytest test class
    name: str
    rgb: np.ndarray  # uint8 H x W x 3
    gray: bool  # a single-channel file: measured on its intensity (protocol "y")


@dataclass
class TestSet:
    """A set's images, decoded once; LR images made once per scale and reused by every model."""

    __test__ = False

    name: str
    path: Path
    images: list[TestImage]
    _lr: dict[int, list[np.ndarray]] = field(default_factory=dict, repr=False)

    def pairs(self, scale: int) -> list[tuple[TestImage, np.ndarray, np.ndarray]]:
        """``(image, hr, lr)`` per image: HR mod-cropped to ``scale``, LR its bicubic ``uint8`` downscale."""
        hrs = [modcrop(img.rgb, scale) for img in self.images]
        if scale not in self._lr:
            for img, hr in zip(self.images, hrs):
                if min(hr.shape[:2]) < 2 * scale + 1:
                    raise EvaluationError(f"{self.path}/{img.name} is too small for x{scale} ({img.rgb.shape[1]}x{img.rgb.shape[0]})")
            self._lr[scale] = [bicubic_downscale(np.ascontiguousarray(hr), scale) for hr in hrs]
        return list(zip(self.images, hrs, self._lr[scale]))


def read_test_image(path: Path) -> TestImage:
    im = open_image(path)
    return TestImage(path.name, to_rgb_array(im), im.mode in GRAY_MODES)


def resolve_set(name: str | Path, data_dir: str | Path, download: bool = True) -> Path:
    """A set name (a folder under ``data_dir``, fetched first if it is a known benchmark that is
    missing) or a path to any folder of images."""
    path = Path(name).expanduser()
    if path.is_absolute() or len(path.parts) > 1:
        if not path.is_dir():
            raise EvaluationError(f"test set folder {path} does not exist")
        return path
    from srlab.data.benchmarks import (  # imports Lightning (srlab.data): only here
        BENCHMARKS,
        ensure_benchmark,
    )
    folder = Path(data_dir).expanduser() / str(name)
    if str(name) in BENCHMARKS:
        try:
            return ensure_benchmark(str(name), Path(data_dir), download=download)
        except (FileNotFoundError, PermissionError, RuntimeError) as err:
            raise EvaluationError(str(err)) from None
    for candidate in (folder, path):
        if candidate.is_dir():
            return candidate
    raise EvaluationError(f"test set {name!r} not found: {folder} does not exist and {name!r} is not a known "
                          f"benchmark ({', '.join(BENCHMARKS)}); pass a folder path instead")


def load_set(name: str | Path, data_dir: str | Path = "data", download: bool = True, limit: int | None = None) -> TestSet:
    """Decode every image of a set (flat folder, sorted by name); an empty folder is an error."""
    folder = resolve_set(name, data_dir, download)
    paths = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    if not paths:
        raise EvaluationError(f"test set folder {folder} holds no images (png, jpg, bmp, tif, webp)")
    if limit:
        paths = paths[:limit]
    images = []
    for path in paths:
        try:
            images.append(read_test_image(path))
        except ImageReadError as err:
            raise EvaluationError(f"test set {folder}: {err}") from None
    label = str(name) if Path(str(name)).name == str(name) else folder.name
    return TestSet(label, folder, images)
