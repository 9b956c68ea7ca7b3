"""EDSR (Lim et al., "Enhanced Deep Residual Networks for Single Image Super-Resolution", CVPRW 2017).

conv3x3 head -> B residual blocks (conv-ReLU-conv, no batch norm, optional residual scaling) -> conv3x3
-> long skip from the head -> pixel-shuffle upsampler -> conv3x3 tail. The DIV2K mean is subtracted at
the input and added back at the output.

* ``edsr``: B=32 blocks, F=256 features, residual scaling 0.1 (43.1 M parameters at x4).
* ``edsr_baseline``: B=16, F=64, no scaling (1.52 M at x4).
"""

from __future__ import annotations

from torch import Tensor, nn

from .common import (
    DIV2K_RGB_MEAN,
    MeanShift,
    PixelShuffleUpsampler,
    check_activation,
    check_scale,
    color_channels,
    conv,
    make_activation,
)


class ResBlock(nn.Module):
    """EDSR residual block: ``x + res_scale * conv(act(conv(x)))``.

    No batch norm: Lim et al. show BN removes range flexibility and costs memory without helping SR.
    Residual scaling (0.1) keeps the 256-feature model stable in training (Szegedy et al.).
    """

    def __init__(self, channels: int, activation: str = "relu", res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(channels, channels, 3),
            make_activation(activation, num_parameters=channels),
            conv(channels, channels, 3),
        )
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x) * self.res_scale


class EDSR(nn.Module):
    """EDSR (the full model by default).

    ``forward(lr)``: RGB ``[N, 3, h, w]`` in [0, 1] -> ``[N, 3, h*scale, w*scale]`` (not clamped).
    ``activation`` replaces the ReLU inside every residual block (the only activation sites; the
    upsampler has none, as in the paper's code).
    """

    def __init__(
        self,
        scale: int = 4,
        activation: str = "relu",
        num_blocks: int = 32,
        num_features: int = 256,
        res_scale: float = 0.1,
        rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        name = type(self).__name__.lower()
        self.scale = check_scale(scale, name)
        self.color = "rgb"
        self.in_channels = color_channels(self.color, name)
        check_activation(activation)
        c, n = self.in_channels, num_features
        self.sub_mean = MeanShift(rgb_mean, sign=-1)
        self.head = conv(c, n, 3)
        self.body = nn.Sequential(
            *[ResBlock(n, activation, res_scale) for _ in range(num_blocks)],
            conv(n, n, 3),
        )
        upsampler = PixelShuffleUpsampler(scale, n)
        self.tail = nn.Sequential(upsampler, conv(n, c, 3))
        self.add_mean = MeanShift(rgb_mean, sign=+1)
        # Receptive field (LR pixels, radius): every 3x3 conv adds at most 1 LR pixel (convs after a
        # shuffle add less: 1/2 or 1/4 LR pixel, rounded up to 1). head 1 + 2 per block + body conv 1
        # + upsampler convs + tail 1.
        self.receptive_field: int = 1 + 2 * num_blocks + 1 + upsampler.num_convs + 1

    def forward(self, lr: Tensor) -> Tensor:
        x = self.head(self.sub_mean(lr))
        x = x + self.body(x)  # long skip connection
        return self.add_mean(self.tail(x))


class EDSRBaseline(EDSR):
    """EDSR baseline: 16 blocks x 64 features, no residual scaling (1.52 M parameters at x4)."""

    def __init__(
        self,
        scale: int = 4,
        activation: str = "relu",
        num_blocks: int = 16,
        num_features: int = 64,
        res_scale: float = 1.0,
        rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__(scale, activation, num_blocks, num_features, res_scale, rgb_mean)
