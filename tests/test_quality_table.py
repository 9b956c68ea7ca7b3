"""benchmarks/quality_table.py on a fake results tree: table rows, beats-bicubic flags, paper column, the
eval.limit marking, targets and the select_best.py table CSV."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from srlab.evaluation.results import write_results
from srlab.selection import DEFAULT_CRITERIA, load_table, parse_criteria, rank_models

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("quality_table", ROOT / "benchmarks" / "quality_table.py")
qt = sys.modules["quality_table"] = importlib.util.module_from_spec(_spec)  # dataclasses look it up
_spec.loader.exec_module(qt)

FULL = {"Set5": 5, "Set14": 14, "BSD100": 100, "Urban100": 100}


def record(model: str, psnrs: list[float], images: dict[str, int], checkpoint: str | None) -> dict:
    """A metrics.json record as evaluate.py writes it (only the keys the results writers need)."""
    sets = {s: {"psnr": p, "ssim": p / 40, "images": images[s]} for s, p in zip(FULL, psnrs)}
    return {"model": model, "architecture": model.split("_")[0], "scale": 4, "protocol": "y",
            "protocol_description": "y", "checkpoint": checkpoint, "run_dir": None, "sets": sets,
            "psnr": sum(psnrs) / 4, "ssim": sum(psnrs) / 160, "params": 1000, "macs_per_mp": None}


def fake_run(root: Path, budget: int, model: str, net: list[float], bicubic: list[float], steps: int,
             limit: int | None = None) -> None:
    images = {s: min(n, limit) if limit else n for s, n in FULL.items()}
    run_dir = root / "outputs" / f"budget_{budget}m" / f"{model}_x4_adam"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "final.ckpt").write_bytes(b"")
    (run_dir / "run.json").write_text(json.dumps({"steps": steps, "train_time_s": budget * 60.0}))
    ckpt = f"outputs/budget_{budget}m/{model}_x4_adam/checkpoints/final.ckpt"  # relative, as the script passes it
    write_results([record("bicubic", bicubic, images, None), record(f"{model}_x4_adam", net, images, ckpt)],
                  root / "results" / f"budget_{budget}m" / model)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    bicubic = [28.43, 26.00, 25.96, 23.14]
    fake_run(tmp_path, 10, "espcn", [29.50, 26.60, 26.40, 23.60], bicubic, 2900)
    # VDSR on the first 10 images: bicubic on those images differs; it loses on Urban100
    fake_run(tmp_path, 10, "vdsr", [29.80, 26.20, 26.50, 22.90], [28.43, 25.70, 26.10, 23.00], 400, limit=10)
    fake_run(tmp_path, 30, "espcn", [30.60, 27.00, 26.70, 24.00], bicubic, 8700)
    return tmp_path


def rows_of(text: str) -> dict[tuple[str, str], list[str]]:
    """The first table's rows keyed by (network, budget)."""
    table = text.split("\n\n")[0].splitlines()[2:]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table]
    return {(c[0], c[1]): c for c in cells}


