"""srlab.report: grid tables, the crop comparison, the PSNR-versus-time scatter and its Pareto front, on a
tiny real sweep (run.json files + checkpoints from 2-step Lightning fits)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from _train_utils import fit_checkpoint

from srlab.report import (
    Entry,
    ReportError,
    collect,
    crop_figures,
    grid_tables,
    main,
    markdown_table,
    pareto_front,
    super_resolve_crop,
    write_report,
)

NETS = {
    "espcn": {"_target_": "srlab.models.build_model", "name": "espcn", "scale": 2, "activation": "tanh", "color": "y"},
    "fsrcnn": {"_target_": "srlab.models.build_model", "name": "fsrcnn", "scale": 2, "activation": "prelu", "color": "y"},
}
# The sweep: 2 networks x 2 optimizers. Fake but fixed numbers for the tables (hand-checked below).
RUNS = [
    # run_name,                  model,    optimizer, best_psnr, train_time_s
    ("espcn_x2_adam_tanh_none", "espcn", "adam", 30.10, 50.0),
    ("fsrcnn_x2_adam_prelu_none", "fsrcnn", "adam", 30.40, 70.0),
    ("espcn_x2_sgd_tanh_none", "espcn", "sgd", 29.00, 40.0),
    ("fsrcnn_x2_sgd_prelu_none", "fsrcnn", "sgd", 28.50, 45.0),
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """multirun/<time>/<num>_<run_name>/{run.json, checkpoints/best.ckpt}, as train.py -m lays it out."""
    root = tmp_path_factory.mktemp("multirun") / "2026-12-04_10-00-00"
    for num, (name, model, optimizer, psnr, train_time) in enumerate(RUNS):
        run_dir = root / f"{num}_{name}"
        ckpt = fit_checkpoint(run_dir / "checkpoints" / "best-epoch001.ckpt", NETS[model], seed=num)
        record = {"run_name": name, "model": model, "scale": 2, "optimizer": optimizer,
                  "activation": NETS[model]["activation"], "pruning": "none", "data": "folder",
                  "best_psnr": psnr, "best_ssim": 0.8, "bicubic_psnr": 28.0, "train_time_s": train_time,
                  "steps": 2, "params": 1000, "sparsity": 0.0, "best_ckpt": str(ckpt), "last_ckpt": None,
                  "run_dir": str(run_dir)}
        (run_dir / "run.json").write_text(json.dumps(record, indent=2))
    return root


def write_results(folder: Path, rows: list[tuple]) -> Path:
    """evaluate.py's layout: <label>/metrics.json and results.csv.
    rows: (label, psnr, time_color, time_gray, ckpt[, run_dir])."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_rows = []
    for label, psnr, tc, tg, ckpt, *run_dir in rows:
        metrics = {"model": label, "architecture": label.split("_")[0], "scale": 2, "protocol": "y",
                   "checkpoint": str(ckpt) if ckpt else None,
                   "sets": {"Set5": {"psnr": psnr + 1, "ssim": 0.9, "images": 5}, "Set14": {"psnr": psnr - 1, "ssim": 0.8, "images": 14}},
                   "psnr": psnr, "ssim": 0.85, "time_color_s": tc, "time_gray_s": tg, "params": 1000, "net": None,
                   "run_dir": str(run_dir[0]) if run_dir else None}
        name = "bicubic_x2" if label == "bicubic" else label  # as evaluate.py names the folders
        (folder / name).mkdir(exist_ok=True)
        (folder / name / "metrics.json").write_text(json.dumps(metrics))
        csv_rows.append({"model": label, "architecture": metrics["architecture"], "scale": 2, "protocol": "y",
                         "psnr": psnr, "ssim": 0.85, "time_color": tc, "time_gray": tg, "checkpoint": metrics["checkpoint"] or ""})
    with open(folder / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(csv_rows[0]))
        writer.writeheader()
        writer.writerows(csv_rows)
    return folder


def ckpt_of(sweep: Path, i: int) -> Path:
    return sweep / f"{i}_{RUNS[i][0]}" / "checkpoints" / "best-epoch001.ckpt"


