"""Benchmark trained networks and the bicubic baseline the way SR papers do, and time them.

``python evaluate.py`` (``conf/evaluate.yaml``) is a thin wrapper around :func:`run`. What is measured:

Quality (protocol "y", the papers' one; see :mod:`srlab.metrics`): each test image is read once,
mod-cropped to a multiple of ``scale`` (the HR), downscaled with MATLAB-style bicubic to ``uint8``
(the LR), super-resolved in float32 under ``torch.inference_mode()`` (:func:`srlab.sr.super_resolve`,
so Y-channel networks get bicubic Cb/Cr) and rounded to ``uint8``; PSNR and SSIM are taken on the
BT.601 Y channel (a single-channel file on its intensity) with ``scale`` border pixels cropped, per
image, then averaged per set. Protocol "rgb" measures the three RGB channels instead and says so.
The bicubic row upscales the same LR with the same MATLAB-style bicubic.

Speed: the time to upscale one colour photo and one grayscale photo (the photo itself is the LR
input: ``uint8`` in, ``uint8`` out, transfers included), median of ``repeats`` runs after a
warm-up, also per output megapixel; a grayscale photo goes through a Y network as its single
channel and through an RGB network as three equal channels. Plus parameters, multiply-adds per
output megapixel (``FlopCounterMode``, as ``python -m srlab.models``) and peak memory of one colour
upscale: ``torch.cuda.max_memory_allocated`` on a GPU; on a CPU the resident set size sampled every
millisecond above its level before the run (PyTorch has no CPU allocator statistics, tracemalloc
does not see its buffers and ``ru_maxrss`` only ever reports the whole process's peak; memory the
C allocator kept from earlier runs can make it read low by a few tens of MB).

Output (:func:`write_results`): ``<output>/<model>/metrics.json`` per model, ``results.csv`` and
``results.md`` for all of them.
"""

from __future__ import annotations

import csv
import gc
import json
import logging
import math
import os
import re
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srlab import metrics
from srlab.checkpoint import CheckpointError, load_network, read_checkpoint
from srlab.imageio import GRAY_MODES, ImageReadError, is_image_file, open_image, to_rgb_array
from srlab.resize import bicubic_downscale, bicubic_upscale, modcrop

log = logging.getLogger("srlab.evaluate")

BICUBIC = "bicubic"
DEFAULT_SETS = ("Set5", "Set14", "BSD100", "Urban100")
CSV_COLUMNS = ("model", "architecture", "scale", "protocol", "psnr", "ssim", "time_color", "time_gray",
               "params", "macs_per_mp", "checkpoint")
PROTOCOL_TEXT = {
    "y": "PSNR/SSIM on the Y channel of BT.601 YCbCr (single-channel files on their intensity), "
         "SR rounded to 8 bits, {scale} border pixels cropped; LR = MATLAB-style bicubic of the mod-cropped HR",
    "rgb": "PSNR/SSIM over the RGB channels (NOT the papers' Y protocol), SR rounded to 8 bits, "
           "{scale} border pixels cropped; LR = MATLAB-style bicubic of the mod-cropped HR",
}


class EvaluationError(ValueError):
    """Bad input to the evaluation: nothing to evaluate, a wrong scale, an empty set folder, ..."""


# --------------------------------------------------------------------------------------------------
# What to evaluate


@dataclass
class ModelSpec:
    """One row of the results table: the bicubic baseline or a checkpoint (loaded when evaluated)."""

    label: str
    checkpoint: Path | None = None  # None: bicubic
    run_dir: Path | None = None

    @property
    def is_bicubic(self) -> bool:
        return self.checkpoint is None


@dataclass
class LoadedModel:
    spec: ModelSpec
    scale: int
    net: nn.Module | None = None  # None: bicubic
    hparams: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def architecture(self) -> str:
        if self.net is None:
            return BICUBIC
        return str(self.hparams.get("name") or self.hparams["net"].get("name") or type(self.net).__name__.lower())

    @property
    def color(self) -> str:
        return "rgb" if self.net is None else getattr(self.net, "color", "rgb" if self.net.in_channels == 3 else "y")


