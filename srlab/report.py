"""A sweep's results as the seed study presented them: Markdown tables and PNG figures for GitHub.

    python -m srlab.report multirun/2026-12-04_10-00-00             # a sweep (its run.json files)
    python -m srlab.report multirun/<sweep> --results results       # + evaluate.py's numbers
    python -m srlab.report results                                  # evaluate.py's results alone
    python -m srlab.report <sweep> --out docs/report --crop 150,60,128,128 --photo my_photo.png

Writes into ``--out`` (default ``<input>/report``):

* ``report.md``: per grid (the run.json ``info`` keys ``optimizer``, ``activation``, ``pruning``; split
  by ``group`` when run.json has one) and per value of that grid factor, a table whose rows are training
  time, PSNR, colour-photo time and grey-photo time and whose columns are the networks, the best of
  each row in bold. PSNR and the times come from ``evaluate.py``'s results when a run has them (matched
  by label = run name, or by checkpoint path), else PSNR is the run's validation PSNR (marked †);
* ``crops_x<scale>.png``: the same crop of one photo (scikit-image's ``chelsea`` by default) as HR,
  bicubic, and upscaled by every network (the run's best checkpoint), with each crop's PSNR (Y);
* ``psnr_vs_time.png``: PSNR against time (colour-photo time from the results, else training time;
  the axis says which) with the Pareto front drawn and named.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FACTORS = ("optimizer", "activation", "pruning")
FACTOR_TITLES = {"optimizer": "Optimizer", "activation": "Activation", "pruning": "Pruning"}
#: (row title, Entry attribute, higher is better)
METRIC_ROWS = (
    ("Training time, s", "train_time", False),
    ("PSNR, dB", "psnr", True),
    ("Colour photo time, s", "time_color", False),
    ("Grey photo time, s", "time_gray", False),
)
VALIDATION_MARK = "†"
CROPS_FILE = "crops_x{scale}.png"
SCATTER_FILE = "psnr_vs_time.png"
REPORT_FILE = "report.md"


class ReportError(ValueError):
    """Nothing to report on, or an unusable option."""


@dataclass
class Entry:
    """One trained network: what run.json and evaluate.py's results say about it."""

    name: str                                   # run_name, or the results label
    model: str | None = None                    # the network (espcn, ...)
    scale: int | None = None
    info: dict[str, Any] = field(default_factory=dict)  # optimizer, activation, pruning, group
    train_time: float | None = None
    psnr: float | None = None
    psnr_source: str | None = None              # "results" | "validation"
    time_color: float | None = None
    time_gray: float | None = None
    checkpoint: Path | None = None
    run: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None


@dataclass
class Collected:
    entries: list[Entry]
    source: Path
    results: Path | None = None
    bicubic_psnr: float | None = None           # the reference line, on the same PSNR source
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------- input