def section(md: str, heading: str) -> str:
    """The Markdown between ``heading`` and the next heading of the same or higher level."""
    start = md.index(heading)
    level = heading.split(" ")[0]
    rest = md[start + len(heading):]
    m = re.search(rf"^#{{1,{len(level)}}} ", rest, flags=re.MULTILINE)
    return rest[: m.start()] if m else rest


def table_rows(md: str) -> dict[str, list[str]]:
    rows = {}
    for line in md.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def assert_png(path: Path) -> tuple[int, int]:
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.width > 100 and im.height > 100
        return im.size


# -------------------------------------------------------------------------------------------- pareto


def test_pareto_front_on_hand_made_points():
    points = [
        (1.0, 30.0),   # 0: front
        (2.0, 31.0),   # 1: front
        (3.0, 30.5),   # 2: dominated by 1 (faster and better)
        (0.5, 29.0),   # 3: front (fastest)
        (4.0, 32.0),   # 4: front (best)
        (2.0, 30.8),   # 5: dominated by 1 (as fast, better)
        (5.0, 32.0),   # 6: dominated by 4 (as good, faster)
        (1.0, 30.0),   # 7: equal to 0: neither dominates the other, both on the front
    ]
    assert pareto_front(points) == [3, 0, 7, 1, 4]
    assert pareto_front([(1.0, 1.0)]) == [0]
    assert pareto_front([]) == []


# ------------------------------------------------------------------------------------------- tables


def test_tables_from_run_json_only(sweep, tmp_path):
    collected = collect(sweep)
    assert collected.results is None and len(collected.entries) == 4
    assert all(e.checkpoint is not None and e.checkpoint.is_file() for e in collected.entries)
    sections = grid_tables(collected.entries)
    assert [title for title, _ in sections] == ["Optimizer grid"]  # only the optimizer varies
    assert [t.title for t in sections[0][1]] == ["optimizer = adam", "optimizer = sgd"]

    result = write_report(collected, tmp_path / "report", crops=False)
    md = result["report"].read_text()
    adam = table_rows(section(md, "### optimizer = adam"))
    assert adam[""] == ["espcn", "fsrcnn"]
    assert adam["Training time, s"] == ["**50.0**", "70.0"]       # lower is better
    assert adam["PSNR, dB"] == ["30.10†", "**30.40†**"]           # validation PSNR, marked †
    assert "Colour photo time, s" not in adam                      # no evaluate.py results: no row
    sgd = table_rows(section(md, "### optimizer = sgd"))
    assert sgd["Training time, s"] == ["**40.0**", "45.0"]
    assert sgd["PSNR, dB"] == ["**29.00†**", "28.50†"]
    assert "no evaluate.py results" in md and "† : validation PSNR" not in md and "†: validation PSNR" in md
    # PSNR vs training time (no colour times); the front: espcn sgd (40 s) < espcn adam (50 s) < fsrcnn adam
    assert [e.name for e in result["front"]] == ["espcn_x2_sgd_tanh_none", "espcn_x2_adam_tanh_none",
                                                 "fsrcnn_x2_adam_prelu_none"]
    assert "PSNR versus training time" in md
    assert_png(result["scatter"])


