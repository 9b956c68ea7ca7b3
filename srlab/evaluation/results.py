"""Output: the ``metrics.json`` records of the evaluated models written as ``<output>/<model>/metrics.json``,
``results.csv`` and ``results.md`` (the markdown table that is also printed), and optionally logged as a
W&B table.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from srlab.evaluation.models import BICUBIC

CSV_COLUMNS = ("model", "architecture", "scale", "protocol", "psnr", "ssim", "time_color", "time_gray",
               "params", "macs_per_mp", "checkpoint")


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
