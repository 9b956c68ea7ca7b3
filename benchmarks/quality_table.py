"""The "quality per CPU-minute" table for BENCHMARKS.md, from results already on disk.

    python benchmarks/quality_table.py                                  # the 10-minute runs
    python benchmarks/quality_table.py --budgets 10 30 60 --out quality.md
    python benchmarks/quality_table.py --speed speed.csv --selection-csv select.csv
    python select_best.py select.table=select.csv

Reads what benchmarks/quality_per_minute.sh leaves: ``results/budget_<N>m/<model>/results.csv`` (and the
``metrics.json`` beside it: evaluate.py's x4 "y" protocol, a bicubic row and the network's row) and the
training record ``run.json`` of the run whose checkpoint was evaluated. A set evaluated on fewer images than
the benchmark has (``eval.limit``; metrics.json counts them) is marked, with bicubic on the same images beside
it. Prints the Markdown table, the published x4 PSNR beside ours, and the target checks.

``--selection-csv`` writes a ``select_best.py select.table=`` CSV (model, psnr, time_color, time_gray,
checkpoint; then budget_min). Its psnr is the mean over the sets every row has in full; the times are
the engine rows' ``s_per_output_mp`` (or ``--time-column seconds_median``) of the ``--speed`` CSV (model,
mode, photo, s_per_output_mp, seconds_median; photo "color" or "gray"; mode "engine", or "channels_last",
the engine's setting, as benchmarks/inference_speed.py writes it).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from srlab.data.benchmarks import load_manifest
from srlab.selection import BICUBIC, SelectionError, load_results

ROOT = Path(__file__).resolve().parents[1]
SETS = ("Set5", "Set14", "BSD100", "Urban100")
ENGINE_MODES = ("engine", "channels_last")  # speed CSV rows of the inference engine, preferred first
SAME_GENERATOR = {"srgan": "srresnet"}  # SRGAN's generator is an SRResNet: the same speed


class Paper(NamedTuple):
    network: str
    citation: str
    psnr: tuple[float | None, ...]  # x4, Y channel: Set5, Set14, BSD100, Urban100 (None: not reported)


# Published x4 PSNR (dB). Sources: Dong, Loy, He, Tang, "Image Super-Resolution Using Deep Convolutional
# Networks", TPAMI 2016 (SRCNN); Dong, Loy, Tang, "Accelerating the Super-Resolution Convolutional Neural
# Network", ECCV 2016 (FSRCNN); Shi et al., "Real-Time Single Image and Video Super-Resolution Using an
# Efficient Sub-Pixel Convolutional Neural Network", CVPR 2016 (ESPCN); Kim, Lee, Lee, "Accurate Image
# Super-Resolution Using Very Deep Convolutional Networks", CVPR 2016 (VDSR); Lim et al., "Enhanced Deep
# Residual Networks for Single Image Super-Resolution", CVPRW 2017 (EDSR baseline); Zhang et al., "Residual
# Dense Network for Image Super-Resolution", CVPR 2018 (RDN); Ledig et al., "Photo-Realistic Single Image
# Super-Resolution Using a Generative Adversarial Network", CVPR 2017 (SRResNet, SRGAN). The order is the rows'.
PAPERS: dict[str, Paper] = {
    "srcnn": Paper("SRCNN", "Dong et al. 2016", (30.48, 27.49, 26.90, 24.52)),
    "fsrcnn": Paper("FSRCNN", "Dong et al. 2016", (30.72, 27.61, 26.98, 24.62)),
    "espcn": Paper("ESPCN", "Shi et al. 2016", (30.76, None, None, None)),
    "vdsr": Paper("VDSR", "Kim et al. 2016", (31.35, 28.01, 27.29, 25.18)),
    "edsr_baseline": Paper("EDSR-baseline", "Lim et al. 2017", (32.09, 28.58, 27.57, 26.04)),
    "rdn": Paper("RDN", "Zhang et al. 2018", (32.47, 28.81, 27.72, 26.61)),
    "srresnet": Paper("SRResNet", "Ledig et al. 2017", (32.05, 28.49, 27.58, None)),
    "srgan": Paper("SRGAN-MSE", "Ledig et al. 2017 (SRGAN)", (29.40, 26.02, 25.16, None)),
}
# (model, budget minutes, the Set5 PSNR to reach, how the target is stated)
TARGETS = [("espcn", 30, 30.76 - 0.3, "paper 30.76 - 0.3"), ("fsrcnn", 30, 30.72 - 0.3, "paper 30.72 - 0.3"),
           ("edsr_baseline", 60, 31.0, "31.0")]
NOTES = [
    ("PSNR (dB) / SSIM at x4 on the Y channel of BT.601, 4 border pixels cropped (the papers' protocol); each "
     "network trained on sr291 for the budget on one core (benchmarks/quality_per_minute.sh), last weights evaluated."),
    "\"beats bicubic\" compares PSNR with the bicubic row evaluated on the same images.",
    ("SRGAN is trained here as SRGAN-MSE: pixel MSE + 1e-3 adversarial loss (no VGG weights can be downloaded "
     "offline), starting from the SRResNet of the same budget; the paper's SRGAN row uses its VGG perceptual loss."),
]


class Score(NamedTuple):
    psnr: float
    ssim: float | None
    images: int | None


@dataclass
class Result:
    """One network's evaluation (and the bicubic row of the same results.csv)."""

    model: str                   # the results folder: espcn, fsrcnn, ...
    budget: int
    sets: dict[str, Score]
    bicubic: dict[str, Score]
    checkpoint: Path | None
    steps: int | None

    @property
    def name(self) -> str:
        return PAPERS[self.model].network if self.model in PAPERS else self.model

    def limited(self, set_name: str) -> bool:
        return is_limited(set_name, self.sets.get(set_name))


