"""SRGAN discriminator (Ledig et al. 2017, Fig. 4): a VGG-style binary classifier, HR vs. SR.

Eight 3x3 convs, 64 -> 512 features doubling every two layers, strides alternating 1/2, LeakyReLU(0.2),
batch norm on all but the first; then Dense(1024) - LeakyReLU(0.2) - Dense(1). The final sigmoid is
left out: the module returns a *logit* per image, to be used with ``BCEWithLogitsLoss`` (numerically
safer than sigmoid + BCE).
"""

from __future__ import annotations

from torch import Tensor, nn


class SRGANDiscriminator(nn.Module):
    """``forward(img)``: ``[N, C, H, W]`` in [0, 1] (HR or SR) -> logits ``[N, 1]``; any ``H, W >= 1``.

    The paper flattens the 512 x 6 x 6 map of its 96 x 96 patches into the dense layer, which fixes the
    input size. An ``AdaptiveAvgPool2d(pool_size)`` before the dense layers lifts that restriction: with
    the default ``pool_size=6`` the network is exactly the paper's on 96 x 96 patches (pooling a 6 x 6 map
    to 6 x 6 is the identity) and still accepts any other patch size; ``pool_size=1`` gives a lighter
    global-average variant (the 512*6*6 -> 1024 dense layer alone holds 18.9 M parameters).

    The activation is always LeakyReLU (the paper's choice), independent of the generator's option.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_features: int = 64,
        pool_size: int = 6,
        negative_slope: float = 0.2,
        dense_features: int = 1024,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, num_features, 3, padding=1),
            nn.LeakyReLU(negative_slope),
        ]
        # (out_features, stride) for conv layers 2..8: k3n64s2, k3n128s1, k3n128s2, ..., k3n512s2.
        plan = [(num_features, 2)]
        for mult in (2, 4, 8):
            plan += [(num_features * mult, 1), (num_features * mult, 2)]
        ch = num_features
        for out_ch, stride in plan:
            layers += [
                # No conv bias: the following batch norm's shift makes it redundant.
                nn.Conv2d(ch, out_ch, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.LeakyReLU(negative_slope),
            ]
            ch = out_ch
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(pool_size)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(ch * pool_size * pool_size, dense_features),
            nn.LeakyReLU(negative_slope),
            nn.Linear(dense_features, 1),
        )

    def forward(self, img: Tensor) -> Tensor:
        # SRGAN feeds the discriminator images in [-1, 1]; map [0, 1] there so inputs are zero-centred.
        return self.classifier(self.pool(self.features(img * 2.0 - 1.0)))
