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


def _to_tensor(img: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """uint8 ``H x W x C`` (or ``H x W``) -> float32 ``1 x C x H x W`` in [0, 1] on ``device``."""
    t = torch.from_numpy(np.require(img, requirements=("C", "W")))
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    return t.to(device=device, dtype=torch.float32).div_(255)


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    """float ``1 x C x H x W`` -> uint8 ``H x W x C`` (``H x W`` for one channel), on the CPU."""
    out = t[0].clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
    return out[0].numpy() if out.shape[0] == 1 else out.permute(1, 2, 0).numpy()


def upscale_rgb(model: LoadedModel, lr: np.ndarray) -> np.ndarray:
    """uint8 RGB LR -> uint8 RGB SR (``scale`` times larger)."""
    if model.net is None:
        return bicubic_upscale(lr, model.scale)
    from srlab.sr import super_resolve

    device = next(model.net.parameters()).device
    with torch.inference_mode():
        x = _to_tensor(lr, device).contiguous(memory_format=torch.channels_last)
        return _to_uint8(super_resolve(model.net, x))


def upscale_gray(model: LoadedModel, lr: np.ndarray) -> np.ndarray:
    """uint8 ``H x W`` LR -> uint8 ``H x W`` SR: a Y network sees the intensity as Y (studio swing),
    an RGB network three equal channels (its output's BT.601 luma is returned)."""
    if model.net is None:
        return bicubic_upscale(lr, model.scale)
    from srlab.color import rgb_to_y

    net = model.net
    device = next(net.parameters()).device
    with torch.inference_mode():
        x = _to_tensor(lr, device)
        if net.in_channels == 1:
            y = net((x * (219 / 255) + 16 / 255).contiguous(memory_format=torch.channels_last))
        else:
            y = rgb_to_y(net(x.expand(1, 3, *x.shape[-2:]).contiguous(memory_format=torch.channels_last)).clamp(0, 1))
        return _to_uint8((y - 16 / 255) * (255 / 219))


def _chw(img: np.ndarray) -> torch.Tensor:
    """uint8 ``H x W x 3`` -> float64 ``1 x 3 x H x W`` in [0, 1], contiguous (strided channel
    views make every later float64 operation several times slower)."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(img, -1, 0)))[None].double().div_(255)


def evaluate_set(model: LoadedModel, test_set: TestSet, scale: int, protocol: str = "y",
                 ssim: bool = True) -> dict[str, Any]:
    """Per-image and mean PSNR/SSIM of ``model`` on ``test_set`` (see :mod:`srlab.evaluation`)."""
    if protocol not in metrics.PROTOCOLS:
        raise EvaluationError(f"unknown protocol {protocol!r}; choose from {metrics.PROTOCOLS}")
    per_image = []
    for img, hr, lr in test_set.pairs(scale):
        sr = upscale_rgb(model, lr)
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
