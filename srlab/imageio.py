"""Reading photos into arrays, whatever the camera or editor wrote.

Every reader returns ``uint8`` arrays: RGB ``H x W x 3`` (or ``H x W`` for :func:`read_gray`).
Pillow does the decoding; this module only decides what a super-resolution pipeline should do with
the modes people actually meet (palette, grayscale, alpha, 16-bit, CMYK, EXIF-rotated phone shots).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


class ImageReadError(ValueError):
    """An image file that cannot be decoded (missing, not an image, truncated or corrupt)."""


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def open_image(path: str | Path) -> Image.Image:
    """Decode fully (so truncation is found now, not in a worker later) and apply EXIF orientation."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            im.load()
            return ImageOps.exif_transpose(im)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        # Pillow raises OSError for truncated files and SyntaxError for some broken headers.
        raise ImageReadError(f"{path}: cannot read image ({err})") from err


def to_rgb_array(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> ``uint8`` RGB ``H x W x 3``.

    16-bit grayscale is scaled to 8 bits (not clipped: Pillow's own ``convert`` clips at 255);
    alpha is composited on white, which is what a viewer shows for a transparent photo.
    """
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        gray = np.clip(np.rint(arr * (255.0 if arr.max() <= 1.0 else 1.0)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(im.convert("RGB"))


#: Pillow modes of single-channel files (MATLAB's ``size(imread(f), 3) == 1``): the paper protocol
#: measures these on their intensity, every 3-channel file on Y (see :mod:`srlab.metrics`).
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})


def is_single_channel_file(path: str | Path) -> bool:
    """From the header only (no decoding)."""
    with Image.open(path) as im:
        return im.mode in GRAY_MODES


def read_image(path: str | Path) -> np.ndarray:
    """Read any image file as ``uint8`` RGB ``H x W x 3``; raises :class:`ImageReadError`."""
    return to_rgb_array(open_image(path))


def save_png(img: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path

