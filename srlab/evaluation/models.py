"""What to evaluate: a :class:`ModelSpec` per results row (the bicubic baseline or a checkpoint), found
from checkpoint paths or from training run / sweep folders (each run's best checkpoint, labelled with its
``run_name``), and :func:`load_model`, which turns a spec into a :class:`LoadedModel` on a device and
refuses a checkpoint trained for another scale.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srlab.checkpoint import CheckpointError, load_network, read_checkpoint
from srlab.evaluation.errors import EvaluationError

log = logging.getLogger("srlab.evaluate")

BICUBIC = "bicubic"


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
