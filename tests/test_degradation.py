"""Degradations: shapes, determinism, and that each realistic stage does what it claims."""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

from srlab.data.degradation import (
    BicubicDegradation,
    RealisticDegradation,
    gaussian_kernel,
    make_degradation,
)
from srlab.resize import bicubic_downscale, modcrop

# Every stage off: tests switch on the one they check.
NOTHING = {"blur_prob": 0.0, "noise_prob": 0.0, "jpeg_prob": 0.0, "two_stage_prob": 0.0}


def textured(h: int = 96, w: int = 96, seed: int = 0) -> np.ndarray:
    """Fine gratings plus pixel noise: lots of high-frequency energy that survives x4 bicubic."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.empty((h, w, 3))
    for c in range(3):
        img[..., c] = (
            128 + 60 * np.sin(2 * np.pi * xx / 7.3 + c) + 40 * np.sin(2 * np.pi * (xx + yy) / 9.1)
            + rng.normal(0, 15, (h, w))
        )
    return np.clip(img, 0, 255).astype(np.uint8)


def smooth(h: int = 96, w: int = 96) -> np.ndarray:
    """Ramps and slow waves: JPEG at low quality turns these into visible 8 x 8 blocks."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack(
        [40 + 1.5 * xx + 20 * np.sin(yy / 9), 60 + yy + 15 * np.cos(xx / 11), 200 - xx - 0.5 * yy], axis=-1
    )
    return np.clip(img, 0, 255).astype(np.uint8)


def flat(value: int = 128, n: int = 96) -> np.ndarray:
    return np.full((n, n, 3), value, np.uint8)


def grad_energy(img: np.ndarray) -> float:
    f = img.astype(np.float64)
    return float(np.mean(np.diff(f, axis=0) ** 2) + np.mean(np.diff(f, axis=1) ** 2))


def blockiness(img: np.ndarray) -> float:
    """Largest over the 8 grid phases of (mean jump across that phase's columns and rows) divided by
    the median over phases: ~1 for an image without a block grid, well above 1 with 8 x 8 blocks."""
    f = img.astype(np.float64).mean(axis=2)
    ratios = []
    for axis in (0, 1):
        jumps = np.abs(np.diff(f, axis=axis)).mean(axis=1 - axis)
        per_phase = np.array([jumps[p::8].mean() for p in range(8)])
        ratios.append(per_phase.max() / np.median(per_phase))
    return float(min(ratios))  # both directions must show the grid


# ----------------------------------------------------------------------------- factory, bicubic


def test_make_degradation_names():
    assert isinstance(make_degradation("bicubic"), BicubicDegradation)
    assert isinstance(make_degradation("realistic"), RealisticDegradation)
    assert make_degradation("Realistic", jpeg_prob=0.5).jpeg_prob == 0.5
    with pytest.raises(ValueError, match="bicubic.*realistic"):
        make_degradation("gaussian")


def test_bicubic_is_bicubic_downscale_exactly():
    hr = textured(90, 120)
    deg = make_degradation("bicubic")
    for scale in (2, 3):
        assert np.array_equal(deg(hr, scale, np.random.default_rng(0)), bicubic_downscale(hr, scale))