def load_model(spec: ModelSpec, scale: int, device: torch.device | str = "cpu") -> LoadedModel:
    """The network of ``spec`` on ``device`` (channels-last, eval mode); a scale mismatch is an error."""
    if spec.is_bicubic:
        return LoadedModel(spec, scale)
    try:
        net, hparams = load_network(spec.checkpoint)
    except CheckpointError:
        raise
    except Exception as err:  # noqa: BLE001 -- e.g. KeyError from torch's weights-only unpickler on a random file
        raise CheckpointError(f"{spec.checkpoint}: not a readable PyTorch checkpoint ({type(err).__name__}: {err})") from None
    net_scale = getattr(net, "scale", None)
    if net_scale != scale:
        raise EvaluationError(
            f"{spec.checkpoint} holds a x{net_scale} network, but scale={scale} was asked for; "
            f"evaluate it with scale={net_scale} (each scale needs its own trained network)"
        )
    net = net.to(device=device, memory_format=torch.channels_last).eval()
    return LoadedModel(spec, scale, net, hparams)


def _read_run_json(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "run.json"
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        log.warning("ignoring unreadable %s (%s)", path, err)
        return {}
    return record if isinstance(record, dict) else {}


_PSNR_IN_NAME = re.compile(r"psnr(-?\d+(?:\.\d+)?)")


def best_checkpoint(run_dir: str | Path) -> Path:
    """A run's best checkpoint: ``run.json``'s ``best_ckpt`` (also when the run folder was moved since),
    else the ``checkpoints/best-*.ckpt`` with the highest PSNR in its name, else ``checkpoints/last.ckpt``."""
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoints"
    best = _read_run_json(run_dir).get("best_ckpt")
    if best:
        for candidate in (Path(best), ckpt_dir / Path(best).name):
            if candidate.is_file():
                return candidate
        log.warning("%s: run.json names best_ckpt %s, which is gone; looking in %s", run_dir, best, ckpt_dir)
    scored = []
    for path in ckpt_dir.glob("best-*.ckpt"):
        match = _PSNR_IN_NAME.search(path.stem)
        if match and math.isfinite(float(match.group(1))):
            scored.append((float(match.group(1)), path.name, path))
    if scored:
        return max(scored)[2]
    if (ckpt_dir / "last.ckpt").is_file():
        return ckpt_dir / "last.ckpt"
    raise EvaluationError(f"{run_dir}: no checkpoint to evaluate (no best_ckpt in run.json, no "
                          f"{ckpt_dir}/best-*.ckpt and no last.ckpt)")


def find_runs(root: str | Path) -> list[Path]:
    """Training run folders at or below ``root`` (a run or a sweep): those with a ``run.json`` or a
    ``checkpoints/*.ckpt``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise EvaluationError(f"run_dir {root} is not a directory")
    runs = {p.parent for p in root.rglob("run.json")}
    runs |= {p.parent.parent for p in root.rglob("checkpoints/*.ckpt")}
    if not runs:
        raise EvaluationError(f"{root}: no training runs found (no run.json and no checkpoints/*.ckpt at or below it)")
    return sorted(runs)


def _label_for_checkpoint(ckpt: Path, scale: int, run_dir: Path | None = None) -> str:
    """``run_name`` from the run's ``run.json`` (the run folder is the checkpoint's grandparent when
    not given), else the checkpoint's network name and scale (``espcn_x4``), else the file name."""
    run_dir = run_dir or (ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None)
    if run_dir is not None and _read_run_json(run_dir).get("run_name"):
        return str(_read_run_json(run_dir)["run_name"])
    try:
        hparams = read_checkpoint(ckpt)["hyper_parameters"]
    except Exception:  # noqa: BLE001
        return ckpt.stem  # load_model reports the real error
    name = hparams.get("name") or hparams["net"].get("name")
    return f"{name}_x{hparams['net'].get('scale', scale)}" if name else ckpt.stem


