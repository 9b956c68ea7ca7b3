"""Image-quality metrics under the SR papers' protocol.

Protocol "y" (the one every published SR table uses, e.g. the MATLAB scripts of EDSR/RCAN):
  1. SR output rounded to 8 bits (``quantize``), as a saved PNG would be;
  2. Y channel of BT.601 YCbCr (:func:`srlab.color.rgb_to_y`, MATLAB ``rgb2ycbcr`` on doubles);
     a grayscale image is measured on its own intensity (MATLAB's scripts skip ``rgb2ycbcr`` for
     single-channel files, e.g. Set14's bridge);
  3. ``scale`` pixels cropped at every border (the bicubic borders are meaningless);
  4. PSNR with peak 1.0 (i.e. 255 on 8-bit data) and SSIM with an 11x11 Gaussian window, sigma 1.5,
     K1 = 0.01, K2 = 0.03 (Wang et al. 2004), computed per image and averaged per set by the caller.
Protocol "rgb" is plain PSNR/SSIM over the three RGB channels after the same rounding and crop;
it is always labelled as such, never mixed with "y".
Tensors: ``N x 3 x H x W``, RGB, float in [0, 1].
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from srlab.color import rgb_to_y

PROTOCOLS = ("y", "rgb")


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0,1] and round to the 8-bit grid, as saving a PNG does."""
    return x.clamp(0, 1).mul(255).round().div(255)


def _is_gray(rgb: torch.Tensor) -> torch.Tensor:
    """Per image: True when R == G == B everywhere (a grayscale file read as RGB)."""
    return ((rgb[:, 0] == rgb[:, 1]) & (rgb[:, 1] == rgb[:, 2])).flatten(1).all(dim=1)


def prepare(sr: torch.Tensor, hr: torch.Tensor, crop: int, protocol: str = "y") -> tuple[torch.Tensor, torch.Tensor]:
    """Apply steps 1-3 of the protocol; returns float64 tensors ``N x C x H' x W'``."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
    if sr.shape != hr.shape or sr.ndim != 4 or sr.shape[1] not in (1, 3):
        raise ValueError(f"sr and hr must be [N,C,H,W] with C in (1,3) and equal shapes; got {tuple(sr.shape)} and {tuple(hr.shape)}")
    sr, hr = quantize(sr.double()), quantize(hr.double())
    if protocol == "y" and sr.shape[1] == 3:
        gray = _is_gray(hr).view(-1, 1, 1, 1)
        sr = torch.where(gray, sr[:, :1], rgb_to_y(sr))
        hr = torch.where(gray, hr[:, :1], rgb_to_y(hr))
    if crop > 0:
        sr, hr = sr[..., crop:-crop, crop:-crop], hr[..., crop:-crop, crop:-crop]
    return sr, hr


def psnr(sr: torch.Tensor, hr: torch.Tensor, crop: int, protocol: str = "y") -> torch.Tensor:
    """Per-image PSNR in dB, shape ``[N]``."""
    sr, hr = prepare(sr, hr, crop, protocol)
    return peak_signal_noise_ratio(sr, hr, data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim(sr: torch.Tensor, hr: torch.Tensor, crop: int, protocol: str = "y") -> torch.Tensor:
    """Per-image SSIM, shape ``[N]``; RGB SSIM is the mean over channels."""
    sr, hr = prepare(sr, hr, crop, protocol)
    return structural_similarity_index_measure(
        sr, hr, data_range=1.0, gaussian_kernel=True, sigma=1.5, kernel_size=11, reduction="none"
    )


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> torch.Tensor:
    return psnr(sr, hr, crop=scale, protocol="y")


def ssim_y(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> torch.Tensor:
    return ssim(sr, hr, crop=scale, protocol="y")
