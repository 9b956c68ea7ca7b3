"""RDN (Zhang et al., "Residual Dense Network for Image Super-Resolution", CVPR 2018).

Shallow features (two 3x3 convs) -> D residual dense blocks (RDB: C densely connected 3x3 conv+ReLU
layers of growth rate G, 1x1 local feature fusion, local residual) -> global feature fusion (1x1 over the
concatenated RDB outputs, then 3x3) -> global residual with the first shallow features -> pixel-shuffle
upsampler -> 3x3 conv to RGB. Defaults are the paper's D=16, C=8, G=64, G0=64 (~22.3 M at x4).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .common import (
    DIV2K_RGB_MEAN,
    MeanShift,
    check_activation,
    check_scale,
    color_channels,
    conv,
    make_activation,
)


class DenseLayer(nn.Module):
    """One RDB layer: ``cat([x, act(conv3x3(x))])`` - grows the channels by ``growth``."""

    def __init__(self, in_channels: int, growth: int, activation: str) -> None:
        super().__init__()
        self.conv = conv(in_channels, growth, 3)
        self.act = make_activation(activation, num_parameters=growth)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.act(self.conv(x))], dim=1)


class RDB(nn.Module):
    """Residual dense block: C dense layers, 1x1 local feature fusion back to G0, local residual."""

    def __init__(self, g0: int, growth: int, num_layers: int, activation: str) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *[DenseLayer(g0 + i * growth, growth, activation) for i in range(num_layers)]
        )
        self.fusion = nn.Conv2d(g0 + num_layers * growth, g0, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fusion(self.layers(x))


class RDN(nn.Module):
    """RDN.

    ``forward(lr)``: RGB ``[N, 3, h, w]`` in [0, 1] -> ``[N, 3, h*scale, w*scale]`` (not clamped).
    ``activation`` replaces the ReLU of every dense layer (the only activation sites). The DIV2K mean is
    subtracted/added as in the EDSR code base that RDN's PyTorch release builds on.
    """

    def __init__(
        self,
        scale: int = 4,
        activation: str = "relu",
        num_blocks: int = 16,
        num_layers: int = 8,
        growth: int = 64,
        num_features: int = 64,
        rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale, "rdn")
        self.color = "rgb"
        self.in_channels = color_channels(self.color, "rdn")
        check_activation(activation)
        c, g0, g = self.in_channels, num_features, growth
        self.sub_mean = MeanShift(rgb_mean, sign=-1)
        self.sfe1 = conv(c, g0, 3)
        self.sfe2 = conv(g0, g0, 3)
        self.rdbs = nn.ModuleList([RDB(g0, g, num_layers, activation) for _ in range(num_blocks)])
        self.gff = nn.Sequential(nn.Conv2d(num_blocks * g0, g0, 1), conv(g0, g0, 3))
        # Upsampler as in the authors' code: x2/x3 one conv(G0 -> G*r^2) + shuffle; x4 two x2 stages.
        if scale == 4:
            up: list[nn.Module] = [
                conv(g0, g * 4, 3), nn.PixelShuffle(2), conv(g, g * 4, 3), nn.PixelShuffle(2),
            ]
        else:
            up = [conv(g0, g * scale * scale, 3), nn.PixelShuffle(scale)]
        self.upsample = nn.Sequential(*up, conv(g, c, 3))
        self.add_mean = MeanShift(rgb_mean, sign=+1)
        # Receptive field (LR pixels, radius), counting each 3x3 conv as 1 LR pixel (an upper bound for
        # those after a shuffle): sfe 2 + C per RDB + gff 1 + upsampler convs (1 or 2) + last conv 1.
        num_up_convs = 2 if scale == 4 else 1
        self.receptive_field: int = 2 + num_blocks * num_layers + 1 + num_up_convs + 1

    def forward(self, lr: Tensor) -> Tensor:
        f_minus1 = self.sfe1(self.sub_mean(lr))
        x = self.sfe2(f_minus1)
        outs = []
        for rdb in self.rdbs:
            x = rdb(x)
            outs.append(x)
        x = self.gff(torch.cat(outs, dim=1)) + f_minus1  # global residual learning
        return self.add_mean(self.upsample(x))
