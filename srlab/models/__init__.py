"""SR network architectures and their registry.

Every registered network is an ``nn.Module`` with ``forward(lr) -> sr``: ``lr`` is ``[N, C, h, w]`` float
in [0, 1], ``sr`` is ``[N, C, h*scale, w*scale]`` (not clamped). ``C = 1`` for the Y-channel networks
(srcnn, fsrcnn, espcn, vdsr; ``color="rgb"`` makes them 3-channel) and 3 for the RGB ones. Each has the
attributes ``scale``, ``in_channels``, ``color`` ("y" | "rgb") and ``receptive_field`` (an upper bound
of the radius, in LR pixels, of the input region an output pixel depends on; for tiled inference).

The registry is an explicit dict: importing a model file registers nothing by side effect.
"""

from __future__ import annotations

from torch import nn

from .common import ACTIVATIONS, SCALES, make_activation
from .discriminator import SRGANDiscriminator
from .edsr import EDSR, EDSRBaseline
from .espcn import ESPCN
from .fsrcnn import FSRCNN
from .rdn import RDN
from .srcnn import SRCNN
from .srresnet import SRResNet
from .vdsr import VDSR
from .vgg import VGGFeatureExtractor, load_vgg19_weights

#: Generator networks by name. ``srgan`` is the SRResNet architecture (SRGAN's generator); the SRGAN
#: training module pairs it with :class:`SRGANDiscriminator` and the VGG loss.
MODELS: dict[str, type[nn.Module]] = {
    "srcnn": SRCNN,
    "fsrcnn": FSRCNN,
    "espcn": ESPCN,
    "vdsr": VDSR,
    "edsr": EDSR,
    "edsr_baseline": EDSRBaseline,
    "rdn": RDN,
    "srresnet": SRResNet,
    "srgan": SRResNet,
}


def model_names() -> list[str]:
    """Registered network names, in registry order."""
    return list(MODELS)


def build_model(name: str, scale: int, **kwargs: object) -> nn.Module:
    """Instantiate network ``name`` for ``scale`` (2, 3 or 4); ``kwargs`` go to its constructor
    (``activation``, ``color`` for the Y networks, architecture sizes)."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}") from None
    return cls(scale=scale, **kwargs)


__all__ = [
    "ACTIVATIONS",
    "EDSR",
    "ESPCN",
    "FSRCNN",
    "MODELS",
    "RDN",
    "SCALES",
    "SRCNN",
    "SRGANDiscriminator",
    "SRResNet",
    "VDSR",
    "EDSRBaseline",
    "VGGFeatureExtractor",
    "build_model",
    "load_vgg19_weights",
    "make_activation",
    "model_names",
]
