"""Tests for srlab.models: registry, shapes, parameter counts, behaviour, SRGAN helpers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from srlab.models import (
    ACTIVATIONS,
    MODELS,
    SRGANDiscriminator,
    VGGFeatureExtractor,
    build_model,
    load_vgg19_weights,
    make_activation,
    model_names,
)
from srlab.models.common import DIV2K_RGB_MEAN
from srlab.models.vgg import DEFAULT_URL, VGG19_LAYERS

ROOT = Path(__file__).resolve().parents[1]

# Reference parameter counts at x4 (papers / their reference code), Y networks on one channel.
REFERENCE_PARAMS_X4 = {
    "srcnn": 57_281,
    "fsrcnn": 12_800,
    "espcn": 24_700,
    "vdsr": 665_000,
    "edsr": 43_100_000,
    "edsr_baseline": 1_520_000,
    "rdn": 22_000_000,
    "srresnet": 1_550_000,
    "srgan": 1_550_000,
}

Y_NETS = {"srcnn", "fsrcnn", "espcn", "vdsr"}


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta_model(name: str, scale: int, **kwargs) -> torch.nn.Module:
    # Parameters on the meta device: shapes only, no memory or init cost (EDSR has 43 M parameters).
    with torch.device("meta"):
        return build_model(name, scale, **kwargs)


def test_registry() -> None:
    assert model_names() == list(MODELS)
    assert set(model_names()) == set(REFERENCE_PARAMS_X4)
    with pytest.raises(ValueError, match="srcnn"):
        build_model("nope", 4)


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS_X4))
def test_param_count_x4(name: str) -> None:
    n = _count(_meta_model(name, 4))
    ref = REFERENCE_PARAMS_X4[name]
    assert abs(n - ref) / ref < 0.02, f"{name}: {n:,} parameters vs reference {ref:,}"


def test_attributes() -> None:
    for name in model_names():
        net = _meta_model(name, 3)
        assert net.scale == 3
        expected = "y" if name in Y_NETS else "rgb"
        assert net.color == expected and net.in_channels == (1 if expected == "y" else 3)
        assert isinstance(net.receptive_field, int) and net.receptive_field > 0
    for name in Y_NETS:
        net = _meta_model(name, 2, color="rgb")
        assert net.color == "rgb" and net.in_channels == 3


# Small networks run on 8x8 inputs; the heavy ones on 4x4 (same code paths, ~4x less compute).
_HEAVY = {"edsr", "rdn"}


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", list(MODELS))
def test_forward_backward(name: str, scale: int) -> None:
    torch.manual_seed(0)
    net = build_model(name, scale)
    size = 4 if name in _HEAVY else 8
    lr = torch.rand(2, net.in_channels, size, size)
    sr = net(lr)
    assert sr.shape == (2, net.in_channels, size * scale, size * scale)
    loss = F.l1_loss(sr, torch.rand_like(sr))
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # The first parameter (the first conv) is the farthest from the loss: gradient must reach it.
    assert grads[0].abs().sum() > 0


@pytest.mark.parametrize("name", sorted(Y_NETS))
def test_y_networks_rgb_variant(name: str) -> None:
    net = build_model(name, 2, color="rgb")
    assert net(torch.rand(1, 3, 8, 8)).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="color"):
        build_model(name, 2, color="ycbcr")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation(activation: str) -> None:
    for name in ("fsrcnn", "edsr_baseline"):
        net = build_model(name, 2, activation=activation, **({"num_blocks": 2} if name != "fsrcnn" else {}))
        out = net(torch.rand(1, net.in_channels, 8, 8))
        assert out.shape[-2:] == (16, 16) and torch.isfinite(out).all()
    # PReLU gets one slope per channel where a channel count is given.
    assert make_activation("prelu", num_parameters=7).weight.numel() == 7


def test_activation_replaces_all_sites() -> None:
    net = build_model("srresnet", 4, activation="elu", num_blocks=2)
    assert not any(isinstance(m, torch.nn.PReLU) for m in net.modules())
    assert sum(isinstance(m, torch.nn.ELU) for m in net.modules()) == 1 + 2 + 2  # head, blocks, upsampler


def test_invalid_options() -> None:
    with pytest.raises(ValueError, match="relu, leaky_relu, prelu, elu, tanh, sigmoid"):
        make_activation("swish")
    for name in model_names():
        with pytest.raises(ValueError, match="activation"):
            build_model(name, 2, activation="gelu")
        for bad_scale in (1, 5, 8):
            with pytest.raises(ValueError, match="scale"):
                build_model(name, bad_scale)


# --- behaviour -----------------------------------------------------------------------------------------


def _bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


@torch.no_grad()
def test_vdsr_is_bicubic_plus_residual() -> None:
    net = build_model("vdsr", 3)
    last = net.body[-1]
    last.weight.zero_()
    last.bias.zero_()
    lr = torch.rand(2, 1, 8, 8)
    assert torch.equal(net(lr), _bicubic(lr, 3))


@torch.no_grad()
def test_srcnn_works_on_bicubic_upsampling() -> None:
    # Turn SRCNN into identity kernels (delta at the centre, channel 0 -> 0): what remains is ReLU applied
    # twice to its input, so the output must be exactly relu(bicubic(lr)) if the input is bicubic.
    net = build_model("srcnn", 4)
    for conv in net.body[::2]:
        conv.weight.zero_()
        conv.bias.zero_()
        k = conv.kernel_size[0] // 2
        conv.weight[0, 0, k, k] = 1.0
    lr = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(net(lr), _bicubic(lr, 4).clamp_min(0), rtol=0, atol=1e-6)


@torch.no_grad()
@pytest.mark.parametrize("name", ["edsr_baseline", "rdn", "srresnet"])
def test_rgb_networks_add_the_mean_back(name: str) -> None:
    # With the last conv zeroed the body contributes nothing: the output is the DIV2K mean image,
    # independent of the input (proves the mean is subtracted/added inside, and nothing else is added).
    kwargs = {"num_blocks": 2}
    net = build_model(name, 2, **kwargs).eval()
    last = net.upsample[-1] if name == "rdn" else net.tail[-1]
    last.weight.zero_()
    last.bias.zero_()
    out = net(torch.rand(2, 3, 8, 8))
    expected = torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1).expand_as(out)
    assert torch.equal(out, expected)


@torch.no_grad()
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", [n for n in MODELS if n not in {"edsr", "srgan"}])
def test_receptive_field_is_an_upper_bound(name: str, scale: int) -> None:
    # Perturb LR column 0 of a one-row strip: HR columns of LR pixels beyond the claimed radius must be
    # bit-identical. (Float64 and eval mode: no batch-norm coupling between pixels.) EDSR full has the
    # same structure as edsr_baseline (the bound formula is shared); srgan is srresnet.
    torch.manual_seed(0)
    net = build_model(name, scale).double().eval()
    rf = net.receptive_field
    width = rf + 4
    lr = torch.rand(1, net.in_channels, 1, width, dtype=torch.float64)
    lr2 = lr.clone()
    lr2[..., 0] += 0.5
    diff = (net(lr) - net(lr2)).abs().amax(dim=(0, 1, 2))  # per HR column
    assert diff[: scale].max() > 0  # the perturbed pixel does matter
    assert diff[(rf + 1) * scale :].max() == 0, f"{name} x{scale}: receptive field {rf} too small"


# --- SRGAN helpers -------------------------------------------------------------------------------------


def test_discriminator_any_patch_size() -> None:
    torch.manual_seed(0)
    for pool_size in (6, 1):
        disc = SRGANDiscriminator(pool_size=pool_size)
        for size in (24, 40):
            logits = disc(torch.rand(2, 3, size, size))
            assert logits.shape == (2, 1)
    # The default is the paper's discriminator on 96x96 patches: 512x6x6 flattened into Dense(1024).
    assert SRGANDiscriminator().classifier[1].in_features == 512 * 6 * 6
    logits = disc(torch.rand(2, 3, 24, 24))
    F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)).backward()
    assert disc.features[0].weight.grad is not None


def test_vgg_layout_matches_torchvision() -> None:
    vgg = VGGFeatureExtractor(pretrained=False)
    keys = list(vgg.state_dict())
    convs = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    assert keys == [f"features.{i}.{p}" for i in convs for p in ("weight", "bias")]
    assert isinstance(vgg.features[-1], torch.nn.Conv2d)  # VGG54 = conv5_4 before its ReLU
    assert VGG19_LAYERS[34] == "conv5_4" and VGG19_LAYERS[36] == "pool5"
    assert all(not p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    feats = vgg(x)
    assert feats.shape == (1, 512, 2, 2)
    feats.sum().backward()
    assert x.grad is not None  # gradients reach the SR image even though VGG is frozen

    vgg22 = VGGFeatureExtractor("VGG22", pretrained=False)
    assert len(vgg22.features) == 8 and vgg22(torch.rand(1, 3, 16, 16)).shape == (1, 128, 8, 8)
    with pytest.raises(ValueError, match="VGG19 layer"):
        VGGFeatureExtractor("conv6_1", pretrained=False)


def test_vgg_loads_local_weights(tmp_path: Path) -> None:
    # A torchvision-like full state dict (all 16 convs + a classifier key the extractor must ignore).
    src = VGGFeatureExtractor("pool5", pretrained=False)
    state = {k: torch.randn_like(v) for k, v in src.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    vgg = VGGFeatureExtractor("VGG22", weights_path=path)
    assert torch.equal(vgg.features[7].weight, state["features.7.weight"])
    assert all(not p.requires_grad for p in vgg.parameters())
    # Loading into an existing model works too.
    other = VGGFeatureExtractor("VGG54", pretrained=False)
    load_vgg19_weights(other, weights_path=path)
    assert torch.equal(other.features[34].bias, state["features.34.bias"])


def test_vgg_download_failure_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="Could not download") as info:
        VGGFeatureExtractor(pretrained=True)
    msg = str(info.value)
    assert DEFAULT_URL in msg and "checkpoints" in msg and "weights_path" in msg


# --- configs and CLI -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_hydra_config_instantiates(name: str) -> None:
    cfg = OmegaConf.load(ROOT / "conf" / "model" / f"{name}.yaml")
    root = OmegaConf.create({"scale": 3, "model": cfg})
    assert root.model.name == name and root.model.loss in ("l1", "l2") and root.model.lr > 0
    with torch.device("meta"):
        net = instantiate(root.model.net)
    assert isinstance(net, MODELS[name]) and net.scale == 3


def test_cli_table() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "srlab.models", "--scale", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    for name in model_names():
        assert f"\n{name} " in res.stdout
