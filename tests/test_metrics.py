"""The paper protocol: known values, and the published bicubic baselines on real benchmark images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from srlab import metrics
from srlab.color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from srlab.imageio import read_image
from srlab.resize import bicubic_downscale, bicubic_upscale, modcrop


def as_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].double() / 255


def test_bt601_y_matches_matlab_rgb2ycbcr():
    white, black = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    assert rgb_to_y(white).item() == pytest.approx(235 / 255, abs=1e-6)
    assert rgb_to_y(black).item() == pytest.approx(16 / 255, abs=1e-6)
    # MATLAB: rgb2ycbcr(uint8([255 0 0])) = [81 90 240]
    red = torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1)
    assert (rgb_to_ycbcr(red).flatten() * 255).round().tolist() == [81, 90, 240]
    x = torch.rand(2, 3, 5, 5, dtype=torch.float64)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-12)


def test_psnr_known_value_and_border_crop():
    hr = torch.tensor([0.5, 0.3, 0.7], dtype=torch.float64).view(1, 3, 1, 1).repeat(1, 1, 12, 12)  # a colour image
    sr = hr.clone()
    sr[..., 2:-2, 2:-2] += 10 / 255  # Y error = 10 * (65.481 + 128.553 + 24.966) / 255 = 8.588 levels
    y_err = 10 * 219 / 255
    assert metrics.psnr(sr, hr, crop=2).item() == pytest.approx(20 * math.log10(255 / y_err), abs=2e-3)
    sr_border = hr.clone()
    sr_border[..., :2, :] = 0  # errors only inside the cropped border are ignored
    assert math.isinf(metrics.psnr(sr_border, hr, crop=2).item())
    rgb = metrics.psnr(sr, hr, crop=2, protocol="rgb").item()
    assert rgb == pytest.approx(20 * math.log10(255 / 10), abs=2e-3)
    with pytest.raises(ValueError, match="unknown protocol"):
        metrics.psnr(sr, hr, crop=2, protocol="lab")


def test_sr_is_rounded_to_8_bits_before_measuring():
    hr = torch.full((1, 3, 8, 8), 100 / 255, dtype=torch.float64)
    assert math.isinf(metrics.psnr_y(hr + 0.4 / 255, hr, 2).item())  # rounds back to 100


def test_ssim_identity_and_ordering():
    rng = torch.Generator().manual_seed(0)
    hr = torch.rand(1, 3, 32, 32, generator=rng, dtype=torch.float64)
    assert metrics.ssim_y(hr, hr, 2).item() == pytest.approx(1.0)
    slightly = (hr + 0.02 * torch.randn(hr.shape, generator=rng, dtype=torch.float64)).clamp(0, 1)
    very = (hr + 0.2 * torch.randn(hr.shape, generator=rng, dtype=torch.float64)).clamp(0, 1)
    assert 1 > metrics.ssim_y(slightly, hr, 2).item() > metrics.ssim_y(very, hr, 2).item()


def test_single_channel_files_are_measured_on_their_intensity():
    gray = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    hr = gray.expand(1, 3, 16, 16)
    sr = (gray + 0.05).clamp(0, 1).expand(1, 3, 16, 16)
    expected = metrics.psnr(sr[:, :1].contiguous(), hr[:, :1].contiguous(), crop=2)
    assert metrics.psnr_y(sr, hr, 2, gray=True).item() == pytest.approx(expected.item())
    assert metrics.psnr_y(sr, hr, 2, gray=[True]).item() == pytest.approx(expected.item())
    # An RGB file whose channels happen to be equal (Set14's man.png) is measured on Y, as MATLAB does:
    # Y spans 219/255 of the intensity range, so the same error reads 20*log10(255/219) dB higher.
    assert metrics.psnr_y(sr, hr, 2).item() == pytest.approx(expected.item() + 20 * math.log10(255 / 219), abs=1e-5)
    # Per-image flags in a batch
    both = metrics.psnr_y(torch.cat([sr, sr]), torch.cat([hr, hr]), 2, gray=torch.tensor([True, False]))
    assert both[0].item() == pytest.approx(expected.item()) and both[1].item() > both[0].item() + 1.3
    with pytest.raises(ValueError, match="one per image"):
        metrics.psnr_y(sr, hr, 2, gray=[True, False])


@pytest.mark.parametrize("shape", [(2, 1, 40, 33), (1, 3, 24, 57)])
def test_fast_cpu_ssim_equals_torchmetrics(shape):
    from torchmetrics.functional.image import structural_similarity_index_measure

    rng = torch.Generator().manual_seed(1)
    hr = torch.rand(shape, generator=rng, dtype=torch.float64)
    sr = (hr + 0.1 * torch.randn(shape, generator=rng, dtype=torch.float64)).clamp(0, 1)
    ours = metrics.ssim(sr, hr, crop=0, protocol="rgb")
    ref = structural_similarity_index_measure(metrics.quantize(sr), metrics.quantize(hr), data_range=1.0,
                                              gaussian_kernel=True, sigma=1.5, kernel_size=11, reduction="none")
    assert torch.allclose(ours, ref, rtol=0, atol=1e-12)


# Published bicubic baselines (Y channel, border = scale); SOURCES.md of the shared datasets.
PUBLISHED_SET5 = {2: 33.66, 3: 30.39, 4: 28.42}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_set5_matches_published_baseline(shared_datasets, scale):
    values = []
    for path in sorted((shared_datasets / "Set5").glob("*.png")):
        hr = modcrop(read_image(path), scale)
        sr = bicubic_upscale(bicubic_downscale(hr, scale), scale)
        values.append(metrics.psnr_y(as_tensor(sr), as_tensor(hr), scale).item())
    assert len(values) == 5
    assert np.mean(values) == pytest.approx(PUBLISHED_SET5[scale], abs=0.03)
