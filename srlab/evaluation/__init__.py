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


Layout: :mod:`~srlab.evaluation.models` (what to evaluate, loading checkpoints),
:mod:`~srlab.evaluation.sets` (test sets), :mod:`~srlab.evaluation.quality` (upscaling, PSNR/SSIM),
:mod:`~srlab.evaluation.speed` (timing, memory, complexity, devices), :mod:`~srlab.evaluation.results`
(metrics.json, results.csv/.md, W&B); this module ties them together and re-exports their names.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srlab import metrics
from srlab.evaluation.errors import EvaluationError
from srlab.evaluation.models import (
    BICUBIC,
    LoadedModel,
    ModelSpec,
    best_checkpoint,
    collect_models,
    find_runs,
    load_model,
)
from srlab.evaluation.quality import evaluate_set, upscale
from srlab.evaluation.results import (
    CSV_COLUMNS,
    csv_rows,
    log_to_wandb,
    markdown_table,
    result_dir_name,
    write_results,
)
from srlab.evaluation.sets import (
    DEFAULT_SETS,
    TestImage,
    TestSet,
    load_set,
    read_test_image,
    resolve_set,
)
from srlab.evaluation.speed import (
    PeakMemory,
    complexity,
    default_photo,
    device_name,
    measure_speed,
    pick_device,
    read_photo,
    time_upscale,
)
from srlab.imageio import ImageReadError

__all__ = [
    "BICUBIC", "CSV_COLUMNS", "DEFAULT_SETS", "PROTOCOL_TEXT", "EvaluationError", "LoadedModel", "ModelSpec",
    "PeakMemory", "TestImage", "TestSet", "best_checkpoint", "collect_models", "complexity", "csv_rows",
    "default_photo", "device_name", "evaluate_model", "evaluate_set", "find_runs", "load_model", "load_set",
    "log_to_wandb", "markdown_table", "measure_speed", "pick_device", "read_photo", "read_test_image",
    "resolve_set", "result_dir_name", "run", "time_upscale", "upscale", "write_results",
]

log = logging.getLogger("srlab.evaluate")

PROTOCOL_TEXT = {
    "y": "PSNR/SSIM on the Y channel of BT.601 YCbCr (single-channel files on their intensity), "
         "SR rounded to 8 bits, {scale} border pixels cropped; LR = MATLAB-style bicubic of the mod-cropped HR",
    "rgb": "PSNR/SSIM over the RGB channels (NOT the papers' Y protocol), SR rounded to 8 bits, "
           "{scale} border pixels cropped; LR = MATLAB-style bicubic of the mod-cropped HR",
}


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
