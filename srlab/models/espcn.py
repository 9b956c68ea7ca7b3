"""ESPCN (Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
Convolutional Neural Network", CVPR 2016).

Three LR-grid convolutions (5x5 -> 64, 3x3 -> 32, 3x3 -> C*scale^2) with tanh, then a pixel shuffle
(the "sub-pixel convolution") rearranges the C*scale^2 channels into a C-channel HR image.
"""

from __future__ import annotations

from torch import Tensor, nn

from .common import check_activation, check_scale, color_channels, conv, make_activation


class ESPCN(nn.Module):
    """ESPCN 5-3-3 with 64/32 filters and tanh (the paper's choice over ReLU).

    ``forward(lr)``: ``[N, C, h, w]`` in [0, 1] -> ``[N, C, h*scale, w*scale]`` (not clamped), ``C = 1``
    (``color="y"``, the paper) or 3 (``color="rgb"``). PyTorch's default init (the paper does not
    prescribe one that matters with Adam).
    """

    def __init__(
        self,
        scale: int = 4,
        activation: str = "tanh",
        color: str = "y",
        num_features: tuple[int, int] = (64, 32),
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale, "espcn")
        self.color = color
        self.in_channels = color_channels(color, "espcn")
        check_activation(activation)
        n1, n2 = num_features
        c = self.in_channels
        self.body = nn.Sequential(
            conv(c, n1, 5),
            make_activation(activation, num_parameters=n1),
            conv(n1, n2, 3),
            make_activation(activation, num_parameters=n2),
            # No activation on the last layer: it predicts pixel values directly.
            conv(n2, c * scale * scale, 3),
            nn.PixelShuffle(scale),
        )
        # Receptive field: 2 + 1 + 1 LR pixels; the pixel shuffle mixes nothing spatially.
        self.receptive_field: int = 4

    def forward(self, lr: Tensor) -> Tensor:
        return self.body(lr)
