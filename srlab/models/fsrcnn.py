"""FSRCNN (Dong et al., "Accelerating the Super-Resolution Convolutional Neural Network", ECCV 2016).

FSRCNN(d=56, s=12, m=4): feature extraction conv5x5(d), shrinking conv1x1(s), m mapping conv3x3(s),
expanding conv1x1(d), each followed by PReLU, then a 9x9 deconvolution with stride = scale. All
convolutions run on the LR grid; only the last layer produces HR pixels.
"""

from __future__ import annotations

from torch import Tensor, nn

from .common import check_activation, check_scale, color_channels, conv, hr_radius_to_lr, make_activation


class FSRCNN(nn.Module):
    """FSRCNN with the paper's default ``d=56, s=12, m=4``.

    ``forward(lr)``: ``[N, C, h, w]`` in [0, 1] -> ``[N, C, h*scale, w*scale]`` (not clamped), ``C = 1``
    (``color="y"``, the paper) or 3 (``color="rgb"``).
    """

    def __init__(
        self,
        scale: int = 4,
        activation: str = "prelu",
        color: str = "y",
        d: int = 56,
        s: int = 12,
        m: int = 4,
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale, "fsrcnn")
        self.color = color
        self.in_channels = color_channels(color, "fsrcnn")
        check_activation(activation)
        c = self.in_channels

        def act(ch: int) -> nn.Module:
            # Per-channel PReLU slopes, as in the paper (He et al. 2015's PReLU).
            return make_activation(activation, num_parameters=ch)

        layers: list[nn.Module] = [conv(c, d, 5), act(d), conv(d, s, 1), act(s)]
        for _ in range(m):
            layers += [conv(s, s, 3), act(s)]
        layers += [conv(s, d, 1), act(d)]
        self.body = nn.Sequential(*layers)
        # Deconvolution: output index = input index * scale - padding + kernel tap, so padding 4 centres
        # the 9x9 kernel on each LR pixel's HR block and output_padding = scale - 1 makes the output
        # exactly h*scale x w*scale.
        self.deconv = nn.ConvTranspose2d(d, c, 9, stride=scale, padding=4, output_padding=scale - 1)
        self._init_weights(activation)
        # Receptive field (LR pixels, radius): 2 (5x5) + m (3x3 mapping layers) on the LR grid, and the
        # deconvolution reaches ceil(4/scale) + 1 LR pixels (the +1 covers the output_padding side).
        self.receptive_field: int = 2 + m + hr_radius_to_lr(4, scale) + 1

    def _init_weights(self, activation: str) -> None:
        # The paper: convs with He et al.'s PReLU-aware init, deconv N(0, 0.001), zero biases.
        a = 0.25 if activation == "prelu" else 0.0
        for mod in self.body:
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, a=a, nonlinearity="leaky_relu")
                nn.init.zeros_(mod.bias)
        nn.init.normal_(self.deconv.weight, mean=0.0, std=1e-3)
        nn.init.zeros_(self.deconv.bias)

    def forward(self, lr: Tensor) -> Tensor:
        return self.deconv(self.body(lr))
