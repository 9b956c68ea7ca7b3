"""A local record of every run's final metrics, readable without W&B.

At the end of ``fit`` (also when training stops early or is interrupted by Ctrl-C) the callback writes
``run.json`` into the run directory and appends one row to a shared ``runs.csv``; ``evaluate.py``,
``select_best.py`` and the sweep summary read these instead of a remote dashboard.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from srlab.callbacks.pruning import sparsity

CSV_FIELDS = ("run_name", "model", "scale", "optimizer", "activation", "pruning", "best_psnr", "best_ssim", "bicubic_psnr",
              "train_time_s", "steps", "params", "sparsity", "best_ckpt", "run_dir")


def _item(value: Any) -> Any:
    return value.item() if isinstance(value, torch.Tensor) else value


class RunRecord(pl.Callback):
    def __init__(self, run_dir: str, runs_csv: str | None = None, info: dict | None = None):
        self.run_dir, self.runs_csv = Path(run_dir), Path(runs_csv) if runs_csv else None
        self.info = dict(info or {})
        self._start = 0.0
        self._elapsed = 0.0
        self.best: dict[str, float] = {}

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # on_validation_end, not _epoch_end: callbacks' epoch-end hooks run before the module logs val/psnr
        if trainer.sanity_checking or "val/psnr" not in trainer.callback_metrics:
            return
        psnr = float(trainer.callback_metrics["val/psnr"])
        if psnr > self.best.get("psnr", float("-inf")):
            metrics = trainer.callback_metrics
            self.best = {"psnr": psnr, "ssim": float(metrics.get("val/ssim", float("nan"))),
                         "bicubic_psnr": float(metrics.get("val/bicubic_psnr", float("nan"))),
                         "epoch": trainer.current_epoch, "step": trainer.global_step}

    def state_dict(self) -> dict[str, Any]:
        # Resumed runs keep counting training time and remember the best validation so far.
        return {"elapsed": self._elapsed + time.perf_counter() - self._start if self._start else self._elapsed,
                "best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._elapsed = state_dict.get("elapsed", 0.0)
        self.best = state_dict.get("best", {})

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_rank == 0:
            self.write(trainer, pl_module)

    def write(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        ckpt = trainer.checkpoint_callback  # the first ModelCheckpoint: the best-by-val/psnr one
        last = next((c.last_model_path for c in trainer.checkpoint_callbacks if c.last_model_path), None)
        record = {
            **self.info,
            "best_psnr": self.best.get("psnr"),
            "best_ssim": self.best.get("ssim"),
            "bicubic_psnr": self.best.get("bicubic_psnr"),
            "best_epoch": self.best.get("epoch"),
            "train_time_s": round(self._elapsed + time.perf_counter() - self._start, 2),
            "steps": trainer.global_step,
            "epochs": trainer.current_epoch,
            "params": sum(p.numel() for p in pl_module.net.parameters()),
            "sparsity": round(sparsity(pl_module.net), 4),
            "best_ckpt": str(ckpt.best_model_path) if ckpt and ckpt.best_model_path else None,
            "last_ckpt": str(last) if last else None,
            "metrics": {k: _item(v) for k, v in trainer.callback_metrics.items()},
            "run_dir": str(self.run_dir),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.run_dir / "run.json.tmp"
        tmp.write_text(json.dumps(record, indent=2))
        os.replace(tmp, self.run_dir / "run.json")
        if self.runs_csv is not None:
            self._append_csv(record)
        return record

    def _append_csv(self, record: dict[str, Any]) -> None:
        self.runs_csv.parent.mkdir(parents=True, exist_ok=True)
        new = not self.runs_csv.exists()
        with open(self.runs_csv, "a", newline="") as f:  # one short append per run: safe across parallel runs
            writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: record.get(k) for k in CSV_FIELDS})
