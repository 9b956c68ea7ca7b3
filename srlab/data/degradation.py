"""Degradations: how a low-resolution (LR) training input is made from a high-resolution (HR) photo.

Every degradation is a callable ``(hr, scale, rng) -> lr``:

* ``hr``: ``uint8`` RGB array ``H x W x 3`` in ``[0, 255]``, ``H`` and ``W`` multiples of ``scale``
  (:func:`srlab.resize.modcrop` it first);
* ``scale``: the integer SR factor;
* ``rng``: a :class:`numpy.random.Generator`, the only source of randomness (same seed, same LR);
* ``lr``: ``uint8`` RGB array ``H/scale x W/scale x 3`` in ``[0, 255]``.

Two are provided:

:class:`BicubicDegradation`
    MATLAB-style antialiased bicubic downscaling (:func:`srlab.resize.bicubic_downscale`): the
    benchmark protocol (Set5, Set14, DIV2K's ``LR_bicubic``). Networks trained on it compare fairly on
    the benchmarks, but they expect *clean* LR input and tend to sharpen noise and JPEG blocks of
    real photos.

:class:`RealisticDegradation`
    What a phone or compact-camera photo goes through: lens/motion blur, sampling at a lower
    resolution, sensor noise, JPEG compression, applied in a random order with random strengths. In
    the spirit of BSRGAN (K. Zhang, J. Liang, L. Van Gool, R. Timofte, "Designing a practical
    degradation model for deep blind image super-resolution", ICCV 2021) and Real-ESRGAN (X. Wang,
    L. Xie, C. Dong, Y. Shan, "Real-ESRGAN: training real-world blind super-resolution with pure
    synthetic data", ICCV Workshops 2021); the default ranges are theirs (cited at each parameter).

:func:`make_degradation` builds one by name (``"bicubic"`` | ``"realistic"``), which is what the
``data.degradation`` configuration option names.

Only Pillow, numpy and scipy are used (no OpenCV), and the realistic pipeline works on small float32
arrays, so that it is cheap enough to run per patch in the data-loader workers.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PIL import Image
from scipy import fft as sfft

from srlab.resize import bicubic_downscale

__all__ = [
    "DEGRADATIONS",
    "RESIZE_MODES",
    "BicubicDegradation",
    "Degradation",
    "RealisticDegradation",
    "gaussian_kernel",
    "make_degradation",
]


class Degradation(Protocol):
    """``(hr uint8 H x W x 3, scale, rng) -> lr uint8 H/scale x W/scale x 3``."""

    def __call__(self, hr: np.ndarray, scale: int, rng: np.random.Generator | None = None) -> np.ndarray: ...


class BicubicDegradation:
    """The benchmark protocol: exactly :func:`srlab.resize.bicubic_downscale` (``rng`` is unused)."""

    def __call__(self, hr: np.ndarray, scale: int, rng: np.random.Generator | None = None) -> np.ndarray:
        return bicubic_downscale(hr, scale)

    def __repr__(self) -> str:
        return "BicubicDegradation()"


# Interpolations the resize stage draws from. Pillow antialiases BILINEAR and BICUBIC when
# downscaling (its kernels widen with the factor) and BOX is exact area averaging (OpenCV's
# INTER_AREA for integer factors); NEAREST is plain decimation and aliases (cheap resizers in some
# apps do that), so it is available but not drawn by default.
RESIZE_MODES: dict[str, Image.Resampling] = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "nearest": Image.Resampling.NEAREST,
}

# Below this standard deviation (in pixels) a sampled Gaussian kernel is a delta to within 4e-6 per
# neighbour (exp(-1 / (2 * 0.2**2))), i.e. no change after rounding to uint8: skip the convolution.
_MIN_SIGMA = 0.2


def gaussian_kernel(
    sigma_x: float, sigma_y: float | None = None, theta: float = 0.0, radius: int | None = None
) -> np.ndarray:
    """A 2-D Gaussian blur kernel, ``(2 * radius + 1) x (2 * radius + 1)`` ``float32``, summing to 1.

    ``sigma_x`` is the standard deviation (pixels) along the direction at angle ``theta`` (radians)
    from the column (x) axis towards the row (y, downward) axis, ``sigma_y`` the one across it;
    ``sigma_y=None`` gives an isotropic kernel. ``radius`` defaults to ``ceil(3 * max(sigma))``
    (the kernel is truncated at three standard deviations, losing < 0.3% of its mass).
    Like BSRGAN and Real-ESRGAN the Gaussian is sampled at integer offsets (not integrated over pixels).
    """
    if sigma_y is None:
        sigma_y = sigma_x
    if sigma_x <= 0 or sigma_y <= 0:
        raise ValueError(f"sigmas must be positive, got {sigma_x}, {sigma_y}")
    if radius is None:
        radius = max(1, math.ceil(3.0 * max(sigma_x, sigma_y)))
    # Inverse covariance of R diag(sx^2, sy^2) R^T, R the rotation by theta.
    c, s = math.cos(theta), math.sin(theta)
    a = c * c / sigma_x**2 + s * s / sigma_y**2
    b = c * s * (1.0 / sigma_x**2 - 1.0 / sigma_y**2)
    d = s * s / sigma_x**2 + c * c / sigma_y**2
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    k = np.exp(-0.5 * (a * xx * xx + 2.0 * b * xx * yy + d * yy * yy))
    return (k / k.sum()).astype(np.float32)


def _convolve(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve each plane of ``x`` (``C x H x W`` float32) with ``kernel``, mirrored borders.

    Through the FFT: a 19 x 19 kernel costs ~100x less than :func:`scipy.ndimage.convolve` (which
    BSRGAN uses) and, unlike a separable filter, handles rotated anisotropic kernels. The image is
    padded symmetrically by the kernel radius (so no wrap-around reaches the kept pixels), and on
    to a size the FFT likes.
    """
    r = kernel.shape[0] // 2
    _, h, w = x.shape
    fh = sfft.next_fast_len(h + 2 * r, real=True)
    fw = sfft.next_fast_len(w + 2 * r, real=True)
    padded = np.pad(x, ((0, 0), (r, fh - h - r), (r, fw - w - r)), mode="symmetric")
    spectrum = sfft.rfft2(padded) * sfft.rfft2(kernel, s=(fh, fw))
    out = sfft.irfft2(spectrum, s=(fh, fw))
    # Circular convolution with the kernel at the origin shifts by r; the pad shifts by another r.
    return np.ascontiguousarray(out[:, 2 * r : 2 * r + h, 2 * r : 2 * r + w], dtype=np.float32)