def test_table(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    qt.main(["--root", str(tree), "--budgets", "10", "30", "--out", str(tree / "q.md")])
    out = capsys.readouterr().out
    assert (tree / "q.md").read_text() == out
    rows = rows_of(out)
    assert list(rows) == [("bicubic", ""), ("ESPCN", "10"), ("ESPCN", "30"), ("VDSR", "10")]
    assert rows[("bicubic", "")][3:7] == ["28.43 / 0.7107", "26.00 / 0.6500", "25.96 / 0.6490", "23.14 / 0.5785"]
    espcn = rows[("ESPCN", "10")]
    assert espcn[2] == "2,900" and espcn[3] == "29.50 / 0.7375" and espcn[-1] == "yes"
    vdsr = rows[("VDSR", "10")]
    assert vdsr[2] == "400"
    assert vdsr[3] == "29.80 / 0.7450"  # Set5 has 5 images: all of them, no mark
    assert vdsr[4] == "26.20 / 0.6550 (first 10 images; bicubic 25.70 / 0.6425)"
    assert vdsr[-1] == "no (Urban100)"
    assert "first N images" in out and "SRGAN-MSE" in out and "1e-3 adversarial" in out
    # the paper table: ours / paper (difference), blank where the paper reports nothing, * for limited sets
    assert "| ESPCN | 10 | 29.50 / 30.76 (-1.26) | 26.60 / – | 26.40 / – | 23.60 / – | Shi et al. 2016 |" in out
    assert "| VDSR | 10 | 29.80 / 31.35 (-1.55) | 26.20* / 28.01 (-1.81) |" in out
    # targets: ESPCN at 30 min met (30.60 >= 30.46), FSRCNN and EDSR-baseline not run
    assert "ESPCN, 30 min, Set5 >= 30.46 dB (paper 30.76 - 0.3): 30.60 dB, met" in out
    assert "FSRCNN, 30 min, Set5 >= 30.42 dB (paper 30.72 - 0.3): no results yet" in out
    assert "EDSR-baseline, 60 min, Set5 >= 31.00 dB (31.0): no results yet" in out


def test_default_budget_and_missed_target(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_run(tree, 60, "edsr_baseline", [30.75, 27.5, 26.9, 24.5], [28.43, 26.00, 25.96, 23.14], 1200)
    qt.main(["--root", str(tree)])
    out = capsys.readouterr().out
    assert [k[1] for k in rows_of(out)] == ["", "10", "10"]  # --budget 10 by default
    assert "EDSR-baseline, 60 min, Set5 >= 31.00 dB (31.0): 30.75 dB, missed (0.25 dB short)" in out


def test_selection_csv(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        qt.main(["--root", str(tree), "--selection-csv", str(tree / "sel.csv")])
    assert "--selection-csv needs --speed" in capsys.readouterr().err

    speed = tree / "speed.csv"
    speed.write_text("model,mode,photo,s_per_output_mp,seconds_median\n"
                     "espcn,engine,color,0.05,0.11\nespcn,engine,gray,0.04,0.09\nespcn,plain,color,0.5,9.0\n"
                     "vdsr,channels_last,color,0.5,1.1\nvdsr,channels_last,gray,0.4,0.9\nvdsr,engine,gray,0.4,0.8\n")
    qt.main(["--root", str(tree), "--budgets", "10", "30", "--speed", str(speed),
             "--selection-csv", str(tree / "sel.csv")])
    with open(tree / "sel.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:5] == ["model", "psnr", "time_color", "time_gray", "checkpoint"]
    by_model = {r["model"]: r for r in rows}
    assert list(by_model) == ["espcn_10m", "espcn_30m", "vdsr_10m"]
    # vdsr_10m has only Set5 in full, so every row's psnr is its Set5 PSNR (the same images for all)
    assert float(by_model["espcn_10m"]["psnr"]) == pytest.approx(29.50)
    assert (by_model["espcn_30m"]["time_color"], by_model["espcn_30m"]["time_gray"]) == ("0.05", "0.04")
    assert (by_model["vdsr_10m"]["time_color"], by_model["vdsr_10m"]["time_gray"]) == ("0.5", "0.4")  # engine wins
    assert Path(by_model["espcn_30m"]["checkpoint"]) == tree / "outputs/budget_30m/espcn_x4_adam/checkpoints/final.ckpt"
    # what select_best.py select.table=... does with it
    table, _ = load_table(tree / "sel.csv")
    ranking = rank_models(table, parse_criteria(DEFAULT_CRITERIA))
    assert ranking.winner.model == "espcn_30m"

    speed.write_text("model,mode,photo,s_per_output_mp,seconds_median\nespcn,engine,color,0.05,0.11\n")
    with pytest.raises(SystemExit, match="no engine color\\+gray rows for \\['espcn', 'vdsr'\\]"):
        qt.main(["--root", str(tree), "--speed", str(speed), "--selection-csv", str(tree / "sel.csv")])