def test_tables_prefer_evaluate_results(sweep, tmp_path):
    results = write_results(tmp_path / "results", [
        ("bicubic", 27.5, 0.001, 0.0005, None),
        ("espcn_x2_adam_tanh_none", 31.00, 0.020, 0.010, None),       # matched by label
        ("fsrcnn_adam_renamed", 30.50, 0.030, 0.008, ckpt_of(sweep, 1)),  # matched by checkpoint path
        ("espcn_x2_sgd_tanh_none", 29.90, 0.021, 0.011, None),
        ("srcnn_x2_adam_relu_none", 33.0, 1.0, 0.5, None),              # belongs to no run here
    ])
    collected = collect(sweep, results)
    by_name = {e.name: e for e in collected.entries}
    assert by_name["fsrcnn_x2_adam_prelu_none"].psnr == 30.50  # via checkpoint, label differs
    assert by_name["fsrcnn_x2_sgd_prelu_none"].psnr_source == "validation"  # not evaluated: run.json
    assert collected.bicubic_psnr == 27.5
    assert any("srcnn_x2_adam_relu_none" in n for n in collected.notes)

    result = write_report(collected, tmp_path / "report", crops=False)
    md = result["report"].read_text()
    adam = table_rows(section(md, "### optimizer = adam"))
    assert adam["Training time, s"] == ["**50.0**", "70.0"]    # always from run.json
    assert adam["PSNR, dB"] == ["**31.00**", "30.50"]
    assert adam["Colour photo time, s"] == ["**0.02**", "0.03"]
    assert adam["Grey photo time, s"] == ["0.01", "**0.008**"]
    sgd = table_rows(section(md, "### optimizer = sgd"))
    assert sgd["PSNR, dB"] == ["**29.90**", "28.50†"]
    assert sgd["Colour photo time, s"] == ["0.021", "–"]       # one value: nothing to mark
    assert "mean over Set14, Set5" in md and "†: validation PSNR" in md
    assert "srcnn_x2_adam_relu_none" in section(md, "## Notes")
    # Not every run has a colour time, so the scatter falls back to training time (and says so).
    assert "PSNR versus training time" in md


def test_markdown_table_marks_every_tied_best():
    cols = [Entry("a", "a", psnr=30.0, psnr_source="results", train_time=5.0),
            Entry("b", "b", psnr=30.001, psnr_source="results", train_time=5.0),
            Entry("c", "c", psnr=29.0, psnr_source="results", train_time=9.0)]
    from srlab.report import Table

    rows = table_rows(markdown_table(Table("t", cols, ["a", "b", "c"])))
    assert rows["PSNR, dB"] == ["**30.00**", "**30.00**", "29.00"]   # equal as displayed: both bold
    assert rows["Training time, s"] == ["**5.0**", "**5.0**", "9.0"]


def test_groups_and_several_factors_make_separate_grids():
    def e(name, model, group, **info):
        return Entry(name, model, info={"group": group, **info}, psnr=30.0, psnr_source="validation")
    entries = [e("1", "espcn", "grid_activation", optimizer="adam", activation="relu", pruning="none"),
               e("2", "espcn", "grid_activation", optimizer="adam", activation="tanh", pruning="none"),
               e("3", "espcn", "grid_pruning", optimizer="adam", activation="tanh", pruning="none"),
               e("4", "espcn", "grid_pruning", optimizer="adam", activation="tanh", pruning="random_unstructured"),
               e("5", "espcn", "both", optimizer="adam", activation="relu", pruning="none"),
               e("6", "espcn", "both", optimizer="sgd", activation="relu", pruning="none"),
               e("7", "espcn", "both", optimizer="adam", activation="tanh", pruning="none")]
    sections = dict(grid_tables(entries))
    assert [t.title for t in sections["grid_activation: Activation grid"]] == ["activation = relu", "activation = tanh"]
    assert [t.title for t in sections["grid_pruning: Pruning grid"]] == ["pruning = none", "pruning = random_unstructured"]
    single = dict(grid_tables([e("8", "espcn", None, optimizer="adam", activation="tanh"),
                               e("9", "fsrcnn", None, optimizer="adam", activation="prelu")]))
    assert list(single) == ["all networks (optimizer = adam)"]  # activation differs per network: no grid
    adam = sections["both: Optimizer grid"][0]
    assert adam.title == "optimizer = adam" and adam.labels == ["espcn (relu)", "espcn (tanh)"]


# -------------------------------------------------------------------------------------------- images


def test_crop_of_sr_equals_crop_of_whole_image_sr():
    from srlab.models import build_model
    from srlab.resize import bicubic_downscale, modcrop
    from srlab.sr import super_resolve

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    hr = modcrop(rng.integers(0, 256, (60, 52, 3), dtype=np.uint8), 2)
    lr = bicubic_downscale(hr, 2)
    for net in (build_model("espcn", 2).eval(), build_model("fsrcnn", 2, color="rgb").eval()):
        with torch.no_grad():
            full = super_resolve(net, torch.from_numpy(lr.copy()).permute(2, 0, 1)[None].float() / 255)[0]
        full = full.mul(255).round().byte().permute(1, 2, 0).numpy()
        box = (20, 14, 16, 24)
        crop = super_resolve_crop(net, lr, box)
        assert crop.shape == (24, 16, 3)
        assert np.abs(crop.astype(int) - full[14:38, 20:36].astype(int)).max() <= 1