def is_limited(set_name: str, score: Score | None) -> bool:
    """Evaluated on fewer images than the benchmark set has (``eval.limit``)."""
    full = load_manifest().get(set_name)
    return bool(score and score.images is not None and full and score.images < len(full["files"]))


def _scores(row: dict) -> dict[str, Score]:
    sets = (row.get("metrics") or {}).get("sets") or {}
    out = {}
    for s in SETS:
        if row.get(f"psnr_{s}") not in (None, ""):
            ssim = row.get(f"ssim_{s}")
            out[s] = Score(float(row[f"psnr_{s}"]), float(ssim) if ssim not in (None, "") else None,
                           (sets.get(s) or {}).get("images"))
    return out


def _resolve(path: str | None, root: Path) -> Path | None:
    if path in (None, "", "None"):
        return None
    return Path(path) if Path(path).is_absolute() else root / path


def load_budget(root: Path, budget: int) -> list[Result]:
    """Every evaluated network under ``results/budget_<budget>m``."""
    results = []
    for csv_path in sorted((root / "results" / f"budget_{budget}m").glob("*/results.csv")):
        rows, _ = load_results(csv_path, scale=4, protocol="y")
        bicubic = next((_scores(r) for r in rows if r["model"] == BICUBIC), {})
        for row in (r for r in rows if r["model"] != BICUBIC):
            ckpt = _resolve(row.get("checkpoint"), root)
            run_dir = (_resolve((row.get("metrics") or {}).get("run_dir"), root)
                       or (ckpt.parent.parent if ckpt else None))  # <run>/checkpoints/final.ckpt
            run_json = run_dir / "run.json" if run_dir else None
            steps = json.loads(run_json.read_text()).get("steps") if run_json and run_json.is_file() else None
            results.append(Result(csv_path.parent.name, budget, _scores(row), bicubic, ckpt, steps))
    return results


def _order(r: Result) -> tuple[int, str, int]:
    """PAPERS order, then by name, then by budget."""
    order = list(PAPERS)
    return order.index(r.model) if r.model in order else len(order), r.model, r.budget


def _cell(score: Score | None) -> str:
    if score is None:
        return ""
    return f"{score.psnr:.2f}" + (f" / {score.ssim:.4f}" if score.ssim is not None else "")


def _set_cell(r: Result, set_name: str) -> str:
    """"PSNR / SSIM"; for a limited set also the image count and bicubic on the same images."""
    text = _cell(r.sets.get(set_name))
    if r.limited(set_name):
        text += f" (first {r.sets[set_name].images} images; bicubic {_cell(r.bicubic.get(set_name)) or '?'})"
    return text


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def quality_table(results: list[Result]) -> str:
    header = ["network", "budget (min)", "training steps", *SETS, "beats bicubic on all four"]
    lines = [_row(header), "|" + "---|" * len(header)]
    if results:  # the bicubic row of a full-set evaluation when there is one
        full = next((r for r in results if not any(is_limited(s, b) for s, b in r.bicubic.items())), results[0])
        lines.append(_row([BICUBIC, "", ""] + [_cell(full.bicubic.get(s)) for s in SETS] + [""]))
    for r in results:
        losing = [s for s in SETS if s in r.sets and s in r.bicubic and r.sets[s].psnr <= r.bicubic[s].psnr]
        missing = [s for s in SETS if s not in r.sets or s not in r.bicubic]
        beats = f"n/a (no {', '.join(missing)})" if missing else ("yes" if not losing else f"no ({', '.join(losing)})")
        steps = f"{r.steps:,}" if r.steps is not None else "?"
        lines.append(_row([r.name, str(r.budget), steps, *(_set_cell(r, s) for s in SETS), beats]))
    return "\n".join(lines)


def paper_table(results: list[Result]) -> str:
    header = ["network", "budget (min)", *(f"{s} ours / paper" for s in SETS), "paper"]
    lines = [_row(header), "|" + "---|" * len(header)]
    for r in results:
        paper = PAPERS.get(r.model)
        cells = []
        for s, published in zip(SETS, paper.psnr if paper else (None,) * len(SETS)):
            ours = r.sets.get(s)
            text = f"{ours.psnr:.2f}" + ("*" if r.limited(s) else "") if ours else "–"
            text += f" / {published:.2f}" if published is not None else " / –"
            cells.append(text + (f" ({ours.psnr - published:+.2f})" if ours and published is not None else ""))
        lines.append(_row([r.name, str(r.budget), *cells, paper.citation if paper else ""]))
    return "\n".join(lines)


