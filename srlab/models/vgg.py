"""VGG19 feature extractor for SRGAN's perceptual ("VGG") content loss.

torchvision is not a dependency, so the ``features`` part of torchvision's ``vgg19`` is rebuilt here with
the same layer indices: the standard ImageNet state dict (``features.N.weight`` / ``features.N.bias``)
loads directly. Layer names follow the usual convention (``conv{block}_{n}``, ``relu{block}_{n}``,
``pool{block}``); index map (torchvision ``vgg19().features``)::

    conv1_1 0   conv1_2 2   pool1 4
    conv2_1 5   conv2_2 7   pool2 9
    conv3_1 10  conv3_2 12  conv3_3 14  conv3_4 16  pool3 18
    conv4_1 19  conv4_2 21  conv4_3 23  conv4_4 25  pool4 27
    conv5_1 28  conv5_2 30  conv5_3 32  conv5_4 34  pool5 36     (relu{b}_{n} = conv index + 1)

``"VGG54"`` / ``"VGG22"`` are aliases of ``conv5_4`` / ``conv2_2``, i.e. features *before* the ReLU (as
ESRGAN argues: post-ReLU maps are sparse and lose information). The SRGAN paper's phi_{5,4} is taken
after the activation; pass ``layer="relu5_4"`` for that.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.error import URLError

import torch
from torch import Tensor, nn

#: torchvision's ImageNet VGG19 weights (``VGG19_Weights.IMAGENET1K_V1``).
DEFAULT_URL = "https://download.pytorch.org/models/vgg19-dcbf0897.pth"

#: ImageNet statistics the torchvision weights were trained with (RGB, [0, 1] inputs).
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

# torchvision's configuration "E": channels per conv, "M" = 2x2 max pool.
_VGG19_CFG: list[int | str] = [
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
]

LAYER_ALIASES: dict[str, str] = {"VGG22": "conv2_2", "VGG54": "conv5_4"}


def _layer_names() -> list[str]:
    """Names of ``vgg19().features[i]`` in index order."""
    names: list[str] = []
    block, n = 1, 1
    for v in _VGG19_CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, n = block + 1, 1
        else:
            names += [f"conv{block}_{n}", f"relu{block}_{n}"]
            n += 1
    return names


VGG19_LAYERS: tuple[str, ...] = tuple(_layer_names())


def _make_features(last_index: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for v in _VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, int(v), kernel_size=3, padding=1), nn.ReLU()]
            in_ch = int(v)
    return nn.Sequential(*layers[: last_index + 1])


class VGGFeatureExtractor(nn.Module):
    """Frozen VGG19 truncated after ``layer``.

    ``forward(img)``: ``[N, 3, H, W]`` RGB in [0, 1] (``[N, 1, H, W]`` is repeated to 3 channels) ->
    feature map ``[N, F, H / 2^p, W / 2^p]`` (``F = 512, p = 4`` for VGG54; ``F = 128, p = 1`` for
    VGG22). The ImageNet normalisation is applied inside. Parameters never require grad and the module
    stays in eval mode even when a parent calls ``.train()``; gradients still flow to ``img``.

    Args:
        layer: a name from :data:`VGG19_LAYERS` or an alias ``"VGG54"`` (default) / ``"VGG22"``.
        pretrained: load the ImageNet weights (via :func:`load_vgg19_weights`); ``False`` keeps the
            random init (tests).
        weights_path: local state-dict file to load instead of downloading (implies loading, even
            with ``pretrained=False``).
        url: download location used when ``weights_path`` is not given.
    """

    def __init__(
        self,
        layer: str = "VGG54",
        pretrained: bool = True,
        weights_path: str | os.PathLike[str] | None = None,
        url: str = DEFAULT_URL,
    ) -> None:
        super().__init__()
        resolved = LAYER_ALIASES.get(layer, layer)
        if resolved not in VGG19_LAYERS:
            raise ValueError(
                f"unknown VGG19 layer {layer!r}; use {', '.join(LAYER_ALIASES)} "
                f"or one of {', '.join(VGG19_LAYERS)}"
            )
        self.layer = resolved
        self.features = _make_features(VGG19_LAYERS.index(resolved))
        # Non-persistent: the state dict then holds exactly torchvision's ``features.*`` keys.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if pretrained or weights_path is not None:
            load_vgg19_weights(self, url=url, weights_path=weights_path)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        # A loss network must not change with the training mode of the model that owns it.
        return super().train(False)

    def forward(self, img: Tensor) -> Tensor:
        if img.shape[1] == 1:
            img = img.expand(-1, 3, -1, -1)
        return self.features((img - self.mean) / self.std)


def _hub_checkpoint_path(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def load_vgg19_weights(
    model: nn.Module,
    url: str = DEFAULT_URL,
    weights_path: str | os.PathLike[str] | None = None,
    check_hash: bool = False,
) -> nn.Module:
    """Load torchvision-format VGG19 ImageNet weights into ``model`` (in place; returns it).

    ``model`` must have a ``features`` ``nn.Sequential`` laid out like torchvision's (a
    :class:`VGGFeatureExtractor`, possibly truncated): keys of the file it does not have (deeper layers,
    ``classifier.*``) are ignored; keys it has must all be in the file.

    With ``weights_path`` the file is read locally (``torch.load(..., weights_only=True)``, or
    safetensors for ``*.safetensors``). Otherwise ``torch.hub.load_state_dict_from_url`` fetches ``url``
    into ``torch.hub.get_dir()/checkpoints/`` (or reuses the file already there, with no network).
    ``check_hash`` defaults to False as in torchvision; True verifies the SHA-256 prefix in the file name
    on download.

    Raises:
        RuntimeError: the download failed (offline machine): the message says where to put the file.
    """
    if weights_path is not None:
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"VGG19 weights file not found: {path}")
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    else:
        try:
            state = torch.hub.load_state_dict_from_url(
                url, map_location="cpu", progress=True, check_hash=check_hash
            )
        except (URLError, OSError, TimeoutError) as err:  # URLError/HTTPError are OSErrors too
            target = _hub_checkpoint_path(url)
            raise RuntimeError(
                f"Could not download the VGG19 ImageNet weights from {url} ({err}). The perceptual loss "
                f"needs them. On a machine without internet access, download that file elsewhere and "
                f"either place it at {target} "
                f"(torch hub's checkpoints dir, torch.hub.get_dir()/checkpoints/) "
                f"or pass weights_path=/path/to/{os.path.basename(url)}."
            ) from err
    if not isinstance(state, dict):
        raise RuntimeError(f"VGG19 weights: expected a state dict, got {type(state).__name__}")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    if missing:
        raise RuntimeError(
            f"VGG19 weights lack {len(missing)} keys the model needs (first: {missing[:3]}); "
            "expected a torchvision vgg19 state dict with features.N.weight/bias keys"
        )
    model.load_state_dict({k: state[k] for k in own}, strict=True)
    return model
