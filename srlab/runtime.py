"""Process-wide settings that make CPU training fast and safe."""

from __future__ import annotations

import os

import torch


def configure_torch(threads: int | None = None, data_workers: int = 0) -> int:
    """Flush denormals (VDSR's steps ran 2x slower without it) and pick the intra-op thread count.

    On a small CPU the data-loader workers compete with the training threads, so by default each
    worker takes a core away from torch (never below one thread). Returns the thread count used.
    """
    torch.set_flush_denormal(True)
    if threads is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, cores - data_workers) if cores > 4 else cores
    torch.set_num_threads(threads)
    return threads