def _unique(specs: list[ModelSpec]) -> list[ModelSpec]:
    """Labels name result folders: a repeated one (two runs of one config) gets ``-2``, ``-3``, ..."""
    used: set[str] = set()
    for spec in specs:
        label, n = spec.label, 1
        while label in used:
            n += 1
            label = f"{spec.label}-{n}"
        spec.label = label
        used.add(label)
    return specs


def collect_models(scale: int, *, model: str | None = None, ckpt_paths: Sequence[str | Path] = (),
                   run_dir: str | Path | None = None, include_bicubic: bool = True) -> list[ModelSpec]:
    """The rows to evaluate, bicubic first: ``model="bicubic"`` alone gives only the baseline."""
    if model not in (None, "", BICUBIC):
        raise EvaluationError(f"model={model!r}: only model=bicubic is a built-in; evaluate a trained network "
                              f"with ckpt_path=<file>, ckpt_paths=[...] or run_dir=<run or sweep folder>")
    specs: list[ModelSpec] = []
    for ckpt in ckpt_paths:
        ckpt = Path(ckpt).expanduser()
        if not ckpt.is_file():
            raise CheckpointError(f"{ckpt}: no such checkpoint file")
        specs.append(ModelSpec(_label_for_checkpoint(ckpt, scale), ckpt))
    if run_dir is not None:
        for run in find_runs(run_dir):
            ckpt = best_checkpoint(run)
            specs.append(ModelSpec(_label_for_checkpoint(ckpt, scale, run), ckpt, run))
    if not specs and model != BICUBIC:
        raise EvaluationError("nothing to evaluate: pass ckpt_path=<file>, ckpt_paths=[...], run_dir=<folder> "
                              "or model=bicubic")
    if model == BICUBIC or include_bicubic:
        specs.insert(0, ModelSpec(BICUBIC))
    return _unique(specs)


# --------------------------------------------------------------------------------------------------
# Test images


@dataclass
class TestImage:
    __test__ = False  # not a pytest test class
    name: str
    rgb: np.ndarray  # uint8 H x W x 3
    gray: bool  # a single-channel file: measured on its intensity (protocol "y")


@dataclass
class TestSet:
    """A set's images, decoded once; LR images made once per scale and reused by every model."""

    __test__ = False

    name: str
    path: Path
    images: list[TestImage]
    _lr: dict[int, list[np.ndarray]] = field(default_factory=dict, repr=False)

    def pairs(self, scale: int) -> list[tuple[TestImage, np.ndarray, np.ndarray]]:
        """``(image, hr, lr)`` per image: HR mod-cropped to ``scale``, LR its bicubic ``uint8`` downscale."""
        hrs = [modcrop(img.rgb, scale) for img in self.images]
        if scale not in self._lr:
            for img, hr in zip(self.images, hrs):
                if min(hr.shape[:2]) < 2 * scale + 1:
                    raise EvaluationError(f"{self.path}/{img.name} is too small for x{scale} ({img.rgb.shape[1]}x{img.rgb.shape[0]})")
            self._lr[scale] = [bicubic_downscale(np.ascontiguousarray(hr), scale) for hr in hrs]
        return list(zip(self.images, hrs, self._lr[scale]))


def read_test_image(path: Path) -> TestImage:
    im = open_image(path)
    return TestImage(path.name, to_rgb_array(im), im.mode in GRAY_MODES)


