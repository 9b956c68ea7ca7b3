"""Image-quality metrics under the SR papers' protocol.

Protocol "y" (the one every published SR table uses, e.g. the MATLAB scripts of SRCNN/VDSR/EDSR/RCAN):
  1. SR output rounded to 8 bits (``quantize``), as a saved PNG would be;
  2. Y channel of BT.601 YCbCr (:func:`srlab.color.rgb_to_y`, MATLAB ``rgb2ycbcr`` on doubles, not
     rounded) for every image whose *file* has three channels, even when they are equal; only an
     image stored as a single-channel file (``gray=True``, MATLAB's ``size(im, 3) == 1``: Set14's
     ``bridge.png``) is measured on its own intensity, the SR output on its full-range BT.601 luma
     ``(Y - 16) * 255 / 219`` (equal to the channel value when R = G = B);
  3. ``scale`` pixels cropped at every border (the bicubic borders are meaningless);
  4. PSNR with peak 1.0 (i.e. 255 on 8-bit data; torchmetrics' formula) and SSIM with an 11x11 Gaussian window, sigma 1.5,
     K1 = 0.01, K2 = 0.03 (Wang et al. 2004; the torchmetrics definition, reflect-padded borders),
     computed per image and averaged per set by the caller.
Why step 2 keys on the file and not on the pixels: MATLAB scripts branch on the number of channels
of the decoded array. Set14's ``man.png`` and seven Urban100 images are RGB files with R = G = B;
measuring those on their intensity instead of Y (an earlier version of this module did) costs
1.32 dB on each (the Y range is 219/255 of the intensity range), about 0.09 dB on Set14's mean, and
Set14 then misses its published bicubic baseline. Reading the file decides: bicubic x2/x3/x4 then
reproduces all twelve published set means (Set5, Set14, B100, Urban100) within 0.013 dB with a
float Y (a MATLAB-style uint8-rounded Y is also within 0.03 dB, but 0.01 dB further off).
Protocol "rgb" is plain PSNR/SSIM over the three RGB channels after the same rounding and crop;
it is always labelled as such, never mixed with "y".
Tensors: ``N x 3 x H x W``, RGB, float in [0, 1] (``N x 1 x H x W`` is measured as is).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from srlab.color import rgb_to_y

PROTOCOLS = ("y", "rgb")

SSIM_SIGMA, SSIM_KERNEL, SSIM_K1, SSIM_K2 = 1.5, 11, 0.01, 0.03

Gray = bool | Sequence[bool] | torch.Tensor


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0,1] and round to the 8-bit grid, as saving a PNG does."""
    return x.clamp(0, 1).mul(255).round().div(255)


def _gray_mask(gray: Gray, n: int, device: torch.device) -> torch.Tensor:
    mask = torch.as_tensor(gray, dtype=torch.bool, device=device).flatten()
    if mask.numel() == 1:
        mask = mask.expand(n)
    if mask.numel() != n:
        raise ValueError(f"gray must be one flag or one per image ({n}); got {mask.numel()}")
    return mask.view(-1, 1, 1, 1)


