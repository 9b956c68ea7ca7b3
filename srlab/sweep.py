"""Comparison table of a sweep, printed when ``python train.py -m ...`` ends (a Hydra callback)."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("srlab.sweep")

COLUMNS = ("run_name", "best_psnr", "bicubic_psnr", "best_ssim", "train_time_s", "steps", "params", "sparsity")


def read_runs(root: str | Path) -> list[dict[str, Any]]:
    """Every ``run.json`` under ``root`` (a run or a sweep directory), best PSNR first."""
    runs = [json.loads(p.read_text()) for p in sorted(Path(root).rglob("run.json"))]
    return sorted(runs, key=lambda r: -(r.get("best_psnr") or float("-inf")))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return "" if value is None else str(value)


def markdown_table(runs: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(run.get(c)) for c in columns) + " |" for run in runs]
    return "\n".join(lines)


def write_summary(root: str | Path) -> str:
    """Write ``summary.md`` and ``summary.csv`` into ``root``; returns the table."""
    root = Path(root)
    runs = read_runs(root)
    table = markdown_table(runs)
    (root / "summary.md").write_text(f"# Sweep {root.name}\n\nValidation PSNR/SSIM: Y channel, border = scale.\n\n{table}\n")
    with open(root / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(runs)
    return table


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = Path(config.hydra.sweep.dir)
        if not root.is_dir():
            return
        table = write_summary(root)
        print(f"\nSweep results ({root}):\n{table}\n", flush=True)