def resolve_set(name: str | Path, data_dir: str | Path, download: bool = True) -> Path:
    """A set name (a folder under ``data_dir``, fetched first if it is a known benchmark that is
    missing) or a path to any folder of images."""
    path = Path(name).expanduser()
    if path.is_absolute() or len(path.parts) > 1:
        if not path.is_dir():
            raise EvaluationError(f"test set folder {path} does not exist")
        return path
    from srlab.data.benchmarks import (  # imports Lightning (srlab.data): only here
        BENCHMARKS,
        ensure_benchmark,
    )
    folder = Path(data_dir).expanduser() / str(name)
    if str(name) in BENCHMARKS:
        try:
            return ensure_benchmark(str(name), Path(data_dir), download=download)
        except (FileNotFoundError, PermissionError, RuntimeError) as err:
            raise EvaluationError(str(err)) from None
    for candidate in (folder, path):
        if candidate.is_dir():
            return candidate
    raise EvaluationError(f"test set {name!r} not found: {folder} does not exist and {name!r} is not a known "
                          f"benchmark ({', '.join(BENCHMARKS)}); pass a folder path instead")


def load_set(name: str | Path, data_dir: str | Path = "data", download: bool = True, limit: int | None = None) -> TestSet:
    """Decode every image of a set (flat folder, sorted by name); an empty folder is an error."""
    folder = resolve_set(name, data_dir, download)
    paths = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
    if not paths:
        raise EvaluationError(f"test set folder {folder} holds no images (png, jpg, bmp, tif, webp)")
    if limit:
        paths = paths[:limit]
    images = []
    for path in paths:
        try:
            images.append(read_test_image(path))
        except ImageReadError as err:
            raise EvaluationError(f"test set {folder}: {err}") from None
    label = str(name) if Path(str(name)).name == str(name) else folder.name
    return TestSet(label, folder, images)


# --------------------------------------------------------------------------------------------------
# Upscaling