def prepare(sr: torch.Tensor, hr: torch.Tensor, crop: int, protocol: str = "y",
            gray: Gray = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply steps 1-3 of the protocol; returns float64 tensors ``N x C x H' x W'``.

    ``gray``: per image (or one flag for all), True where the HR image came from a single-channel
    file; only used by protocol "y" on 3-channel tensors.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose from {PROTOCOLS}")
    if sr.shape != hr.shape or sr.ndim != 4 or sr.shape[1] not in (1, 3):
        raise ValueError(f"sr and hr must be [N,C,H,W] with C in (1,3) and equal shapes; got {tuple(sr.shape)} and {tuple(hr.shape)}")
    sr, hr = quantize(sr.double()), quantize(hr.double())
    if protocol == "y" and sr.shape[1] == 3:
        mask = _gray_mask(gray, sr.shape[0], sr.device)
        sr_y, hr_y = rgb_to_y(sr), rgb_to_y(hr)
        if mask.any():
            sr_y = torch.where(mask, (sr_y - 16 / 255) * (255 / 219), sr_y)
            hr_y = torch.where(mask, hr[:, :1], hr_y)
        sr, hr = sr_y, hr_y
    if crop > 0:
        sr, hr = sr[..., crop:-crop, crop:-crop], hr[..., crop:-crop, crop:-crop]
    return sr, hr


def psnr(sr: torch.Tensor, hr: torch.Tensor, crop: int, protocol: str = "y", gray: Gray = False) -> torch.Tensor:
    """Per-image PSNR in dB, shape ``[N]``."""
    return _psnr_prepared(*prepare(sr, hr, crop, protocol, gray))


def _psnr_prepared(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    # torchmetrics' peak_signal_noise_ratio(data_range=1, reduction="none", dim=(1, 2, 3)), without
    # importing torchmetrics (a second of start-up for evaluate.py): 10 log10(1 / MSE), inf when equal.
    return -10 * torch.log10((sr - hr).pow(2).mean(dim=(1, 2, 3)))


def _gaussian_window() -> np.ndarray:
    # torchmetrics' kernel: int(3.5 * sigma + 0.5) * 2 + 1 = 11 taps, normalised; the 2-D window is the
    # outer product of this one with itself, so two 1-D passes give the same numbers.
    half = SSIM_KERNEL // 2
    g = np.exp(-((np.arange(SSIM_KERNEL) - half) ** 2) / (2 * SSIM_SIGMA**2))
    return g / g.sum()


def _ssim_cpu(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """torchmetrics' SSIM (same window, reflect padding, constants and float64 arithmetic) with
    separable filtering in SciPy: the same values to ~1e-15, and 50-80x faster on a CPU, where
    PyTorch's float64 ``conv2d`` with an 11x11 kernel takes ~10 s for one 1024x768 image."""
    from scipy.ndimage import correlate1d

    window, c1, c2 = _gaussian_window(), SSIM_K1**2, SSIM_K2**2

    def blur(x: np.ndarray) -> np.ndarray:  # torch "reflect" padding == SciPy "mirror"
        return correlate1d(correlate1d(x, window, axis=-1, mode="mirror"), window, axis=-2, mode="mirror")

    a, b = sr.numpy(), hr.numpy()
    mu_a, mu_b = blur(a), blur(b)
    mu_aa, mu_bb, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a = np.maximum(blur(a * a) - mu_aa, 0.0)
    var_b = np.maximum(blur(b * b) - mu_bb, 0.0)
    cov = blur(a * b) - mu_ab
    ssim_map = ((2 * mu_ab + c1) * (2 * cov + c2)) / ((mu_aa + mu_bb + c1) * (var_a + var_b + c2))
    return torch.from_numpy(ssim_map.reshape(ssim_map.shape[0], -1).mean(axis=1))


def ssim(sr: torch.Tensor, hr: torch.Tensor, crop: int, protocol: str = "y", gray: Gray = False) -> torch.Tensor:
    """Per-image SSIM, shape ``[N]``; RGB SSIM is the mean over channels."""
    return _ssim_prepared(*prepare(sr, hr, crop, protocol, gray))


def _ssim_prepared(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    if sr.device.type == "cpu" and not sr.requires_grad:
        return _ssim_cpu(sr, hr).to(sr)
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(
        sr, hr, data_range=1.0, gaussian_kernel=True, sigma=SSIM_SIGMA, kernel_size=SSIM_KERNEL,
        k1=SSIM_K1, k2=SSIM_K2, reduction="none"
    )


def psnr_ssim(sr: torch.Tensor, hr: torch.Tensor, crop: int, protocol: str = "y",
              gray: Gray = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Both per-image PSNR and SSIM (shape ``[N]`` each) from one :func:`prepare`: what an evaluation
    of large images wants (the colour conversion of a 1024x768 image is not free in float64)."""
    sr, hr = prepare(sr, hr, crop, protocol, gray)
    return _psnr_prepared(sr, hr), _ssim_prepared(sr, hr)


def psnr_y(sr: torch.Tensor, hr: torch.Tensor, scale: int, gray: Gray = False) -> torch.Tensor:
    return psnr(sr, hr, crop=scale, protocol="y", gray=gray)


def ssim_y(sr: torch.Tensor, hr: torch.Tensor, scale: int, gray: Gray = False) -> torch.Tensor:
    return ssim(sr, hr, crop=scale, protocol="y", gray=gray)
