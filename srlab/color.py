"""BT.601 YCbCr conversions with the constants of MATLAB's ``rgb2ycbcr``.

SR papers report PSNR/SSIM on the Y channel of MATLAB's ``rgb2ycbcr`` ("studio swing": Y in [16, 235]
for 8-bit data). Here everything is float in [0, 1]: ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255``
for R, G, B in [0, 1]. Tensors are ``N x 3 x H x W`` (or ``3 x H x W``), channel order RGB.
"""

from __future__ import annotations

import torch

# Rows: Y, Cb, Cr; columns: R, G, B (MATLAB rgb2ycbcr, divided by 255 so inputs/outputs are in [0,1]).
_RGB_TO_YCBCR = torch.tensor(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ]
) / 255.0
_YCBCR_OFFSET = torch.tensor([16.0, 128.0, 128.0]) / 255.0


def _channel_dim(x: torch.Tensor) -> int:
    if x.ndim not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"expected RGB tensor [N,3,H,W] or [3,H,W], got shape {tuple(x.shape)}")
    return x.ndim - 3


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0,1] -> YCbCr in [0,1] (studio swing), same layout."""
    dim = _channel_dim(rgb)
    m = _RGB_TO_YCBCR.to(rgb)
    out = torch.tensordot(rgb.movedim(dim, -1), m.T, dims=1) + _YCBCR_OFFSET.to(rgb)
    return out.movedim(-1, dim)


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr` (not clamped)."""
    dim = _channel_dim(ycbcr)
    m_inv = torch.linalg.inv(_RGB_TO_YCBCR.double()).to(ycbcr)
    shifted = ycbcr.movedim(dim, -1) - _YCBCR_OFFSET.to(ycbcr)
    return torch.tensordot(shifted, m_inv.T, dims=1).movedim(-1, dim)


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0,1] -> Y in [16/255, 235/255], keeping a channel dim of size 1."""
    dim = _channel_dim(rgb)
    weights = _RGB_TO_YCBCR[0].to(rgb).view(3, 1, 1)
    return (rgb * weights).sum(dim=dim, keepdim=True) + 16.0 / 255.0