# ----------------------------------------------------------------------------- realistic: contract


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(96, 96), (97, 131), (25, 38)])
def test_shape_and_dtype(scale, size):
    hr = modcrop(textured(*size), scale)  # odd sizes, mod-cropped as the data pipeline does
    deg = RealisticDegradation(two_stage_prob=1.0)  # exercise the intermediate size too
    for seed in range(8):
        lr = deg(hr, scale, np.random.default_rng(seed))
        assert lr.shape == (hr.shape[0] // scale, hr.shape[1] // scale, 3)
        assert lr.dtype == np.uint8 and lr.flags.c_contiguous


def test_tiny_images():
    deg = RealisticDegradation(blur_sigma=(3.0, 3.0), jpeg_prob=1.0)
    for seed in range(5):
        assert deg(textured(4, 8), 4, np.random.default_rng(seed)).shape == (1, 2, 3)


def test_deterministic_for_a_seed_and_varied_across_seeds():
    hr = textured()
    deg = RealisticDegradation()
    a = deg(hr, 4, np.random.default_rng(7))
    b = deg(hr, 4, np.random.default_rng(7))
    assert np.array_equal(a, b)
    outs = {deg(hr, 4, np.random.default_rng(s)).tobytes() for s in range(12)}
    assert len(outs) == 12


def test_does_not_modify_input_and_accepts_views():
    big = textured(128, 128)
    hr = big[5:101, 7:103]  # a non-contiguous crop, as patches are
    before = hr.copy()
    lr = RealisticDegradation()(hr, 2, np.random.default_rng(0))
    assert np.array_equal(hr, before) and lr.shape == (48, 48, 3)


def test_realistic_is_blurrier_than_bicubic_on_texture():
    hr = textured()
    deg = RealisticDegradation()
    for scale in (2, 4):
        bicubic = grad_energy(bicubic_downscale(hr, scale))
        realistic = np.mean([grad_energy(deg(hr, scale, np.random.default_rng(s))) for s in range(20)])
        assert realistic < 0.7 * bicubic


def test_realistic_is_noisier_than_bicubic_on_flat():
    hr = flat(128)
    assert bicubic_downscale(hr, 2).std() == 0
    stds = [RealisticDegradation()(hr, 2, np.random.default_rng(s)).astype(np.float64).std() for s in range(20)]
    assert np.mean(stds) > 2.0


def test_nothing_enabled_is_plain_resize():
    hr = textured()
    deg = RealisticDegradation(**NOTHING, resize_modes=("bicubic",))
    for scale in (2, 3, 4):
        lr = deg(hr, scale, np.random.default_rng(0))
        # Pillow's float resampling vs its 8-bit fixed-point path: at most one level apart.
        assert np.abs(lr.astype(int) - bicubic_downscale(hr, scale).astype(int)).max() <= 1
    assert np.array_equal(deg(hr, 1, np.random.default_rng(0)), hr)


# ----------------------------------------------------------------------------- stages one by one


def test_blur_lowers_gradient_energy():
    hr = textured()
    for aniso in (0.0, 1.0):
        deg = RealisticDegradation(**{**NOTHING, "blur_prob": 1.0}, blur_sigma=(1.0, 2.0), aniso_prob=aniso)
        for seed in range(5):
            out = deg(hr, 1, np.random.default_rng(seed))
            assert grad_energy(out) < 0.5 * grad_energy(hr)
            assert abs(out.astype(float).mean() - hr.astype(float).mean()) < 1.0  # kernels sum to 1


def test_gaussian_kernel_shape_and_orientation():
    iso = gaussian_kernel(1.5)
    assert iso.shape == (11, 11) and abs(iso.sum() - 1) < 1e-6
    assert np.allclose(iso, iso.T, atol=1e-7)
    yy, xx = np.mgrid[-10:11, -10:11]

    def moments(k):
        return float((k * xx**2).sum()), float((k * yy**2).sum())

    horizontal = gaussian_kernel(3.0, 1.0, theta=0.0, radius=10)  # variances 9 along x, 1 along y
    mx, my = moments(horizontal)
    assert mx == pytest.approx(9.0, rel=0.05) and my == pytest.approx(1.0, rel=0.05)
    vertical = gaussian_kernel(3.0, 1.0, theta=np.pi / 2, radius=10)
    assert np.allclose(vertical, horizontal.T, atol=1e-6)
    diagonal = gaussian_kernel(3.0, 1.0, theta=np.pi / 4, radius=10)  # covariance (9 - 1) / 2 = 4
    assert float((diagonal * xx * yy).sum()) > 3.0  # covariance along the x = y direction


def test_anisotropic_blur_is_directional():
    # Vertical stripes (variation along x) are flattened by a kernel along x, kept by one along y.
    xx = np.arange(96)
    stripes = np.repeat(np.where((xx // 3) % 2 == 0, 60, 200)[None, :, None], 96, axis=0)
    stripes = np.repeat(stripes, 3, axis=2).astype(np.uint8)
    deg = RealisticDegradation(**{**NOTHING, "blur_prob": 1.0}, blur_sigma=(0.3, 3.0), aniso_prob=1.0)
    kept = []
    for seed in range(30):
        out = deg(stripes, 1, np.random.default_rng(seed)).astype(np.float64)
        kept.append(out[48].std())
    assert max(kept) > 3 * min(kept)  # orientation and elongation vary with the seed


@pytest.mark.parametrize("sigma", [5.0, 15.0])
def test_gaussian_noise_has_the_configured_sigma(sigma):
    hr = flat(128, 128)
    deg = RealisticDegradation(
        **{**NOTHING, "noise_prob": 1.0}, noise_sigma=(sigma, sigma), shot_noise_prob=0.0,
        gray_noise_prob=0.0, correlated_noise_prob=0.0,
    )
    out = deg(hr, 1, np.random.default_rng(0)).astype(np.float64) - 128
    for c in range(3):
        assert out[..., c].std() == pytest.approx(sigma, rel=0.05)
    assert abs(out.mean()) < 0.5
    assert abs(np.corrcoef(out[..., 0].ravel(), out[..., 1].ravel())[0, 1]) < 0.05  # colour noise


def test_gray_and_correlated_noise():
    hr = flat(128, 128)
    base = {**NOTHING, "noise_prob": 1.0, "noise_sigma": (10.0, 10.0), "shot_noise_prob": 0.0}
    gray = RealisticDegradation(**base, gray_noise_prob=1.0, correlated_noise_prob=0.0)
    out = gray(hr, 1, np.random.default_rng(0))
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert out.astype(np.float64).std() == pytest.approx(10.0, rel=0.05)
    corr = RealisticDegradation(**base, gray_noise_prob=0.0, correlated_noise_prob=1.0)
    strongest = 0.0
    for seed in range(5):
        noise = corr(hr, 1, np.random.default_rng(seed)).astype(np.float64).reshape(-1, 3) - 128
        assert noise.std(axis=0).max() < 10.5  # no channel above sigma
        c = np.corrcoef(noise.T)
        strongest = max(strongest, np.abs(c[np.triu_indices(3, 1)]).max())
    assert strongest > 0.3


def test_shot_noise_grows_with_brightness():
    deg = RealisticDegradation(
        **{**NOTHING, "noise_prob": 1.0}, shot_noise_prob=1.0, shot_noise_scale=(2.0, 2.0), gray_noise_prob=0.0
    )
    stds = {}
    for level in (25, 100):
        out = deg(flat(level, 128), 1, np.random.default_rng(0)).astype(np.float64)
        stds[level] = out.std()
        assert stds[level] == pytest.approx(2.0 * np.sqrt(level), rel=0.08)  # s * sqrt(value)
    assert stds[100] > 1.7 * stds[25]


def test_jpeg_quality_10_makes_8x8_blocks():
    hr = smooth()
    assert blockiness(hr) < 1.3
    deg = RealisticDegradation(**{**NOTHING, "jpeg_prob": 1.0}, jpeg_quality=(10, 10))
    for seed in range(4):  # random grid phase: found whatever the offset
        out = deg(hr, 1, np.random.default_rng(seed))
        assert blockiness(out) > 2.0
    mild = RealisticDegradation(**{**NOTHING, "jpeg_prob": 1.0}, jpeg_quality=(95, 95))
    out = mild(hr, 1, np.random.default_rng(0))
    assert np.abs(out.astype(int) - hr.astype(int)).mean() < 2.0 and blockiness(out) < 1.5


def test_jpeg_last_keeps_blocks_in_the_lr():
    # Everything on, JPEG forced last at quality 10: the LR itself shows the 8 x 8 grid.
    deg = RealisticDegradation(jpeg_prob=1.0, jpeg_quality=(10, 10), jpeg_last_prob=1.0, noise_sigma=(1, 3),
                               shot_noise_prob=0.0)
    ratios = [blockiness(deg(smooth(192, 192), 2, np.random.default_rng(s))) for s in range(6)]
    assert min(ratios) > 1.5


# ----------------------------------------------------------------------------- configuration


def test_hydra_style_lists_and_validation():
    deg = make_degradation("realistic", noise_sigma=[5, 10], jpeg_quality=[40, 80], resize_modes=["area"])
    assert deg.noise_sigma == (5.0, 10.0) and deg.jpeg_quality == (40, 80) and deg.resize_modes == ("area",)
    with pytest.raises(ValueError):
        RealisticDegradation(blur_prob=1.5)
    with pytest.raises(ValueError):
        RealisticDegradation(noise_sigma=(10, 5))
    with pytest.raises(ValueError):
        RealisticDegradation(resize_modes=("lanczos",))
    with pytest.raises(ValueError):
        RealisticDegradation(jpeg_quality=(0, 101))
    with pytest.raises(ValueError):
        RealisticDegradation(gray_noise_prob=0.7, correlated_noise_prob=0.5)


def test_bad_inputs():
    deg = RealisticDegradation()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="modcrop"):
        deg(textured(97, 96), 2, rng)
    with pytest.raises(TypeError):
        deg(textured().astype(np.float32), 2, rng)
    with pytest.raises(ValueError):
        deg(textured()[..., 0], 2, rng)


def test_picklable_for_dataloader_workers():
    deg = RealisticDegradation(jpeg_quality=(50, 60))
    clone = pickle.loads(pickle.dumps(deg))
    hr = textured()
    assert clone == deg
    assert np.array_equal(clone(hr, 2, np.random.default_rng(3)), deg(hr, 2, np.random.default_rng(3)))


def test_fast_enough_for_on_the_fly_patches():
    # ~1 ms measured for a 96 x 96 HR patch; the bound is loose so a busy machine does not fail it,
    # yet catches e.g. a direct (non-FFT) 21 x 21 convolution (~12 ms alone).
    hr, deg, rng = textured(), RealisticDegradation(), np.random.default_rng(0)
    for _ in range(5):
        deg(hr, 4, rng)
    start = time.perf_counter()
    for _ in range(100):
        deg(hr, 4, rng)
    assert (time.perf_counter() - start) / 100 < 0.010