def _to_tensor(img: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """uint8 ``H x W x C`` (or ``H x W``) -> float32 ``1 x C x H x W`` in [0, 1] on ``device``."""
    t = torch.from_numpy(np.require(img, requirements=("C", "W")))
    t = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    return t.to(device=device, dtype=torch.float32).div_(255)


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    """float ``1 x C x H x W`` -> uint8 ``H x W x C`` (``H x W`` for one channel), on the CPU."""
    out = t[0].clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
    return out[0].numpy() if out.shape[0] == 1 else out.permute(1, 2, 0).numpy()


def upscale_rgb(model: LoadedModel, lr: np.ndarray) -> np.ndarray:
    """uint8 RGB LR -> uint8 RGB SR (``scale`` times larger)."""
    if model.net is None:
        return bicubic_upscale(lr, model.scale)
    from srlab.sr import super_resolve

    device = next(model.net.parameters()).device
    with torch.inference_mode():
        x = _to_tensor(lr, device).contiguous(memory_format=torch.channels_last)
        return _to_uint8(super_resolve(model.net, x))


def upscale_gray(model: LoadedModel, lr: np.ndarray) -> np.ndarray:
    """uint8 ``H x W`` LR -> uint8 ``H x W`` SR: a Y network sees the intensity as Y (studio swing),
    an RGB network three equal channels (its output's BT.601 luma is returned)."""
    if model.net is None:
        return bicubic_upscale(lr, model.scale)
    from srlab.color import rgb_to_y

    net = model.net
    device = next(net.parameters()).device
    with torch.inference_mode():
        x = _to_tensor(lr, device)
        if net.in_channels == 1:
            y = net((x * (219 / 255) + 16 / 255).contiguous(memory_format=torch.channels_last))
        else:
            y = rgb_to_y(net(x.expand(1, 3, *x.shape[-2:]).contiguous(memory_format=torch.channels_last)).clamp(0, 1))
        return _to_uint8((y - 16 / 255) * (255 / 219))


# --------------------------------------------------------------------------------------------------
# Quality


def _chw(img: np.ndarray) -> torch.Tensor:
    """uint8 ``H x W x 3`` -> float64 ``1 x 3 x H x W`` in [0, 1], contiguous (strided channel
    views make every later float64 operation several times slower)."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(img, -1, 0)))[None].double().div_(255)


def evaluate_set(model: LoadedModel, test_set: TestSet, scale: int, protocol: str = "y",
                 ssim: bool = True) -> dict[str, Any]:
    """Per-image and mean PSNR/SSIM of ``model`` on ``test_set`` (see the module docstring)."""
    if protocol not in metrics.PROTOCOLS:
        raise EvaluationError(f"unknown protocol {protocol!r}; choose from {metrics.PROTOCOLS}")
    per_image = []
    for img, hr, lr in test_set.pairs(scale):
        sr = upscale_rgb(model, lr)
        if sr.shape != hr.shape:
            raise EvaluationError(f"{model.label} returned {sr.shape[1]}x{sr.shape[0]} for {img.name}, "
                                  f"expected {hr.shape[1]}x{hr.shape[0]}")
        sr_t, hr_t = _chw(sr), _chw(hr)
        if ssim:
            p, s = metrics.psnr_ssim(sr_t, hr_t, crop=scale, protocol=protocol, gray=img.gray)
            per_image.append({"name": img.name, "psnr": p.item(), "ssim": s.item()})
        else:
            p = metrics.psnr(sr_t, hr_t, crop=scale, protocol=protocol, gray=img.gray)
            per_image.append({"name": img.name, "psnr": p.item(), "ssim": None})
    return {
        "psnr": float(np.mean([r["psnr"] for r in per_image])),
        "ssim": float(np.mean([r["ssim"] for r in per_image])) if ssim else None,
        "images": len(per_image),
        "path": str(test_set.path),
        "per_image": per_image,
    }


# --------------------------------------------------------------------------------------------------
# Speed and memory


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _max_rss_bytes() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


_M_MMAP_THRESHOLD = -3


def _glibc() -> Any:
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


class PeakMemory:
    """Peak memory above the starting level while the ``with`` body runs, in MB (``.mb``).

    CUDA: ``torch.cuda.max_memory_allocated``. CPU (Linux): the resident set size, sampled every
    millisecond and checked against ``ru_maxrss``; first glibc is told to hand buffers of 64 KiB and
    more straight back to the OS (``mallopt(M_MMAP_THRESHOLD)``, ``malloc_trim``), because otherwise
    freed memory it keeps from earlier work (the test sets) is reused and the RSS does not grow;
    afterwards the threshold goes to 32 MiB, where glibc's own adaptive threshold ends up anyway.
    """

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.mb: float | None = None
        self.method = ""

    def __enter__(self) -> PeakMemory:  # noqa: PYI034
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._start = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated above the allocation before the run"
            return self
        self._libc = _glibc()
        if self._libc is not None:
            self._libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)
            self._libc.malloc_trim(0)
        self._start = _rss_bytes()
        self._max_rss_before = _max_rss_bytes()
        self._peak = self._start or 0
        self._stop = threading.Event()
        if self._start is not None:
            self.method = "CPU: process RSS sampled every 1 ms and ru_maxrss, above the RSS before the run"
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        else:
            self.method = "CPU: ru_maxrss increase (a lower bound: the process's earlier peak hides smaller ones)"
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            rss = _rss_bytes()
            if rss is not None and rss > self._peak:
                self._peak = rss

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mb = (torch.cuda.max_memory_allocated(self.device) - self._start) / 2**20
            return
        max_rss = _max_rss_bytes()
        if self._start is not None:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, _rss_bytes() or 0)
            if max_rss > self._max_rss_before:  # this run set the process's record: exact
                peak = max(peak, max_rss)
            self.mb = (peak - self._start) / 2**20
        else:
            self.mb = (max_rss - self._max_rss_before) / 2**20
        if self._libc is not None:
            self._libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)


def time_upscale(fn: Callable[[np.ndarray], np.ndarray], photo: np.ndarray, repeats: int,
                 device: torch.device) -> tuple[float, float, float | None, str]:
    """Median seconds of ``fn(photo)`` over ``repeats`` runs after one warm-up, output megapixels,
    peak memory (MB, measured on the warm-up: the first run maps its buffers afresh) and its method."""
    with PeakMemory(device) as peak:
        out = fn(photo)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn(photo)
        times.append(time.perf_counter() - start)
    return statistics.median(times), out.shape[0] * out.shape[1] / 1e6, peak.mb, peak.method


def read_photo(path: str | Path, gray: bool) -> np.ndarray:
    """A photo as uint8 RGB (``gray=False``) or ``H x W`` intensity (``gray=True``)."""
    im = open_image(path)
    if gray:
        if im.mode not in GRAY_MODES:
            return np.asarray(im.convert("L"))
        rgb = to_rgb_array(im)
        return np.ascontiguousarray(rgb[..., 0])
    return to_rgb_array(im)


def default_photo(name: str, cache_dir: str | Path) -> Path:
    from srlab.data.sources import SampleSource

    return SampleSource([name], cache_dir).records()[0].hr


def measure_speed(model: LoadedModel, color_photo: np.ndarray, gray_photo: np.ndarray, repeats: int,
                  device: torch.device) -> dict[str, Any]:
    t_color, mp_color, peak_mb, method = time_upscale(lambda p: upscale_rgb(model, p), color_photo, repeats, device)
    t_gray, mp_gray, _, _ = time_upscale(lambda p: upscale_gray(model, p), gray_photo, repeats, device)
    return {
        "time_color_s": t_color, "time_gray_s": t_gray,
        "time_color_s_per_mp": t_color / mp_color, "time_gray_s_per_mp": t_gray / mp_gray,
        "peak_memory_mb": peak_mb, "peak_memory_method": method,
        "color_photo_output_mp": mp_color, "gray_photo_output_mp": mp_gray, "repeats": repeats,
    }


def complexity(model: LoadedModel) -> tuple[int, float | None]:
    """(parameters, multiply-adds per output megapixel); the bicubic baseline counts as (0, None)."""
    if model.net is None:
        return 0, None
    from srlab.models.__main__ import macs_per_output_mp

    params = sum(p.numel() for p in model.net.parameters())
    try:
        macs = macs_per_output_mp(model.net, size=32)
    except Exception as err:  # noqa: BLE001 -- a network the meta device cannot run: count on a tiny real input instead
        log.debug("meta-device MAC count failed (%s); counting on the network's device", err)
        macs = macs_per_output_mp(model.net, size=32, on_meta=False)
    return params, macs


# --------------------------------------------------------------------------------------------------
# One model, all sets


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def evaluate_model(model: LoadedModel, test_sets: Sequence[TestSet], protocol: str = "y",
                   photos: tuple[np.ndarray, np.ndarray] | None = None, repeats: int = 5,
                   device: torch.device | str = "cpu") -> dict[str, Any]:
    """The ``metrics.json`` record of one model (timings are None when ``photos`` is None)."""
    device = torch.device(device)
    start = time.perf_counter()
    sets = {s.name: evaluate_set(model, s, model.scale, protocol) for s in test_sets}
    eval_time = time.perf_counter() - start
    params, macs = complexity(model)
    speed = measure_speed(model, photos[0], photos[1], repeats, device) if photos is not None else {}
    record: dict[str, Any] = {
        "model": model.label,
        "architecture": model.architecture,
        "scale": model.scale,
        "protocol": protocol,
        "protocol_description": PROTOCOL_TEXT[protocol].format(scale=model.scale),
        "checkpoint": str(model.spec.checkpoint) if model.spec.checkpoint else None,
        "run_dir": str(model.spec.run_dir) if model.spec.run_dir else None,
        "sets": sets,
        "psnr": float(np.mean([s["psnr"] for s in sets.values()])) if sets else None,
        "ssim": float(np.mean([s["ssim"] for s in sets.values()])) if sets else None,
        "time_color_s": speed.get("time_color_s"),
        "time_gray_s": speed.get("time_gray_s"),
        "time_color_s_per_mp": speed.get("time_color_s_per_mp"),
        "time_gray_s_per_mp": speed.get("time_gray_s_per_mp"),
        "params": params,
        "macs_per_mp": macs,
        "peak_memory_mb": speed.get("peak_memory_mb"),
        "peak_memory_method": speed.get("peak_memory_method"),
        "threads": torch.get_num_threads(),
        "device": device_name(device),
        "color": model.color,
        "net": model.hparams.get("net") if model.hparams else None,
        "repeats": speed.get("repeats"),
        "quality_eval_time_s": round(eval_time, 3),
    }
    return record


# --------------------------------------------------------------------------------------------------
# Output


def _fmt(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _set_names(results: Sequence[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for r in results:
        names += [n for n in r["sets"] if n not in names]
    return names


def markdown_table(results: Sequence[dict[str, Any]]) -> str:
    sets = _set_names(results)
    header = (["model", "arch"] + [f"{s} PSNR/SSIM" for s in sets]
              + ["mean PSNR", "mean SSIM", "color s", "gray s", "params", "GMAC/MP", "peak MB"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        cells = [r["model"], r["architecture"]]
        for s in sets:
            m = r["sets"].get(s)
            cells.append(f"{m['psnr']:.2f} / {m['ssim']:.4f}" if m and m["ssim"] is not None else
                         (f"{m['psnr']:.2f}" if m else ""))
        macs = r.get("macs_per_mp")
        cells += [_fmt(r["psnr"], 2), _fmt(r["ssim"], 4), _fmt(r.get("time_color_s"), 4),
                  _fmt(r.get("time_gray_s"), 4), f"{r['params']:,}",
                  _fmt(macs / 1e9, 3) if macs is not None else "", _fmt(r.get("peak_memory_mb"), 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def csv_rows(results: Sequence[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    sets = _set_names(results)
    columns = list(CSV_COLUMNS) + [f"{m}_{s}" for s in sets for m in ("psnr", "ssim")]
    rows = []
    for r in results:
        row = {c: r.get(c) for c in CSV_COLUMNS}
        row["time_color"], row["time_gray"] = r.get("time_color_s"), r.get("time_gray_s")
        for s in sets:
            m = r["sets"].get(s) or {}
            row[f"psnr_{s}"], row[f"ssim_{s}"] = m.get("psnr"), m.get("ssim")
        rows.append(row)
    return columns, rows


def result_dir_name(record: dict[str, Any]) -> str:
    """Folder of a model's ``metrics.json``: its label (bicubic gets the scale, it has no run name),
    ``_rgb`` appended under the second protocol so that the two never overwrite each other."""
    name = f"{BICUBIC}_x{record['scale']}" if record["checkpoint"] is None else record["model"]
    name = re.sub(r"[^\w.+=-]+", "_", name)
    return name + ("_rgb" if record["protocol"] != "y" else "")


def write_results(results: Sequence[dict[str, Any]], output: str | Path) -> str:
    """``<output>/<model>/metrics.json``, ``<output>/results.csv`` and ``results.md``; returns the table."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    for record in results:
        folder = output / result_dir_name(record)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / "metrics.json.tmp"
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, folder / "metrics.json")
    columns, rows = csv_rows(results)
    with open(output / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    table = markdown_table(results)
    first = results[0] if results else {}
    notes = [
        f"Scale x{first.get('scale')}. Protocol \"{first.get('protocol')}\": {first.get('protocol_description')}.",
        "Times: median seconds to upscale the colour / grayscale photo (the photo is the LR input), "
        f"{first.get('threads')} threads on {first.get('device')}; GMAC/MP: multiply-adds per output megapixel "
        "(Y networks: Y channel only); peak MB: " + str(first.get("peak_memory_method") or "not measured") + ".",
    ]
    (output / "results.md").write_text("# Evaluation\n\n" + "\n".join(notes) + "\n\n" + table + "\n")
    return table


def log_to_wandb(results: Sequence[dict[str, Any]], output: str | Path, project: str = "srlab",
                 offline: bool = True, name: str | None = None) -> None:
    """The results table as a W&B table in one run (offline by default: synced later with ``wandb sync``)."""
    import wandb

    columns, rows = csv_rows(results)
    run = wandb.init(project=project, name=name or f"evaluate_x{results[0]['scale']}", job_type="evaluation",
                     dir=str(output), mode="offline" if offline else "online", reinit=True,
                     config={"scale": results[0]["scale"], "protocol": results[0]["protocol"]})
    try:
        run.log({"results": wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])})
        for r in results:
            run.summary[f"{r['model']}/psnr"] = r["psnr"]
            run.summary[f"{r['model']}/ssim"] = r["ssim"]
    finally:
        run.finish()


