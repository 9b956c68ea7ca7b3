"""Ship a trained network: export a checkpoint into ``srlab/weights/<architecture>_x<scale>/``.

    python -m srlab.weights --ckpt outputs/budget_30m/espcn_x4_adam_tanh_none/checkpoints/final.ckpt \\
        --results results/budget_30m/espcn \\
        --command "BUDGET=30 MODELS=espcn bash benchmarks/quality_per_minute.sh"

The folder is a deploy folder (:func:`srlab.deploy.export_deploy`: ``weights.safetensors`` in fp32,
``config.json``, ``metrics.json``). Its ``metrics.json`` holds

* the checkpoint's row of ``<results>/results.csv`` (what ``evaluate.py`` wrote for it): the PSNR/SSIM of
  each test set and their means (``psnr``, ``ssim``: what picks the shipped default, see README.md),
  params, multiply-adds, and the timings where they were measured;
* ``bicubic``: the bicubic row of the same table, for comparison;
* ``trained_with``: ``--command``; ``training``: the run's ``run.json`` record (steps, minutes, ...; the
  run folder is two levels above the checkpoint) and its ``train.py`` overrides (``.hydra/overrides.yaml``).

It prints the line for the table in ``srlab/weights/README.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

from srlab.deploy import CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE, export_deploy, network_from_checkpoint
from srlab.inference import SHIPPED_WEIGHTS

RESULTS_CSV = "results.csv"


class ShipError(ValueError):
    """Inputs that cannot make a shipped folder (missing table row, run record, ...)."""


def _value(text: str | None) -> Any:
    """A results.csv cell: "" -> None, numbers -> int / float, anything else stays text."""
    if text is None or text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_results(results_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``<results_dir>/results.csv`` (:func:`srlab.evaluation.results.csv_rows`), typed."""
    path = Path(results_dir) / RESULTS_CSV
    if not path.is_file():
        raise ShipError(f"{path}: not found; give --results the eval.output folder of evaluate.py")
    with open(path, newline="") as f:
        return [{k: _value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def quality(row: dict[str, Any]) -> dict[str, Any]:
    """``{"sets": {set: {"psnr", "ssim"}}, "psnr", "ssim"}`` of one results row."""
    sets = {key.removeprefix("psnr_"): {"psnr": row[key], "ssim": row.get("ssim_" + key.removeprefix("psnr_"))}
            for key in row if key.startswith("psnr_") and row[key] is not None}
    return {"sets": sets, "psnr": row.get("psnr"), "ssim": row.get("ssim")}


def _same_file(a: str | Path, b: Path) -> bool:
    a = Path(a)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def pick_rows(rows: list[dict[str, Any]], ckpt: Path, run_name: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the checkpoint's row, the bicubic row). The checkpoint's row names the same file, or (a moved
    folder) a file of the same name under the run's name."""
    nets = [r for r in rows if r.get("checkpoint")]
    mine = [r for r in nets if _same_file(r["checkpoint"], ckpt)] or \
           [r for r in nets if Path(r["checkpoint"]).name == ckpt.name and r.get("model") == run_name]
    listed = ", ".join(f"{r.get('model')} ({r['checkpoint']})" for r in nets) or "none"
    if len(mine) != 1:
        raise ShipError(f"{ckpt}: {'no' if not mine else 'more than one'} row of the results table is this "
                        f"checkpoint (networks there: {listed}); evaluate it with "
                        f"python evaluate.py ckpt_path={ckpt} eval.output=<results folder>")
    row = mine[0]
    bicubic = [r for r in rows if not r.get("checkpoint") and r.get("scale") == row.get("scale")]
    if not bicubic:
        raise ShipError(f"the results table has no bicubic row at x{row.get('scale')} (evaluate with "
                        f"eval.include_bicubic=true)")
    return row, bicubic[0]


def training_record(run_dir: Path) -> dict[str, Any]:
    """What the run's ``run.json`` says about training, and its train.py overrides."""
    path = run_dir / "run.json"
    try:
        run = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ShipError(f"{path}: cannot read the training record ({err}); has the run finished?") from None
    seconds = run.get("train_time_s")
    record = {key: run.get(key) for key in ("run_name", "data", "optimizer", "activation", "steps", "epochs")}
    record["minutes"] = round(seconds / 60, 1) if isinstance(seconds, (int, float)) else None
    record["train_time_s"] = seconds
    record["finished"] = run.get("finished")
    overrides = run_dir / ".hydra" / "overrides.yaml"
    if overrides.is_file():
        from omegaconf import OmegaConf

        record["train_overrides"] = list(OmegaConf.to_container(OmegaConf.load(overrides)) or [])
    return record


def shipped_metrics(ckpt: str | Path, results_dir: str | Path, command: str) -> dict[str, Any]:
    """The ``metrics.json`` of a shipped folder (see the module docstring)."""
    from srlab.evaluation import PROTOCOL_TEXT

    ckpt = Path(ckpt)
    run_dir = ckpt.parent.parent
    training = training_record(run_dir)
    row, bicubic = pick_rows(read_results(results_dir), ckpt, training.get("run_name"))
    protocol, scale = row.get("protocol"), row.get("scale")
    return {
        "model": row.get("model"),
        "architecture": row.get("architecture"),
        "scale": scale,
        "protocol": protocol,
        "protocol_description": PROTOCOL_TEXT[protocol].format(scale=scale) if protocol in PROTOCOL_TEXT else None,
        **quality(row),
        "bicubic": quality(bicubic),
        "params": row.get("params"),
        "macs_per_mp": row.get("macs_per_mp"),
        "time_color_s": row.get("time_color"),
        "time_gray_s": row.get("time_gray"),
        "trained_with": command,
        "training": training,
        "results": str(Path(results_dir) / RESULTS_CSV),
        "checkpoint": str(ckpt),
    }


def ship(ckpt: str | Path, results_dir: str | Path, command: str, out: str | Path | None = None) -> Path:
    """Export ``ckpt`` with its metrics into ``out`` (default ``srlab/weights/<architecture>_x<scale>``)."""
    ckpt = Path(ckpt)
    if not ckpt.is_file():
        raise ShipError(f"{ckpt}: no such checkpoint")
    metrics = shipped_metrics(ckpt, results_dir, command)
    net, _ = network_from_checkpoint(ckpt)
    params = sum(p.numel() for p in net.parameters())
    if (metrics["params"], metrics["scale"]) != (params, net.scale):
        raise ShipError(f"{ckpt} holds a x{net.scale} network of {params:,} parameters, but its results row "
                        f"says x{metrics['scale']} and {metrics['params']} parameters: not the same network")
    out = Path(out) if out is not None else SHIPPED_WEIGHTS / f"{metrics['architecture']}_x{metrics['scale']}"
    return export_deploy(ckpt, metrics, out)


def _psnrs(q: dict[str, Any]) -> str:
    return " / ".join(f"{s['psnr']:.2f}" for s in q.get("sets", {}).values())


def readme_row(folder: str | Path) -> str:
    """The line of srlab/weights/README.md's table for a shipped folder."""
    folder = Path(folder)
    config = json.loads((folder / CONFIG_FILE).read_text())
    m = json.loads((folder / METRICS_FILE).read_text())
    t = m.get("training") or {}
    bicubic = m.get("bicubic") or {}
    network = f"{str(config.get('architecture')).upper()} x{config.get('scale')}, {config.get('params'):,} params"
    steps = f"{t['steps']:,}" if isinstance(t.get("steps"), int) else t.get("steps")
    trained = f"`{m.get('trained_with')}` ({steps} steps, {t.get('minutes')} min, {str(t.get('finished'))[:10]})"
    return (f"| `{folder.name}` | {network} | {trained} | {_psnrs(m)} (bicubic: {_psnrs(bicubic)}) "
            f"| {m['psnr']:.2f} (bicubic {bicubic.get('psnr', float('nan')):.2f}) |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m srlab.weights", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ckpt", required=True, help="the training checkpoint (<run>/checkpoints/<name>.ckpt)")
    parser.add_argument("--results", required=True, help="evaluate.py's eval.output folder holding its results.csv")
    parser.add_argument("--command", required=True, help="the command that trained it (recorded as trained_with)")
    parser.add_argument("--out", default=None, help="folder to write (default: srlab/weights/<architecture>_x<scale>)")
    args = parser.parse_args(argv)
    try:
        folder = ship(args.ckpt, args.results, args.command, args.out)
    except (ShipError, OSError, ValueError) as err:  # CheckpointError and DeployError are ValueErrors
        print(f"error: {err}", file=sys.stderr)
        return 2
    size = (folder / WEIGHTS_FILE).stat().st_size
    print(f"{folder}: {WEIGHTS_FILE} {size / 1024:.0f} KB\nREADME line:\n{readme_row(folder)}")
    return 0