def test_crop_figure_and_report_end_to_end(sweep, tmp_path, capsys):
    results = write_results(sweep.parent / "results", [
        ("bicubic", 27.5, 0.001, 0.0005, None),
        *[(name, psnr + 1, 0.01 * (i + 1), 0.005 * (i + 1), None) for i, (name, _, _, psnr, _) in enumerate(RUNS)],
    ])
    out = tmp_path / "report"
    assert main([str(sweep), "--results", str(results), "--out", str(out), "--crop", "151,61,64,48"]) == 0
    assert "wrote" in capsys.readouterr().out
    md = (out / "report.md").read_text()
    assert "![x2 crops](crops_x2.png)" in md and "![PSNR versus colour photo time](psnr_vs_time.png)" in md
    assert "HR crop at x=150, y=60, 64x48 px" in md   # aligned to the scale grid
    width, height = assert_png(out / "crops_x2.png")
    assert width > 4 * 200 and height > 200 * 1.5     # 6 panels (HR, bicubic, 4 networks): 4 columns, 2 rows
    assert_png(out / "psnr_vs_time.png")
    # colour times for every run: the front over (time_color, psnr); espcn adam (0.01 s, 31.1 dB) beats
    # everything slower except fsrcnn adam (0.02 s, 31.4 dB); the sgd runs are slower and worse.
    assert "Pareto front (PSNR versus colour photo time" in md
    assert "`espcn_x2_adam_tanh_none`, `fsrcnn_x2_adam_prelu_none`." in md


def test_crop_figures_psnr_labels(sweep, tmp_path):
    entries = collect(sweep).entries[:2]
    figs = crop_figures(entries, tmp_path)
    fig = figs[2]
    # chelsea 300x451 -> 300x450 at x2; centred 128x128 at (161, 86), x aligned down to the x2 grid
    assert fig["box"] == (160, 86, 128, 128)
    assert set(fig["psnr"]) == {"bicubic", *(e.name for e in entries)}
    assert all(np.isfinite(v) for v in fig["psnr"].values())
    assert 25 < fig["psnr"]["bicubic"] < 45  # the bicubic baseline on a real photo


def test_results_alone_find_their_runs(sweep, tmp_path):
    results = write_results(tmp_path / "res", [
        ("bicubic", 27.5, 0.001, 0.0005, None),
        ("a", 31.0, 0.02, 0.01, ckpt_of(sweep, 0)),
        ("b", 30.0, 0.03, 0.02, ckpt_of(sweep, 2)),
        ("c", 30.5, 0.05, 0.02, None),  # no checkpoint: no run.json, no grid info
        ("d", 29.5, 0.04, 0.02, None, ckpt_of(sweep, 3).parent.parent),  # run_dir in metrics.json
    ])
    collected = collect(results / "results.csv")
    by_name = {e.name: e for e in collected.entries}
    assert by_name["a"].info["optimizer"] == "adam" and by_name["a"].train_time == 50.0
    assert by_name["b"].info["optimizer"] == "sgd" and by_name["b"].psnr == 30.0
    assert by_name["c"].train_time is None and by_name["c"].checkpoint is None
    assert by_name["d"].info["optimizer"] == "sgd" and by_name["d"].model == "fsrcnn" and by_name["d"].train_time == 45.0
    assert main([str(results), "--no-crops"]) == 0
    assert (results / "report" / "report.md").is_file()


def test_bad_inputs(tmp_path, capsys):
    with pytest.raises(ReportError, match="no such"):
        collect(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError):
        collect(tmp_path / "empty")
    assert main([str(tmp_path / "empty")]) == 1
    assert main([str(tmp_path), "--crop", "1,2,3"]) == 1
    assert "X,Y,W,H" in capsys.readouterr().err
