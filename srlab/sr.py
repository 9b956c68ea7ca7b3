"""Apply any registered network to RGB images, whatever colour space it works in.

Y-channel networks (SRCNN, FSRCNN, ESPCN, VDSR as in their papers) see only the BT.601 Y channel;
Cb and Cr are upscaled bicubically and merged back, the convention of those papers and of the seed
project. RGB networks see RGB. Tensors: ``N x 3 x H x W``, RGB, float in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from srlab.color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb


def network_input(net: nn.Module, rgb: torch.Tensor) -> torch.Tensor:
    """RGB -> what ``net`` consumes (Y for single-channel networks)."""
    return rgb_to_y(rgb) if net.in_channels == 1 else rgb


def replace_y(rgb: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """RGB ``N x 3 x H x W`` whose BT.601 Y is ``y`` (``N x 1 x H x W``) and whose Cb, Cr are those of
    ``rgb``; not clamped. YCbCr -> RGB adds 255/219 x Y to each of R, G, B, so swapping Y is one
    multiply-add: how the inference engine puts a Y network's output on bicubic colour, without two
    colour conversions and a float bicubic of Cb and Cr at the output size."""
    return rgb + (y - rgb_to_y(rgb)) * (255.0 / 219.0)


def super_resolve(net: nn.Module, lr: torch.Tensor) -> torch.Tensor:
    """LR RGB ``N x 3 x h x w`` -> SR RGB ``N x 3 x sh x sw``, clamped to [0, 1]."""
    if net.in_channels == 3:
        return net(lr).clamp(0, 1)
    ycbcr = rgb_to_ycbcr(lr)
    y = net(ycbcr[:, :1])
    cbcr = F.interpolate(ycbcr[:, 1:], scale_factor=net.scale, mode="bicubic", align_corners=False)
    return ycbcr_to_rgb(torch.cat([y, cbcr], dim=1)).clamp(0, 1)