def _resize(x: np.ndarray, size_hw: tuple[int, int], mode: str) -> np.ndarray:
    """Resize each plane of ``x`` (``C x H x W`` float32) with Pillow, in float (no rounding)."""
    h, w = size_hw
    if x.shape[1:] == (h, w):
        return x
    flt = RESIZE_MODES[mode]
    out = np.empty((x.shape[0], h, w), dtype=np.float32)
    for c in range(x.shape[0]):
        # A 2-D C-contiguous float32 array is Pillow mode "F": 32-bit float resampling.
        out[c] = np.asarray(Image.fromarray(x[c]).resize((w, h), flt))
    return out


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _range(value: Sequence[float], name: str, low: float = 0.0) -> tuple[float, float]:
    # Accepts tuples, lists and Hydra's ListConfig.
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a (min, max) pair, got {value!r}") from err
    if not low <= lo <= hi:
        raise ValueError(f"{name} must satisfy {low} <= min <= max, got {value!r}")
    return lo, hi


@dataclass
class RealisticDegradation:
    """Blur, downscaling, noise and JPEG in random order and strength: LR like a phone photo's.

    Call as ``lr = deg(hr, scale, rng)``: ``hr`` ``uint8`` ``H x W x 3`` with ``H``, ``W`` multiples
    of ``scale``; returns ``uint8`` ``H/scale x W/scale x 3``. Deterministic for a given ``rng``
    state (``rng=None`` draws a fresh unseeded generator). Internally the image is ``float32``
    ``3 x H x W`` in 8-bit units (``[0, 255]``), clipped to that range after noise (sensors saturate)
    and rounded to ``uint8`` only for JPEG and at the end, as BSRGAN and Real-ESRGAN do.

    Stages (each draws its own strength):

    ``blur``
        Gaussian kernel, isotropic or (with ``aniso_prob``) anisotropic with a random orientation.
        Lens blur is roughly isotropic; hand shake (motion blur) and astigmatism, off-axis softness
        and demosaicking are directional, which an isotropic kernel cannot mimic, hence both (BSRGAN
        draws each with probability 0.5). ``blur_sigma`` is in **HR pixels** (a property of the
        optics, fixed in scene units); when the blur lands after (part of) the downscaling, the
        sigma is shrunk by the same factor, so the random order does not make it up to ``scale``
        times wider than drawn (BSRGAN draws it in the current image's pixels).
    ``resize``
        Down to exactly ``H/scale x W/scale`` with an interpolation drawn from ``resize_modes``
        (repeat a name to weight it). With ``two_stage_prob``, first to a random intermediate size
        (between the HR and LR sizes) with another random interpolation, as a camera's sensor
        binning followed by an app's resize; other stages may fall in between.
    ``noise``
        Either additive Gaussian noise (sigma in 8-bit units, drawn from ``noise_sigma``) or, with
        ``shot_noise_prob``, signal-dependent shot noise: a Gaussian approximation of Poisson noise
        with standard deviation ``s * sqrt(value)`` (8-bit units, ``s`` drawn from
        ``shot_noise_scale``; Real-ESRGAN's Poisson noise with 256 levels is the same to within
        0.2%). With ``gray_noise_prob`` the same noise goes to all three channels (luminance noise;
        shot noise then follows luminance); with ``correlated_noise_prob`` Gaussian noise has a
        random 3 x 3 channel covariance (BSRGAN: noise after demosaicking and colour conversion is
        correlated across channels); otherwise the channels are independent. The sigma is in the
        pixels of the image at that point: noise added before the downscaling is averaged down and
        spatially correlated, like noise after a camera's demosaicking and denoising.
    ``jpeg``
        Pillow JPEG (4:2:0 chroma subsampling, as phones write) at an integer quality drawn from
        ``jpeg_quality``. The 8 x 8 block grid gets a random offset: a patch cropped from a real
        photo sees the grid at any phase, and a fixed phase would be a cue the network could learn.

    Order: with probability ``shuffle_prob`` a random permutation (BSRGAN), otherwise the camera's
    own order blur -> resize -> noise -> JPEG (Real-ESRGAN's order). The intermediate resize always
    precedes the final one. Then, with probability ``jpeg_last_prob``, JPEG is moved to the end:
    a camera compresses as its very last step, and compressing earlier and then resizing (an app
    re-sharing a photo) smooths the 8 x 8 blocks away, a different and less common artefact.

    Parameters (defaults):

    * ``blur_prob=1.0``: BSRGAN and Real-ESRGAN always blur (the sigma range includes ~no blur).
    * ``blur_sigma=None``: ``(0.2, 2.0 + 0.2 * scale)``, i.e. (0.2, 2.4) at x2 and (0.2, 2.8) at x4:
      BSRGAN's isotropic width ``(2 + 0.2 * sf) * U(0, 1)``, with Real-ESRGAN's lower bound 0.2
      (below it a kernel is a delta). The same range bounds each axis of an anisotropic kernel
      (BSRGAN's eigenvalues ``(4 + sf) * U(0, 1)`` give axis sigmas up to 2.45 / 2.83, the same;
      Real-ESRGAN draws both from (0.2, 3)).
    * ``aniso_prob=0.5``: BSRGAN's split between isotropic and anisotropic kernels.
    * ``max_kernel_radius=10``: kernels of at most 21 x 21 (Real-ESRGAN's ``blur_kernel_size``).
    * ``resize_modes=("bicubic", "bilinear", "area")``: Real-ESRGAN's three, uniformly.
    * ``two_stage_prob=0.5``.
    * ``noise_prob=1.0``: both papers always add noise (the ranges include ~none).
    * ``noise_sigma=(1.0, 25.0)``: Real-ESRGAN's second-order range [1, 25] (BSRGAN [2, 25],
      Real-ESRGAN's first order [1, 30]).
    * ``shot_noise_prob=0.5``: Real-ESRGAN's ``gaussian_noise_prob`` 0.5 (else Poisson).
    * ``shot_noise_scale=(0.05, 2.5)``: Real-ESRGAN's second-order ``poisson_scale_range``
      (first order: [0.05, 3]); its second order is the one applied near the final resolution, as
      our noise usually is.
    * ``gray_noise_prob=0.4``: both papers.
    * ``correlated_noise_prob=0.2``: BSRGAN's third noise type (its split is 0.4 gray, 0.2
      correlated, 0.4 independent colour).
    * ``jpeg_prob=0.9``: BSRGAN's in-sequence JPEG probability; the rest stands for photos kept as
      PNG/HEIF or re-encoded at high quality.
    * ``jpeg_quality=(30, 95)``: both papers' quality range.
    * ``jpeg_last_prob=0.8``.
    * ``shuffle_prob=0.5``: half the samples in camera order, half shuffled (BSRGAN-plus uses 0.5 too).

    A single pass (one blur, one noise, one JPEG), not Real-ESRGAN's second-order repetition nor its
    sinc ringing filter, nor BSRGAN's camera ISP noise model: photos straight off a phone or a
    compact camera, not images re-shared many times over the internet.
    """

    blur_prob: float = 1.0
    blur_sigma: tuple[float, float] | None = None
    aniso_prob: float = 0.5
    max_kernel_radius: int = 10
    resize_modes: tuple[str, ...] = ("bicubic", "bilinear", "area")
    two_stage_prob: float = 0.5
    noise_prob: float = 1.0
    noise_sigma: tuple[float, float] = (1.0, 25.0)
    shot_noise_prob: float = 0.5
    shot_noise_scale: tuple[float, float] = (0.05, 2.5)
    gray_noise_prob: float = 0.4
    correlated_noise_prob: float = 0.2
    jpeg_prob: float = 0.9
    jpeg_quality: tuple[int, int] = (30, 95)
    jpeg_last_prob: float = 0.8
    shuffle_prob: float = 0.5

    def __post_init__(self) -> None:
        for name in (
            "blur_prob", "aniso_prob", "two_stage_prob", "noise_prob", "shot_noise_prob",
            "gray_noise_prob", "correlated_noise_prob", "jpeg_prob", "jpeg_last_prob", "shuffle_prob",
        ):  # fmt: skip
            p = float(getattr(self, name))
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
            setattr(self, name, p)
        if self.gray_noise_prob + self.correlated_noise_prob > 1.0 + 1e-9:
            raise ValueError("gray_noise_prob + correlated_noise_prob must not exceed 1")
        if self.blur_sigma is not None:
            self.blur_sigma = _range(self.blur_sigma, "blur_sigma", low=1e-6)
        self.noise_sigma = _range(self.noise_sigma, "noise_sigma")
        self.shot_noise_scale = _range(self.shot_noise_scale, "shot_noise_scale")
        q_lo, q_hi = _range(self.jpeg_quality, "jpeg_quality", low=1)
        if q_hi > 100 or q_lo != int(q_lo) or q_hi != int(q_hi):
            raise ValueError(f"jpeg_quality must be integers in [1, 100], got {self.jpeg_quality!r}")
        self.jpeg_quality = (int(q_lo), int(q_hi))
        self.max_kernel_radius = int(self.max_kernel_radius)
        if self.max_kernel_radius < 1:
            raise ValueError(f"max_kernel_radius must be >= 1, got {self.max_kernel_radius}")
        modes = (self.resize_modes,) if isinstance(self.resize_modes, str) else tuple(self.resize_modes)
        unknown = [m for m in modes if m not in RESIZE_MODES]
        if not modes or unknown:
            raise ValueError(f"resize_modes must be a non-empty subset of {sorted(RESIZE_MODES)}, got {modes!r}")
        self.resize_modes = tuple(str(m) for m in modes)

    # ------------------------------------------------------------------ pipeline

    def __call__(self, hr: np.ndarray, scale: int, rng: np.random.Generator | None = None) -> np.ndarray:
        scale = _check_input(hr, scale)
        if rng is None:
            rng = np.random.default_rng()
        big_h, big_w = hr.shape[:2]
        lr_size = (big_h // scale, big_w // scale)

        stages = ["blur", "resize", "noise", "jpeg"]  # the camera's order
        if scale > 1 and rng.random() < self.two_stage_prob:
            stages.insert(1, "resize_mid")
        if rng.random() < self.shuffle_prob:
            stages = [stages[i] for i in rng.permutation(len(stages))]
            if "resize_mid" in stages:
                i, j = stages.index("resize_mid"), stages.index("resize")
                if i > j:
                    stages[i], stages[j] = stages[j], stages[i]
        if rng.random() < self.jpeg_last_prob:
            stages.remove("jpeg")
            stages.append("jpeg")

        x = np.ascontiguousarray(hr.transpose(2, 0, 1), dtype=np.float32)
        for stage in stages:
            if stage == "blur":
                x = self._blur(x, rng, hr_width=big_w, scale=scale)
            elif stage == "resize_mid":
                f = rng.uniform(1.0, scale)
                mid = (max(lr_size[0], round(big_h / f)), max(lr_size[1], round(big_w / f)))
                x = _resize(x, mid, self.resize_modes[rng.integers(len(self.resize_modes))])
            elif stage == "resize":
                x = _resize(x, lr_size, self.resize_modes[rng.integers(len(self.resize_modes))])
            elif stage == "noise":
                x = self._noise(x, rng)
            else:
                x = self._jpeg(x, rng)
        return np.ascontiguousarray(_to_uint8(x).transpose(1, 2, 0))

    def _blur(self, x: np.ndarray, rng: np.random.Generator, hr_width: int, scale: int) -> np.ndarray:
        if rng.random() >= self.blur_prob:
            return x
        lo, hi = self.blur_sigma if self.blur_sigma is not None else (0.2, 2.0 + 0.2 * scale)
        # Sigmas are drawn in HR pixels and shrunk to the current resolution (see the class doc).
        shrink = x.shape[2] / hr_width
        if rng.random() < self.aniso_prob:
            sx, sy = rng.uniform(lo, hi, size=2) * shrink
            theta = rng.uniform(0.0, math.pi)
        else:
            sx = sy = rng.uniform(lo, hi) * shrink
            theta = 0.0
        if max(sx, sy) < _MIN_SIGMA:
            return x
        # A sigma far below a pixel on one axis only: clamp it, the kernel is a line either way.
        sx, sy = max(sx, 0.05), max(sy, 0.05)
        radius = min(self.max_kernel_radius, max(1, math.ceil(3.0 * max(sx, sy))))
        return _convolve(x, gaussian_kernel(sx, sy, theta, radius))

    def _noise(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.noise_prob:
            return x
        c, h, w = x.shape
        kind = rng.random()  # < gray: luminance noise; < gray + correlated: correlated colour noise
        gray = kind < self.gray_noise_prob
        if rng.random() < self.shot_noise_prob:
            s = rng.uniform(*self.shot_noise_scale)
            # Shot noise: variance proportional to the signal (photon counts are Poisson).
            level = np.maximum(x, 0.0)
            if gray:
                level = 0.299 * level[0:1] + 0.587 * level[1:2] + 0.114 * level[2:3]
            noise = rng.standard_normal(level.shape, dtype=np.float32) * (s * np.sqrt(level))
        else:
            sigma = rng.uniform(*self.noise_sigma)
            if gray:
                noise = rng.standard_normal((1, h, w), dtype=np.float32) * np.float32(sigma)
            elif kind < self.gray_noise_prob + self.correlated_noise_prob:
                # Covariance sigma^2 * U diag(d) U^T, U a random rotation, d in [0, 1]: each
                # channel's standard deviation is at most sigma.
                u, _ = np.linalg.qr(rng.standard_normal((c, c)))
                mix = (u * np.sqrt(rng.random(c))) * sigma
                z = rng.standard_normal((c, h * w), dtype=np.float32)
                noise = (mix.astype(np.float32) @ z).reshape(c, h, w)
            else:
                noise = rng.standard_normal((c, h, w), dtype=np.float32) * np.float32(sigma)
        return np.clip(x + noise, 0.0, 255.0)

    def _jpeg(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.jpeg_prob:
            return x
        quality = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
        dy, dx = (int(v) for v in rng.integers(0, 8, size=2))
        img = _to_uint8(x).transpose(1, 2, 0)
        # Random grid phase: pad top/left by (dy, dx) replicated pixels, encode, crop them off.
        img = np.pad(img, ((dy, 0), (dx, 0), (0, 0)), mode="edge")
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        with Image.open(buf) as im:
            out = np.asarray(im.convert("RGB"))
        return np.ascontiguousarray(out[dy:, dx:].transpose(2, 0, 1), dtype=np.float32)


def _check_input(hr: np.ndarray, scale: int) -> int:
    if not isinstance(hr, np.ndarray) or hr.dtype != np.uint8:
        raise TypeError(f"expected a uint8 numpy array, got {getattr(hr, 'dtype', type(hr))}")
    if hr.ndim != 3 or hr.shape[2] != 3:
        raise ValueError(f"expected an RGB image H x W x 3, got shape {hr.shape}")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    scale = int(scale)
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"image size {w}x{h} is not a multiple of scale {scale}; modcrop it first")
    if h < scale or w < scale:
        raise ValueError(f"image size {w}x{h} is too small for scale {scale}")
    return scale


DEGRADATIONS = {"bicubic": BicubicDegradation, "realistic": RealisticDegradation}


def make_degradation(name: str, **kwargs) -> Degradation:
    """``"bicubic"`` -> :class:`BicubicDegradation`, ``"realistic"`` -> :class:`RealisticDegradation`
    (``kwargs`` go to its constructor). Unknown names raise ``ValueError`` listing the choices."""
    key = str(name).strip().lower()
    if key not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {name!r}; choose one of: {', '.join(sorted(DEGRADATIONS))}")
    return DEGRADATIONS[key](**kwargs)
