"""Building blocks shared by the SR networks.

Conventions used by every network in :mod:`srlab.models`:

* tensors are ``N x C x H x W`` float; LR input in [0, 1]; SR output is *not* clamped (clamping is the
  caller's business, so losses see the raw output and gradients are not cut at the range limits);
* ``C`` is 1 for Y-channel networks (BT.601 Y scaled to [0, 1], see :mod:`srlab.color`) and 3 for RGB.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: Activation names accepted by :func:`make_activation` (and by every network's ``activation=``).
ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "prelu", "elu", "tanh", "sigmoid")

#: Mean RGB of the DIV2K training set in [0, 1] (EDSR/RDN's ``rgb_mean``, divided by 255 there).
DIV2K_RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)

#: Scales the networks are built for (x2, x3, x4: the standard benchmark scales).
SCALES: tuple[int, ...] = (2, 3, 4)

#: ``color`` option -> number of image channels.
COLOR_CHANNELS: dict[str, int] = {"y": 1, "rgb": 3}


def make_activation(name: str, num_parameters: int = 1, negative_slope: float = 0.2) -> nn.Module:
    """Return a fresh activation module.

    Args:
        name: one of :data:`ACTIVATIONS`.
        num_parameters: number of PReLU slopes; pass the channel count for per-channel slopes as in
            He et al. 2015 (FSRCNN, SRGAN). Ignored by the other activations.
        negative_slope: LeakyReLU slope. 0.2 rather than PyTorch's 0.01 because 0.2 is what the SR
            literature uses (SRGAN's discriminator, ESRGAN).
    """
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope)
    if name == "prelu":
        return nn.PReLU(num_parameters)
    if name == "elu":
        return nn.ELU()
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")


def check_activation(name: str) -> str:
    """Validate an activation name up front (so a bad config fails before any layer is built)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return name


def check_scale(scale: int, model: str, allowed: tuple[int, ...] = SCALES) -> int:
    """Raise a clear ``ValueError`` unless ``scale`` is one the network is built for."""
    # bool is an int subclass; reject it too (scale=True would silently mean x1).
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in allowed:
        raise ValueError(
            f"{model} supports scale {', '.join(map(str, allowed))}; got {scale!r}"
        )
    return scale


def color_channels(color: str, model: str) -> int:
    """``"y"`` -> 1, ``"rgb"`` -> 3; anything else is a ``ValueError``."""
    if color not in COLOR_CHANNELS:
        raise ValueError(f"{model}: color must be one of {', '.join(COLOR_CHANNELS)}; got {color!r}")
    return COLOR_CHANNELS[color]


def conv(in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> nn.Conv2d:
    """'Same' convolution (stride 1, zero padding ``k // 2``), EDSR's ``default_conv``."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=bias)


class MeanShift(nn.Module):
    """Add ``sign * mean`` per channel: ``sign=-1`` centres the input, ``sign=+1`` restores it.

    EDSR/RDN subtract the training-set mean at the input and add it back at the output, so the body
    works on roughly zero-mean data and the identity (all-zero body) maps to the mean image. EDSR does
    this with a frozen 1x1 conv; a non-persistent buffer is equivalent, keeps the state dict free of
    constants, and follows ``.to(device/dtype)``.
    """

    def __init__(self, mean: tuple[float, ...] = DIV2K_RGB_MEAN, sign: int = -1) -> None:
        super().__init__()
        if sign not in (-1, 1):
            raise ValueError(f"sign must be -1 or +1, got {sign}")
        self.register_buffer(
            "shift", sign * torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.shift


class PixelShuffleUpsampler(nn.Sequential):
    """Sub-pixel convolution upsampler (Shi et al. 2016) as used by EDSR and SRGAN.

    x2 / x4: one / two stages of ``conv3x3(n, 4n) -> PixelShuffle(2)``; x3: ``conv3x3(n, 9n) ->
    PixelShuffle(3)``. Stacking x2 stages (rather than one x4 shuffle) is EDSR's and SRGAN's design: each
    conv works at a resolution where a 3x3 kernel still sees neighbouring output pixels.

    Args:
        scale: 2, 3 or 4.
        channels: feature channels in and out.
        activation: optional activation name placed after each shuffle (SRGAN: PReLU; EDSR: none).
    """

    def __init__(self, scale: int, channels: int, activation: str | None = None) -> None:
        if scale == 3:
            factors = [3]
        elif scale > 0 and scale & (scale - 1) == 0:
            factors = [2] * int(math.log2(scale))
        else:
            raise ValueError(f"pixel-shuffle upsampler supports scale 2^n or 3; got {scale}")
        layers: list[nn.Module] = []
        for r in factors:
            layers += [conv(channels, channels * r * r, 3), nn.PixelShuffle(r)]
            if activation is not None:
                layers.append(make_activation(activation, num_parameters=channels))
        super().__init__(*layers)
        #: Number of 3x3 convs (each adds at most 1 LR pixel of receptive-field radius).
        self.num_convs = len(factors)


def bicubic_upsample(x: Tensor, scale: int) -> Tensor:
    """The bicubic pre-upsampling of SRCNN/VDSR, done inside the network so every model is LR -> SR.

    ``align_corners=False`` puts output pixel centres where image resizing puts them. Note that torch's
    bicubic uses a = -0.75 and no antialiasing (irrelevant when upscaling), while MATLAB/Pillow use
    a = -0.5: the networks learn to correct whichever interpolation they were trained with.
    """
    return nn.functional.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


#: LR-pixel radius of torch's bicubic kernel (4 taps: each output depends on LR pixels within 2).
BICUBIC_RADIUS = 2


def hr_radius_to_lr(radius_hr: int, scale: int) -> int:
    """Upper bound, in LR pixels, of a receptive-field radius measured on the HR grid."""
    return -(-radius_hr // scale)  # ceil division
