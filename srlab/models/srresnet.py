"""SRResNet / SRGAN generator (Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", CVPR 2017).

conv9x9 + PReLU -> B=16 residual blocks (conv3x3-BN-PReLU-conv3x3-BN, skip) -> conv3x3-BN -> long skip
-> two (x4) pixel-shuffle stages, each conv3x3(64 -> 256)-shuffle(2)-PReLU -> conv9x9 to RGB.
The same architecture is SRGAN's generator (``srgan`` in the registry); only the training differs.
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
    hr_radius_to_lr,
    make_activation,
)


class SRResBlock(nn.Module):
    """SRGAN residual block: ``x + BN(conv(act(BN(conv(x)))))``."""

    def __init__(self, channels: int, activation: str = "prelu") -> None:
        super().__init__()
        self.body = nn.Sequential(
            # Bias is redundant before BN (BN's shift absorbs it), so it is dropped.
            conv(channels, channels, 3, bias=False),
            nn.BatchNorm2d(channels),
            make_activation(activation, num_parameters=channels),
            conv(channels, channels, 3, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class SRResNet(nn.Module):
    """SRResNet (= SRGAN generator).

    ``forward(lr)``: RGB ``[N, 3, h, w]`` in [0, 1] -> ``[N, 3, h*scale, w*scale]`` (not clamped).
    ``activation`` replaces every PReLU (head, residual blocks, upsampler); PReLU slopes are per channel.

    Departures from the paper, both for consistency with the other RGB networks: the DIV2K mean is
    subtracted/added inside (the paper instead trains with HR targets scaled to [-1, 1]),
    and the paper's x4-only design is extended to x2 (one shuffle stage) and x3 (one x3 shuffle). The
    batch-norm layers make the output depend on the batch in training mode; use ``eval()`` at inference.
    """

    def __init__(
        self,
        scale: int = 4,
        activation: str = "prelu",
        num_blocks: int = 16,
        num_features: int = 64,
        rgb_mean: tuple[float, float, float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale, "srresnet")
        self.color = "rgb"
        self.in_channels = color_channels(self.color, "srresnet")
        check_activation(activation)
        c, n = self.in_channels, num_features
        self.sub_mean = MeanShift(rgb_mean, sign=-1)
        self.head = nn.Sequential(conv(c, n, 9), make_activation(activation, num_parameters=n))
        self.body = nn.Sequential(
            *[SRResBlock(n, activation) for _ in range(num_blocks)],
            conv(n, n, 3, bias=False),
            nn.BatchNorm2d(n),
        )
        upsampler = PixelShuffleUpsampler(scale, n, activation=activation)
        self.tail = nn.Sequential(upsampler, conv(n, c, 9))
        self.add_mean = MeanShift(rgb_mean, sign=+1)
        # Receptive field (LR pixels, radius): head 4 (9x9) + 2 per block + 1 + one per upsampler conv
        # (an upper bound for the conv after the first shuffle) + the 9x9 tail's 4 HR pixels in LR.
        self.receptive_field: int = (
            4 + 2 * num_blocks + 1 + upsampler.num_convs + hr_radius_to_lr(4, scale)
        )

    def forward(self, lr: Tensor) -> Tensor:
        x = self.head(self.sub_mean(lr))
        x = x + self.body(x)  # long skip connection
        return self.add_mean(self.tail(x))
