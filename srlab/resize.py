"""MATLAB-style bicubic resizing through Pillow.

SR benchmarks make LR images with MATLAB's ``imresize(hr, 1/s, 'bicubic')``: a cubic kernel with
a = -0.5, widened by the scale factor when downscaling (antialiasing). Pillow's ``BICUBIC`` is the same
kernel and also antialiases, and agrees with MATLAB to about 0.01 dB; ``torch.nn.functional.interpolate``
and OpenCV do not antialias and would cost real dB in every reported number. Arrays are ``uint8``
``H x W x C`` (or ``H x W``); results are rounded to ``uint8`` as MATLAB does for ``uint8`` input.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def modcrop(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop bottom/right so that height and width are multiples of ``scale`` (the benchmark convention)."""
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]


def _resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if img.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got {img.dtype}")
    return np.asarray(Image.fromarray(img).resize(size, Image.Resampling.BICUBIC))


def bicubic_downscale(img: np.ndarray, scale: int) -> np.ndarray:
    """``H x W`` -> ``H/scale x W/scale`` (``img`` must already be mod-cropped)."""
    h, w = img.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"image size {w}x{h} is not a multiple of scale {scale}; modcrop it first")
    if h < scale or w < scale:
        raise ValueError(f"image size {w}x{h} is too small for scale {scale}")
    return _resize(img, (w // scale, h // scale))


def bicubic_upscale(img: np.ndarray, scale: int) -> np.ndarray:
    """``h x w`` -> ``h*scale x w*scale``: the bicubic baseline every SR table starts with."""
    h, w = img.shape[:2]
    return _resize(img, (w * scale, h * scale))
