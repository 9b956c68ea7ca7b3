"""Decode each image once: a disk cache of decoded ``uint8`` arrays, memory-mapped on reuse.

PNG decoding costs far more than cropping a patch, so a loader that re-decodes would limit training.
Arrays are stored as ``.npy`` under ``cache_dir/decoded`` (never next to the data, which may be
read-only) and opened with ``mmap_mode="r"``: data-loader workers then share the OS page cache
instead of each holding its own copy. The key covers path, size and mtime, so an edited file is
decoded again; writes go through a temporary file and ``os.replace``, so a killed run never leaves
a truncated array that a later run would trust.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from srlab.imageio import read_image
from srlab.resize import bicubic_downscale, modcrop


class DecodedCache:
    def __init__(self, cache_dir: str | Path):
        self.dir = Path(cache_dir) / "decoded"
        # Open memory maps, per process: a stat + hash + open + mmap per patch cost more than the crop.
        self._open: dict[tuple[Path, str], np.ndarray] = {}

    def __getstate__(self) -> dict:
        return {"dir": self.dir, "_open": {}}  # each DataLoader worker maps the files itself

    def _key(self, path: Path, variant: str) -> Path:
        st = path.stat()
        ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{variant}"
        return self.dir / f"{hashlib.sha1(ident.encode()).hexdigest()}.npy"

    def _get(self, path: Path, variant: str, make: Callable[[], np.ndarray]) -> np.ndarray:
        arr = self._open.get((path, variant))
        if arr is None:
            arr = self._open[(path, variant)] = self._load_or_make(path, variant, make)
        return arr

    def _load_or_make(self, path: Path, variant: str, make: Callable[[], np.ndarray]) -> np.ndarray:
        file = self._key(path, variant)
        if file.exists():
            try:
                return np.load(file, mmap_mode="r")
            except (ValueError, OSError):
                file.unlink(missing_ok=True)  # unreadable cache entry: rebuild it rather than fail
        arr = np.ascontiguousarray(make())
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, arr)
        os.replace(tmp, file)
        return np.load(file, mmap_mode="r")

    def image(self, path: Path) -> np.ndarray:
        """``uint8`` RGB ``H x W x 3`` as read by :func:`srlab.imageio.read_image`."""
        return self._get(path, "rgb", lambda: read_image(path))

    def hr(self, path: Path, scale: int) -> np.ndarray:
        """The image mod-cropped to a multiple of ``scale`` (a view, no extra storage)."""
        return modcrop(self.image(path), scale)

    def bicubic_lr(self, path: Path, scale: int) -> np.ndarray:
        """MATLAB-style bicubic LR of the mod-cropped image, made once per scale."""
        return self._get(path, f"bicubic_x{scale}", lambda: bicubic_downscale(np.asarray(self.hr(path, scale)), scale))
