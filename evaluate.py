"""Benchmark SR checkpoints and the bicubic baseline under the paper protocol, and time them.

    python evaluate.py ckpt_path=outputs/<run>/<time>/checkpoints/last.ckpt
    python evaluate.py run_dir=multirun/<time>      # every run of a sweep (each run's best checkpoint)
    python evaluate.py model=bicubic scale=2

Configuration: ``conf/evaluate.yaml``; the work is done by :mod:`srlab.evaluation`.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from srlab.checkpoint import CheckpointError
from srlab.evaluation import EvaluationError, run


@hydra.main(config_path="conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    try:
        results = run(cfg)
    except (EvaluationError, CheckpointError) as err:
        print(f"evaluate.py: error: {err}", file=sys.stderr, flush=True)
        sys.exit(2)
    psnrs = [r["psnr"] for r in results if r["checkpoint"] and r["psnr"] is not None]
    return max(psnrs) if psnrs else None  # for Hydra sweepers


if __name__ == "__main__":
    main()