def _float(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _resolve(path: str | Path | None, *bases: Path) -> Path | None:
    if path in (None, "", "None"):
        return None
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    for base in bases:
        if (base / p).exists():
            return base / p
    return p


def _run_checkpoint(run: dict[str, Any], run_json: Path) -> Path | None:
    """The run's best checkpoint (else its last), also when the sweep folder was moved or copied."""
    for key in ("best_ckpt", "last_ckpt"):
        if not run.get(key):
            continue
        p = _resolve(run[key], run_json.parent)
        if p is not None and p.is_file():
            return p
        moved = run_json.parent / "checkpoints" / Path(run[key]).name
        if moved.is_file():
            return moved
    return None


def _same_file(a: Path | None, b: Path | None) -> bool:
    if a is None or b is None or not a.exists() or not b.exists():
        return False
    return a.resolve() == b.resolve()


def _apply_results(entry: Entry, row: dict[str, Any]) -> None:
    entry.metrics = row.get("metrics") or row
    psnr = _float(row.get("psnr"))
    if psnr is not None:
        entry.psnr, entry.psnr_source = psnr, "results"
    entry.time_color = _float(row.get("time_color"))
    entry.time_gray = _float(row.get("time_gray"))
    entry.model = entry.model or row.get("architecture") or None
    entry.scale = entry.scale or (int(_float(row.get("scale"))) if _float(row.get("scale")) else None)


def _entry_from_run(run: dict[str, Any], run_json: Path) -> Entry:
    name = run.get("run_name") or run_json.parent.name
    entry = Entry(name=name, model=run.get("model"), scale=run.get("scale"),
                  info={k: run.get(k) for k in (*FACTORS, "group") if run.get(k) is not None},
                  train_time=_float(run.get("train_time_s")), run=run, checkpoint=_run_checkpoint(run, run_json))
    psnr = _float(run.get("best_psnr"))
    if psnr is not None:
        entry.psnr, entry.psnr_source = psnr, "validation"
    return entry


def _find_results(root: Path) -> Path | None:
    for candidate in (root / "results", root / "results.csv"):
        if candidate.exists():
            return candidate
    return None


def collect(path: str | Path, results: str | Path | None = None, scale: int | None = None,
            protocol: str | None = None) -> Collected:
    """Entries from a sweep folder (run.json files; evaluate.py results from ``results`` or found in
    ``<sweep>/results``) or from evaluate.py's results alone (a results folder or results.csv; each
    model's run.json -- metrics.json ``run_dir``, or the checkpoint's ``<run>/checkpoints/<file>`` --
    adds training time and grid). ``scale``/``protocol`` pick one evaluation when the results hold several."""
    from srlab.selection import BICUBIC, SelectionError, load_results

    path = Path(path)
    if not path.exists():
        raise ReportError(f"{path}: no such sweep folder or results")
    run_files = sorted(path.rglob("run.json")) if path.is_dir() else []
    notes: list[str] = []
    if run_files:
        results = Path(results) if results else _find_results(path)
    else:
        if results:
            raise ReportError(f"{path}: no run.json inside, so --results has nothing to be matched with")
        results = path
    rows: list[dict[str, Any]] = []
    results_base = None
    if results is not None:
        try:
            rows, results_base = load_results(results, scale, protocol)
        except SelectionError as err:
            raise ReportError(str(err)) from None
    bicubic_row = next((r for r in rows if r.get("model") == BICUBIC), None)
    rows = [r for r in rows if r.get("model") != BICUBIC]

    entries: list[Entry] = []
    if run_files:
        by_label = {str(r["model"]): r for r in rows}
        used: set[str] = set()
        for run_json in run_files:
            try:
                run = json.loads(run_json.read_text())
            except json.JSONDecodeError as err:
                notes.append(f"skipped {run_json}: not valid JSON ({err})")
                continue
            entry = _entry_from_run(run, run_json)
            row = by_label.get(entry.name) or next(
                (r for r in rows if _same_file(_resolve(r.get("checkpoint"), results_base or path), entry.checkpoint)), None)
            if row is not None:
                _apply_results(entry, row)
                used.add(str(row["model"]))
            entries.append(entry)
        if rows and len(used) < len(rows):
            notes.append(f"{len(rows) - len(used)} result(s) in {results} belong to no run here and are left out: "
                         + ", ".join(sorted(str(r['model']) for r in rows if str(r['model']) not in used)))
    else:
        for row in rows:
            ckpt = _resolve(row.get("checkpoint"), results_base or path)
            run_dir = _resolve((row.get("metrics") or {}).get("run_dir") or row.get("run_dir"), results_base or path)
            run_json = next((d / "run.json" for d in (run_dir, ckpt.parent.parent if ckpt else None)
                             if d is not None and (d / "run.json").is_file()), None)
            if run_json is not None:
                entry = _entry_from_run(json.loads(run_json.read_text()), run_json)
                entry.name = str(row["model"])
            else:
                net = (row.get("metrics") or {}).get("net") or {}
                entry = Entry(name=str(row["model"]), model=row.get("architecture") or None,
                              info={"activation": net["activation"]} if isinstance(net, dict) and net.get("activation") else {})
            entry.checkpoint = ckpt if ckpt is not None and ckpt.is_file() else entry.checkpoint
            _apply_results(entry, row)
            entries.append(entry)
    if not entries:
        raise ReportError(f"{path}: no runs (run.json) and no evaluated models found")
    entries.sort(key=lambda e: (e.model or "", e.name))

    if any(e.psnr_source == "results" for e in entries) and bicubic_row is not None:
        bicubic = _float(bicubic_row.get("psnr"))
    else:
        values = [_float(e.run.get("bicubic_psnr")) for e in entries if e.run]
        bicubic = statistics.median([v for v in values if v is not None]) if any(v is not None for v in values) else None
    return Collected(entries, path, Path(results) if results is not None and rows else None, bicubic, notes)


# ---------------------------------------------------------------------------------------- the tables


@dataclass
class Table:
    title: str
    columns: list[Entry]
    labels: list[str]


def _column_labels(entries: Sequence[Entry], varying: Sequence[str]) -> list[str]:
    base = [e.model or e.name for e in entries]
    labels = list(base)
    for i, e in enumerate(entries):
        if base.count(base[i]) > 1:
            extra = [str(e.info.get(f)) for f in varying if e.info.get(f) is not None]
            labels[i] = f"{e.model} ({', '.join(extra)})" if extra else e.name
    return [lab if labels.count(lab) == 1 else e.name for lab, e in zip(labels, entries)]


def varying_factors(entries: Sequence[Entry]) -> list[str]:
    """The grid factors some network was trained with several values of. A factor that changes only
    with the network (each model's own default activation in an optimizer sweep) is no grid."""
    by_model: dict[Any, list[Entry]] = {}
    for e in entries:
        by_model.setdefault((e.model, e.scale), []).append(e)
    return [f for f in FACTORS if any(len({e.info.get(f) for e in es}) > 1 for es in by_model.values())]


def grid_tables(entries: Sequence[Entry]) -> list[tuple[str, list[Table]]]:
    """``[(section title, tables)]``: per grid factor (:func:`varying_factors`), one table per value with
    the networks as columns. Runs carrying a ``group`` (the experiment preset) are gridded separately.
    Without any varying factor: one table of all networks."""
    groups: dict[Any, list[Entry]] = {}
    for e in entries:
        groups.setdefault(e.info.get("group"), []).append(e)
    sections = []
    for group, members in groups.items():
        prefix = f"{group}: " if group else ""
        varying = varying_factors(members)
        if not varying:
            fixed = [f"{f} = {members[0].info[f]}" for f in FACTORS
                     if members[0].info.get(f) is not None and len({e.info.get(f) for e in members}) == 1]
            title = f"{prefix}all networks" + (f" ({', '.join(fixed)})" if fixed else "")
            sections.append((title, [Table(title, members, _column_labels(members, []))]))
            continue
        for factor in varying:
            values = list(dict.fromkeys(e.info.get(factor) for e in members))
            tables = []
            for value in values:
                cols = [e for e in members if e.info.get(factor) == value]
                others = [f for f in varying if f != factor]
                tables.append(Table(f"{factor} = {value}", cols, _column_labels(cols, others)))
            sections.append((f"{prefix}{FACTOR_TITLES[factor]} grid", tables))
    return sections


def _fmt(attr: str, x: float | None) -> str:
    if x is None:
        return "–"
    if attr == "psnr":
        return f"{x:.2f}"
    if attr == "train_time":
        return f"{x:.1f}"
    return f"{x:.2f}" if x >= 1 else f"{x:.3g}"


def markdown_table(table: Table) -> str:
    """Rows: the metrics; columns: the networks; the best of each row (as displayed) in bold."""
    lines = ["| | " + " | ".join(table.labels) + " |", "|---|" + "---:|" * len(table.labels)]
    for title, attr, higher in METRIC_ROWS:
        values = [getattr(e, attr) for e in table.columns]
        if all(v is None for v in values):
            continue
        shown = [_fmt(attr, v) for v in values]
        numeric = [float(s) if v is not None else None for s, v in zip(shown, values)]
        present = [n for n in numeric if n is not None]
        best = (max if higher else min)(present) if len(present) > 1 else None
        cells = []
        for e, s, n in zip(table.columns, shown, numeric):
            if attr == "psnr" and e.psnr_source == "validation":
                s += VALIDATION_MARK
            cells.append(f"**{s}**" if best is not None and n == best else s)
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ the crops


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def parse_crop(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise ReportError(f"--crop must be X,Y,W,H in HR pixels, got {text!r}") from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise ReportError(f"--crop {text}: need x, y >= 0 and w, h > 0")
    return x, y, w, h


def _crop_box(shape: tuple[int, ...], scale: int, crop: tuple[int, int, int, int] | None) -> tuple[int, int, int, int]:
    """An HR box aligned to the scale grid, inside the image (default: a centred square of up to 128 px)."""
    H, W = shape[:2]
    if crop is None:
        side = min(128, H, W)
        crop = ((W - side) // 2, (H - side) // 2, side, side)
    x, y, w, h = crop
    if x >= W or y >= H:
        raise ReportError(f"crop {crop} starts outside the {W}x{H} photo")
    w, h = min(w, W - x), min(h, H - y)
    x0, y0 = x - x % scale, y - y % scale
    w, h = (w // scale) * scale, (h // scale) * scale
    if w == 0 or h == 0:
        raise ReportError(f"crop {crop} is smaller than one LR pixel at x{scale}")
    return x0, y0, w, h


def super_resolve_crop(net, lr: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """SR of the HR ``box`` only: the LR region under it plus a margin of the network's receptive field
    (and bicubic chroma support) is upscaled, so the crop equals that of a whole-image SR."""
    import torch

    from srlab.sr import super_resolve

    s = net.scale
    x, y, w, h = box
    margin = max(int(getattr(net, "receptive_field", 0) or 0), 0) + 4
    if getattr(net, "receptive_field", None) is None:
        lx0, ly0, lx1, ly1 = 0, 0, lr.shape[1], lr.shape[0]
    else:
        lx0, ly0 = max(x // s - margin, 0), max(y // s - margin, 0)
        lx1, ly1 = min((x + w) // s + margin, lr.shape[1]), min((y + h) // s + margin, lr.shape[0])
    patch = torch.from_numpy(np.array(lr[ly0:ly1, lx0:lx1])).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        sr = super_resolve(net, patch)[0]
    sr = sr[:, y - ly0 * s: y - ly0 * s + h, x - lx0 * s: x - lx0 * s + w]
    return sr.mul(255).round().byte().permute(1, 2, 0).numpy()


def _psnr_y(sr: np.ndarray, hr: np.ndarray, scale: int) -> float:
    import torch

    from srlab.metrics import psnr_y

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.array(a)).permute(2, 0, 1)[None].float() / 255

    return float(psnr_y(t(sr), t(hr), scale))


def load_photo(photo: str | Path | None) -> tuple[np.ndarray, str]:
    if photo is None:
        from skimage import data

        return np.ascontiguousarray(data.chelsea()), "scikit-image chelsea"
    from srlab.imageio import read_image

    return read_image(photo), Path(photo).name


def crop_figures(entries: Sequence[Entry], out_dir: Path, photo: str | Path | None = None,
                 crop: tuple[int, int, int, int] | None = None, notes: list[str] | None = None) -> dict[int, dict[str, Any]]:
    """One PNG per scale: the crop as HR, bicubic, and by every network with a checkpoint.
    Returns ``{scale: {"path", "box", "psnr": {label: dB}, "photo"}}``."""
    from srlab.checkpoint import CheckpointError, load_network
    from srlab.resize import bicubic_downscale, bicubic_upscale, modcrop

    notes = notes if notes is not None else []
    nets: dict[int, list[tuple[str, Any]]] = {}
    for e in entries:
        if e.checkpoint is None:
            notes.append(f"{e.name}: no checkpoint found, left out of the crop comparison")
            continue
        try:
            net, _ = load_network(e.checkpoint)
        except CheckpointError as err:
            notes.append(f"{e.name}: {err}; left out of the crop comparison")
            continue
        nets.setdefault(int(net.scale), []).append((e.name, net))
    hr_full, photo_name = load_photo(photo)
    plt = _pyplot()
    figures = {}
    for scale, items in sorted(nets.items()):
        hr = modcrop(hr_full, scale)
        lr = bicubic_downscale(hr, scale)
        box = _crop_box(hr.shape, scale, crop)
        x, y, w, h = box
        hr_crop = hr[y:y + h, x:x + w]
        bic_crop = bicubic_upscale(lr, scale)[y:y + h, x:x + w]
        panels = [("HR", hr_crop, None), ("bicubic", bic_crop, _psnr_y(bic_crop, hr_crop, scale))]
        for name, net in items:
            sr = super_resolve_crop(net, lr, box)
            panels.append((name, sr, _psnr_y(sr, hr_crop, scale)))
        ncols = min(len(panels), 4)
        nrows = math.ceil(len(panels) / ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.6 * nrows + 0.4), squeeze=False,
                                 layout="constrained")
        for ax in axes.flat:
            ax.axis("off")
        for ax, (name, img, psnr) in zip(axes.flat, panels):
            ax.imshow(img, interpolation="nearest")
            label = name if len(name) <= 28 else name[:26] + "…"
            ax.set_title(label + ("" if psnr is None else f"\n{psnr:.2f} dB"), fontsize=9)
        fig.suptitle(f"{photo_name}, crop x={x} y={y} {w}x{h} of the HR, x{scale} (PSNR on Y of the crop)", fontsize=10)
        path = out_dir / CROPS_FILE.format(scale=scale)
        fig.savefig(path, dpi=100)
        plt.close(fig)
        figures[scale] = {"path": path, "box": box, "photo": photo_name, "psnr": {n: p for n, _, p in panels if p is not None}}
    return figures


# ----------------------------------------------------------------------------------- PSNR vs time


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points ``(time, psnr)`` that no other point dominates (as fast or faster *and* as
    good or better, strictly in one), sorted by time. Equal points are all on the front."""
    front = []
    for i, (t, p) in enumerate(points):
        dominated = any((t2 <= t and p2 >= p) and (t2 < t or p2 > p) for j, (t2, p2) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return sorted(front, key=lambda i: (points[i][0], -points[i][1]))


def scatter_axes(entries: Sequence[Entry]) -> tuple[str, str, str]:
    """(time attribute, x-axis label, y-axis label) for the entries at hand."""
    with_psnr = [e for e in entries if e.psnr is not None]
    if with_psnr and all(e.time_color is not None for e in with_psnr):
        time_attr, xlabel = "time_color", "colour photo time, s (evaluate.py)"
    else:
        time_attr, xlabel = "train_time", "training time, s (run.json; no evaluate.py colour time for every run)"
    sources = {e.psnr_source for e in with_psnr}
    ylabel = {frozenset({"results"}): "PSNR, dB (evaluate.py, mean over sets)",
              frozenset({"validation"}): "validation PSNR, dB (run.json)"}.get(
        frozenset(sources), f"PSNR, dB (evaluate.py; {VALIDATION_MARK} validation where not evaluated)")
    return time_attr, xlabel, ylabel


def scatter_figure(entries: Sequence[Entry], path: Path, bicubic_psnr: float | None = None) -> tuple[Path, list[Entry], str] | None:
    """PSNR versus time with the Pareto front; returns (path, front entries, time attribute)."""
    time_attr, xlabel, ylabel = scatter_axes(entries)
    pts = [(e, getattr(e, time_attr), e.psnr) for e in entries]
    pts = [(e, t, p) for e, t, p in pts if t is not None and p is not None]
    if not pts:
        return None
    front_idx = pareto_front([(t, p) for _, t, p in pts])
    front = [pts[i] for i in front_idx]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5.5))
    ax.scatter([t for _, t, _ in pts], [p for _, _, p in pts], color="tab:blue", zorder=3, label="networks")
    ax.plot([t for _, t, _ in front], [p for _, _, p in front], color="tab:red", marker="o", lw=1.5, zorder=2,
            label="Pareto front (nothing is faster and better)")
    times = [t for _, t, _ in pts]
    log_x = min(times) > 0 and max(times) / min(times) > 20
    if log_x:
        ax.set_xscale("log")
    lo, hi = (math.log(min(times)), math.log(max(times))) if log_x else (min(times), max(times))
    for e, t, p in pts:
        on_front = any(e is f for f, _, _ in front)
        mark = VALIDATION_MARK if e.psnr_source == "validation" and VALIDATION_MARK in ylabel else ""
        right = hi > lo and ((math.log(t) if log_x else t) - lo) / (hi - lo) > 0.6  # label leftwards there
        ax.annotate(e.name + mark, (t, p), textcoords="offset points", xytext=(-4 if right else 4, 4),
                    ha="right" if right else "left", fontsize=7,
                    color="tab:red" if on_front else "black", fontweight="bold" if on_front else "normal")
    if bicubic_psnr is not None:
        ax.axhline(bicubic_psnr, color="gray", ls="--", lw=1, label=f"bicubic ({bicubic_psnr:.2f} dB)")
    ax.margins(x=0.08, y=0.1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title("PSNR versus time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path, [e for e, _, _ in front], time_attr


# ---------------------------------------------------------------------------------------- the report


def write_report(collected: Collected, out_dir: str | Path, photo: str | Path | None = None,
                 crop: tuple[int, int, int, int] | None = None, crops: bool = True) -> dict[str, Any]:
    """Write report.md and the PNGs into ``out_dir``; returns their paths and the Pareto front."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries, notes = collected.entries, list(collected.notes)
    md = [f"# Report: {collected.source.resolve().name}", ""]
    src = f"{len(entries)} trained network(s) from `{collected.source}`"
    md.append(src + (f"; benchmark PSNR and times from evaluate.py's `{collected.results}`." if collected.results
                     else "; no evaluate.py results, so PSNR is the validation PSNR of each run and photo times are missing."))
    psnr_sources = {e.psnr_source for e in entries}
    sets = sorted({s for e in entries if e.metrics for s in (e.metrics.get("sets") or {})})
    legend = []
    if "results" in psnr_sources:
        legend.append("PSNR: evaluate.py, mean over " + (", ".join(sets) if sets else "its benchmark sets")
                      + " (Y channel, border = scale)")
    if "validation" in psnr_sources:
        legend.append(f"{VALIDATION_MARK}: validation PSNR from run.json (best_psnr), not the benchmark")
    legend.append("times in seconds (lower is better); best of each row in **bold**")
    md += ["", "; ".join(legend) + ".", ""]

    for title, tables in grid_tables(entries):
        md += [f"## {title[0].upper() + title[1:]}", ""]
        for table in tables:
            if len(tables) > 1 or table.title != title:
                md += [f"### {table.title}", ""]
            md += [markdown_table(table), ""]

    result: dict[str, Any] = {"report": out_dir / REPORT_FILE, "crops": {}, "scatter": None, "front": []}
    if crops:
        figures = crop_figures(entries, out_dir, photo, crop, notes)
        for scale, fig in figures.items():
            x, y, w, h = fig["box"]
            md += [f"## The same crop upscaled by every network (x{scale})", "",
                   (f"{fig['photo']}, HR crop at x={x}, y={y}, {w}x{h} px; LR = MATLAB-style bicubic downscale; "
                    "titles give the PSNR (Y) of the crop."), "",
                   f"![x{scale} crops]({fig['path'].name})", ""]
            result["crops"][scale] = fig["path"]
    scatter = scatter_figure(entries, out_dir / SCATTER_FILE, collected.bicubic_psnr)
    if scatter is not None:
        path, front, time_attr = scatter
        what = "colour photo time" if time_attr == "time_color" else "training time"
        md += ["## PSNR versus time", "", f"![PSNR versus {what}]({path.name})", "",
               f"Pareto front (PSNR versus {what}; no other network is both faster and better): "
               + ", ".join(f"`{e.name}`" for e in front) + ".", ""]
        result["scatter"], result["front"] = path, front
    if notes:
        md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    (out_dir / REPORT_FILE).write_text("\n".join(md))
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m srlab.report", description=__doc__.split("\n")[0])
    parser.add_argument("source", help="a sweep folder (run.json files) or evaluate.py's results (folder or results.csv)")
    parser.add_argument("--out", help="output folder (default: <source>/report)")
    parser.add_argument("--results", help="evaluate.py's results for a sweep (default: <sweep>/results if present)")
    parser.add_argument("--photo", help="photo for the crop comparison (default: scikit-image chelsea)")
    parser.add_argument("--crop", help="X,Y,W,H of the crop in HR pixels (default: centred 128x128)")
    parser.add_argument("--scale", type=int, help="only the results of this scale (when they hold several)")
    parser.add_argument("--protocol", choices=("y", "rgb"), help="only the results of this protocol (when they hold several)")
    parser.add_argument("--no-crops", action="store_true", help="skip the crop comparison (no checkpoints needed)")
    args = parser.parse_args(argv)
    try:
        crop = parse_crop(args.crop)
        collected = collect(args.source, args.results, args.scale, args.protocol)
        source = Path(args.source)
        out = Path(args.out) if args.out else (source if source.is_dir() else source.parent) / "report"
        result = write_report(collected, out, args.photo, crop, crops=not args.no_crops)
    except ReportError as err:
        print(f"srlab.report: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {result['report']}" + "".join(f", {p}" for p in result["crops"].values())
          + (f", {result['scatter']}" if result["scatter"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
