"""Speed, size and memory: the median time to upscale one colour and one grayscale photo, the peak
memory of one upscale (:class:`PeakMemory`: CUDA allocator statistics on a GPU, the sampled resident
set size on a CPU), parameters and multiply-adds per output megapixel, and the device helpers
(:func:`pick_device`, :func:`device_name`) the evaluation records them under.
"""

from __future__ import annotations

import gc
import logging
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srlab.evaluation.errors import EvaluationError
from srlab.evaluation.models import LoadedModel
from srlab.evaluation.quality import upscale
from srlab.imageio import GRAY_MODES, open_image, to_rgb_array

log = logging.getLogger("srlab.evaluate")


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
    t_color, mp_color, peak_mb, method = time_upscale(lambda p: upscale(model, p), color_photo, repeats, device)
    t_gray, mp_gray, _, _ = time_upscale(lambda p: upscale(model, p), gray_photo, repeats, device)
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


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def pick_device(name: str | None) -> torch.device:
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EvaluationError(f"device={name} asked for, but CUDA is not available")
    return device
