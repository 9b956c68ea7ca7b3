"""Quality: upscaling a ``uint8`` LR image with a loaded model (a network in float32 under
``torch.inference_mode()``, or the bicubic baseline) back to ``uint8``, and :func:`evaluate_set`, the
per-image and mean PSNR/SSIM of a model on a test set under protocol "y" or "rgb" (see
:mod:`srlab.evaluation`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from srlab import metrics
from srlab.evaluation.errors import EvaluationError
from srlab.evaluation.models import LoadedModel
from srlab.evaluation.sets import TestSet
from srlab.resize import bicubic_upscale


def upscale(model: LoadedModel, lr: np.ndarray, tile: int | None = None, precision: str = "fp32") -> np.ndarray:
    """uint8 LR (``H x W x 3`` RGB or ``H x W`` gray) -> uint8 SR, ``scale`` times larger, through the
    deployment engine (:class:`srlab.inference.Upscaler`), so evaluation measures what the app and
    the CLI run. ``tile=None`` processes the whole image (quality); the engine's tiling gives the same
    result within 1/255. A Y network sees a gray image as Y (studio swing); an RGB network sees three
    equal channels and its output's BT.601 luma is returned. ``precision``: the engine's ("fp32" | "bf16")."""
    if model.net is None:
        return bicubic_upscale(lr, model.scale)
    from srlab.inference import Upscaler

    return Upscaler.from_network(model.net, model.label, precision=precision).upscale_array(lr, tile=tile)


def _chw(img: np.ndarray) -> torch.Tensor:
    """uint8 ``H x W x 3`` -> float64 ``1 x 3 x H x W`` in [0, 1], contiguous (strided channel
    views make every later float64 operation several times slower)."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(img, -1, 0)))[None].double().div_(255)


def evaluate_set(model: LoadedModel, test_set: TestSet, scale: int, protocol: str = "y",
                 ssim: bool = True, precision: str = "fp32") -> dict[str, Any]:
    """Per-image and mean PSNR/SSIM of ``model`` on ``test_set`` (see :mod:`srlab.evaluation`)."""
    if protocol not in metrics.PROTOCOLS:
        raise EvaluationError(f"unknown protocol {protocol!r}; choose from {metrics.PROTOCOLS}")
    per_image = []
    for img, hr, lr in test_set.pairs(scale):
        sr = upscale(model, lr, precision=precision)
        if sr.shape != hr.shape:
            raise EvaluationError(f"{model.label} returned {sr.shape[1]}x{sr.shape[0]} for {img.name}, "
                                  f"expected {hr.shape[1]}x{hr.shape[0]}")
        sr_t, hr_t = _chw(sr), _chw(hr)
        if ssim:
            p, s = metrics.psnr_ssim(sr_t, hr_t, crop=scale, protocol=protocol, gray=img.gray)
            per_image.append({"name": img.name, "psnr": p.item(), "ssim": s.item()})
        else:
            p = metrics.psnr(sr_t, hr_t, crop=scale, protocol=protocol, gray=img.gray)
            per_image.append({"name": img.name, "psnr": p.item(), "ssim": None})
    return {
        "psnr": float(np.mean([r["psnr"] for r in per_image])),
        "ssim": float(np.mean([r["ssim"] for r in per_image])) if ssim else None,
        "images": len(per_image),
        "path": str(test_set.path),
        "per_image": per_image,
    }
