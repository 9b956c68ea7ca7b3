"""VDSR (Kim et al., "Accurate Image Super-Resolution Using Very Deep Convolutional Networks", CVPR 2016).

20 conv layers (3x3, 64 channels, ReLU between) on the bicubic-upsampled image, predicting the residual
that is added back to the bicubic image ("global residual learning"). The bicubic upsampling is done
inside :meth:`VDSR.forward` so the network has the same LR -> SR contract as every other model.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from .common import (
    BICUBIC_RADIUS,
    bicubic_upsample,
    check_activation,
    check_scale,
    color_channels,
    conv,
    hr_radius_to_lr,
    make_activation,
)


class VDSR(nn.Module):
    """VDSR: ``depth`` 3x3 conv layers (the first maps C -> 64, the last 64 -> C), global residual.

    ``forward(lr)``: ``[N, C, h, w]`` in [0, 1] -> ``bicubic(lr) + residual``, ``[N, C, h*scale,
    w*scale]`` (not clamped), ``C = 1`` (``color="y"``, the paper) or 3 (``color="rgb"``). Zero padding
    keeps every layer at the HR size (the paper pads too).
    """

    def __init__(
        self,
        scale: int = 4,
        activation: str = "relu",
        color: str = "y",
        depth: int = 20,
        num_features: int = 64,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale, "vdsr")
        self.color = color
        self.in_channels = color_channels(color, "vdsr")
        check_activation(activation)
        if depth < 2:
            raise ValueError(f"vdsr: depth must be >= 2, got {depth}")
        c, n = self.in_channels, num_features
        layers: list[nn.Module] = [conv(c, n, 3), make_activation(activation, num_parameters=n)]
        for _ in range(depth - 2):
            layers += [conv(n, n, 3), make_activation(activation, num_parameters=n)]
        layers.append(conv(n, c, 3))
        self.body = nn.Sequential(*layers)
        self._init_weights()
        # Receptive field: `depth` 3x3 convs see `depth` HR pixels around an output pixel, i.e.
        # ceil(depth/scale) LR pixels, plus the bicubic kernel's 2-pixel radius.
        self.receptive_field: int = hr_radius_to_lr(depth, scale) + BICUBIC_RADIUS

    def _init_weights(self) -> None:
        # The paper uses He et al.'s init: N(0, sqrt(2 / (k*k*out_channels))) in its Caffe code.
        for mod in self.body:
            if isinstance(mod, nn.Conv2d):
                k = mod.kernel_size[0]
                nn.init.normal_(mod.weight, 0.0, math.sqrt(2.0 / (k * k * mod.out_channels)))
                nn.init.zeros_(mod.bias)

    def forward(self, lr: Tensor) -> Tensor:
        up = bicubic_upsample(lr, self.scale)
        return up + self.body(up)
