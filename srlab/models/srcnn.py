"""SRCNN (Dong et al., "Image Super-Resolution Using Deep Convolutional Networks", TPAMI 2015).

The 9-5-5 network with 64/32 filters: patch extraction (9x9), non-linear mapping (5x5), reconstruction
(5x5), ReLU after the first two layers. SRCNN works on a bicubic-upsampled image; here the upsampling is
done inside :meth:`SRCNN.forward` so the network has the same LR -> SR contract as every other model.
"""

from __future__ import annotations

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


class SRCNN(nn.Module):
    """SRCNN 9-5-5.

    ``forward(lr)``: ``[N, C, h, w]`` in [0, 1] -> ``[N, C, h*scale, w*scale]`` (not clamped), where
    ``C = 1`` (``color="y"``, the paper's setting) or 3 (``color="rgb"``).

    The paper trains with "valid" convolutions (output 12 px smaller than the input); we use zero
    padding ("same" convs) so the output size is exact. PyTorch's default init is used instead of the
    paper's N(0, 0.001): with Adam the difference does not matter and the default trains faster.
    """

    def __init__(
        self,
        scale: int = 4,
        activation: str = "relu",
        color: str = "y",
        num_features: tuple[int, int] = (64, 32),
        kernel_sizes: tuple[int, int, int] = (9, 5, 5),
    ) -> None:
        super().__init__()
        self.scale = check_scale(scale, "srcnn")
        self.color = color
        self.in_channels = color_channels(color, "srcnn")
        check_activation(activation)
        n1, n2 = num_features
        k1, k2, k3 = kernel_sizes
        c = self.in_channels
        self.body = nn.Sequential(
            conv(c, n1, k1),
            make_activation(activation, num_parameters=n1),
            conv(n1, n2, k2),
            make_activation(activation, num_parameters=n2),
            conv(n2, c, k3),
        )
        # Receptive field: the convs see (k1+k2+k3-3)/2 = 8 HR pixels around an output pixel; in LR
        # pixels that is ceil(8/scale), plus the 2-pixel radius of the bicubic kernel.
        radius_hr = (k1 // 2) + (k2 // 2) + (k3 // 2)
        self.receptive_field: int = hr_radius_to_lr(radius_hr, scale) + BICUBIC_RADIUS

    def forward(self, lr: Tensor) -> Tensor:
        return self.body(bicubic_upsample(lr, self.scale))