# --------------------------------------------------------------------------------------------------
# The whole evaluation from a config (conf/evaluate.yaml)


def pick_device(name: str | None) -> torch.device:
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EvaluationError(f"device={name} asked for, but CUDA is not available")
    return device


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (str, Path)):
        return [value]
    return list(value)


def run(cfg: Any) -> list[dict[str, Any]]:
    """Evaluate what ``cfg`` names (``conf/evaluate.yaml``), write and print the results."""
    from srlab.runtime import configure_torch

    ev = cfg.eval
    scale = int(cfg.scale)
    if scale not in (2, 3, 4):
        raise EvaluationError(f"scale={scale}: the benchmarks are defined for x2, x3 and x4")
    if ev.protocol not in metrics.PROTOCOLS:
        raise EvaluationError(f"eval.protocol={ev.protocol!r}; choose from {metrics.PROTOCOLS}")
    configure_torch(cfg.get("threads"))
    device = pick_device(cfg.get("device"))

    model = cfg.get("model")
    if model is not None and not isinstance(model, str):  # the config group conf/model: {name: ...}
        model = model.get("name")
    specs = collect_models(scale, model=model,
                           ckpt_paths=_as_list(cfg.get("ckpt_path")) + _as_list(cfg.get("ckpt_paths")),
                           run_dir=cfg.get("run_dir"), include_bicubic=bool(ev.include_bicubic))
    for spec in specs:  # fail now, not after an hour: every checkpoint loads and fits the scale
        load_model(spec, scale, "cpu")
    test_sets = [load_set(name, cfg.paths.data_dir, download=bool(ev.download), limit=ev.get("limit"))
                 for name in _as_list(ev.sets)]
    photos = None
    if ev.speed:
        color = ev.color_photo or default_photo("chelsea", cfg.paths.cache_dir)
        gray = ev.gray_photo or default_photo("camera", cfg.paths.cache_dir)
        try:
            photos = (read_photo(color, gray=False), read_photo(gray, gray=True))
        except ImageReadError as err:
            raise EvaluationError(f"speed photo: {err}") from None

    results = []
    for spec in specs:
        model = load_model(spec, scale, device)
        log.info("evaluating %s (%s) at x%d on %s", spec.label, spec.checkpoint or "bicubic", scale,
                 ", ".join(s.name for s in test_sets))
        with torch.no_grad():  # scoped: run() is also called in-process (tests, notebooks)
            results.append(evaluate_model(model, test_sets, ev.protocol, photos, int(ev.repeats), device))
        del model
        gc.collect()
    table = write_results(results, ev.output)
    print(f"\nx{scale}, protocol {ev.protocol}: {PROTOCOL_TEXT[ev.protocol].format(scale=scale)}\n{table}\n"
          f"Results in {Path(ev.output).resolve()}", flush=True)
    if ev.wandb:
        log_to_wandb(results, ev.output, project=ev.get("wandb_project", "srlab"), offline=bool(ev.get("wandb_offline", True)))
    return results
