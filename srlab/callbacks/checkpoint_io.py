"""Checkpoint writes that a SIGKILL cannot corrupt.

A checkpoint is written to a temporary file in the same folder, flushed to disk, then renamed over
the target with ``os.replace`` (atomic on POSIX and Windows). A run killed at any moment therefore
leaves either the previous complete file or the new complete file, never a torn one, and
``python train.py ckpt_path=.../last.ckpt`` always resumes. Lightning's own writer goes through
fsspec's transaction machinery, whose temporary file location (and so atomicity) depends on the
fsspec version and filesystem; this plugin makes the guarantee explicit and local.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO takes no storage_options")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for leftover in path.parent.glob(f".{path.name}.*.tmp"):  # from a write that was killed: never trusted
            leftover.unlink(missing_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def load_checkpoint(self, path: str | os.PathLike, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        # Resuming needs the optimizer/scheduler state and hyper-parameters: plain containers and
        # tensors, which the safe loader accepts.
        return torch.load(path, map_location=map_location or "cpu", weights_only=True if weights_only is None else weights_only)