def target_lines(root: Path) -> list[str]:
    lines = []
    for model, budget, goal, stated in TARGETS:
        found = [r for r in load_budget(root, budget) if r.model == model and "Set5" in r.sets]
        head = f"- {PAPERS[model].network}, {budget} min, Set5 >= {goal:.2f} dB ({stated}): "
        if not found:
            lines.append(head + f"no results yet (results/budget_{budget}m/{model})")
            continue
        psnr = found[0].sets["Set5"].psnr
        lines.append(head + f"{psnr:.2f} dB, " + ("met" if psnr >= goal else f"missed ({goal - psnr:.2f} dB short)"))
    return lines


def report(root: Path, results: list[Result]) -> str:
    notes = list(NOTES)
    if any(r.limited(s) for r in results for s in SETS):
        notes.append("\"first N images\": that set was evaluated on its first N images only (eval.limit), so it "
                     "is not comparable with the papers; bicubic on the same images is given beside it. "
                     "* marks those numbers below.")
    return "\n\n".join([quality_table(results), "\n".join(f"{i}. {n}" for i, n in enumerate(notes, 1)),
                        "Published x4 PSNR beside ours (ours / paper (difference), dB):", paper_table(results),
                        "Targets:\n" + "\n".join(target_lines(root))]) + "\n"


def read_speed(path: Path, column: str = "seconds_median") -> dict[str, dict[str, float]]:
    """``{model: {"color": s, "gray": s}}`` from the speed benchmark's engine rows."""
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("mode") in ENGINE_MODES]
    speed: dict[str, dict[str, float]] = {}
    for row in sorted(rows, key=lambda r: -ENGINE_MODES.index(r["mode"])):  # "engine" rows win
        speed.setdefault(row["model"], {})[row["photo"]] = float(row[column])
    return speed


def write_selection_csv(results: list[Result], speed: dict[str, dict[str, float]], path: Path) -> list[str]:
    """The select.table CSV; returns the sets its psnr averages over."""
    # PSNR over the sets every row has in full, so that no row is averaged over other images
    common = [s for s in SETS if all(s in r.sets and not r.limited(s) for r in results)]
    if not results or not common:
        raise SystemExit("quality_table: --selection-csv: no set is evaluated in full in every result")
    speed = {**{alias: speed[arch] for alias, arch in SAME_GENERATOR.items() if arch in speed}, **speed}
    missing = [r.model for r in results if not {"color", "gray"} <= speed.get(r.model, {}).keys()]
    if missing:
        raise SystemExit(f"quality_table: the --speed CSV has no engine color+gray rows for {sorted(set(missing))}")
    rows = [{"model": f"{r.model}_{r.budget}m", "psnr": round(sum(r.sets[s].psnr for s in common) / len(common), 4),
             "time_color": speed[r.model]["color"], "time_gray": speed[r.model]["gray"],
             "checkpoint": str(r.checkpoint.resolve()) if r.checkpoint else "", "budget_min": r.budget}
            for r in results]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return common


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--budget", type=int, default=10, help="minutes (results/budget_<N>m); default 10")
    which.add_argument("--budgets", type=int, nargs="+", help="several budgets, one row per network and budget")
    parser.add_argument("--root", type=Path, default=ROOT, help="folder holding results/ and outputs/")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    parser.add_argument("--speed", type=Path, help="speed benchmark CSV (for --selection-csv)")
    parser.add_argument("--selection-csv", type=Path, help="write a select_best.py select.table CSV")
    parser.add_argument("--time-column", choices=("seconds_median", "s_per_output_mp"), default="s_per_output_mp",
                        help="speed CSV column for time_color / time_gray (default s_per_output_mp: the speed "
                             "benchmark crops the photos smaller for slow networks)")
    args = parser.parse_args(argv)
    if args.selection_csv and not args.speed:
        parser.error("--selection-csv needs --speed PATH (the speed benchmark's CSV: model, mode, photo, "
                     "s_per_output_mp, seconds_median) for the time_color / time_gray columns")
    try:
        results = sorted((r for b in (args.budgets or [args.budget]) for r in load_budget(args.root, b)), key=_order)
        text = report(args.root, results)
    except SelectionError as err:
        raise SystemExit(f"quality_table: {err}") from None
    if not results:
        print(f"quality_table: no results/budget_<N>m/*/results.csv under {args.root} yet", file=sys.stderr)
    print(text, end="")
    if args.out:
        args.out.write_text(text)
    if args.selection_csv:
        sets = write_selection_csv(results, read_speed(args.speed, args.time_column), args.selection_csv)
        print(f"Wrote {args.selection_csv} (psnr: mean over {', '.join(sets)}, evaluated in full for every row)",
              file=sys.stderr)


if __name__ == "__main__":
    main()
