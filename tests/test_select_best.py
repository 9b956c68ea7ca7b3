"""select_best.py / srlab.selection (the seed's points rule, expert coefficients, inputs, errors) and
srlab.deploy (the safetensors export the app loads)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _train_utils import fit_checkpoint

from srlab.deploy import DeployError, export_deploy, load_deployed
from srlab.selection import (
    DEFAULT_CRITERIA,
    SelectionError,
    load_expert,
    load_results,
    load_table,
    parse_criteria,
    rank_models,
    rank_points,
    run,
    write_expert,
)

ROOT = Path(__file__).resolve().parents[1]
CRITERIA = parse_criteria(DEFAULT_CRITERIA)

# Hand-checked example: four networks (one PSNR tie, one colour-time tie) and the bicubic row.
TABLE = [
    {"model": "A", "psnr": 30.0, "time_color": 0.40, "time_gray": 0.20},
    {"model": "B", "psnr": 29.0, "time_color": 0.10, "time_gray": 0.05},
    {"model": "C", "psnr": 29.0, "time_color": 0.20, "time_gray": 0.01},
    {"model": "D", "psnr": 28.0, "time_color": 0.10, "time_gray": 0.30},
    {"model": "bicubic", "psnr": 27.0, "time_color": 0.001, "time_gray": 0.001},
]
# psnr (higher better):       A 4,  B and C tie for 2nd/3rd -> (3+2)/2 = 2.5 each,  D 1
# time_color (lower better):  B and D tie for 1st/2nd -> (4+3)/2 = 3.5 each,  C 2,  A 1
# time_gray (lower better):   C 4,  B 3,  A 2,  D 1
EXPECTED_POINTS = {
    "A": {"psnr": 4.0, "time_color": 1.0, "time_gray": 2.0},
    "B": {"psnr": 2.5, "time_color": 3.5, "time_gray": 3.0},
    "C": {"psnr": 2.5, "time_color": 2.0, "time_gray": 4.0},
    "D": {"psnr": 1.0, "time_color": 3.5, "time_gray": 1.0},
}
# 0.5*psnr + 0.3*time_color + 0.2*time_gray
EXPECTED_SCORES = {
    "A": 0.5 * 4 + 0.3 * 1 + 0.2 * 2,      # 2.70
    "B": 0.5 * 2.5 + 0.3 * 3.5 + 0.2 * 3,  # 2.90
    "C": 0.5 * 2.5 + 0.3 * 2 + 0.2 * 4,    # 2.65
    "D": 0.5 * 1 + 0.3 * 3.5 + 0.2 * 1,    # 1.75
}


# ------------------------------------------------------------------------------------------- helpers


def write_csv(path: Path, rows: list[dict], fields: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = fields or list(rows[0])
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


ESPCN = {"_target_": "srlab.models.build_model", "name": "espcn", "scale": 2, "activation": "tanh", "color": "y"}
FSRCNN_RGB = {"_target_": "srlab.models.build_model", "name": "fsrcnn", "scale": 2, "activation": "prelu", "color": "rgb"}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ckpt")
    return {"espcn": fit_checkpoint(root / "espcn" / "checkpoints" / "best.ckpt", ESPCN, seed=1),
            "fsrcnn": fit_checkpoint(root / "fsrcnn" / "checkpoints" / "best.ckpt", FSRCNN_RGB, seed=2)}


def metrics_json(label: str, psnr: float, tc: float, tg: float, ckpt: Path | None, arch: str | None = None) -> dict:
    sets = {"Set5": {"psnr": psnr + 0.5, "ssim": 0.9, "images": 5}, "Set14": {"psnr": psnr - 0.5, "ssim": 0.8, "images": 14}}
    return {"model": label, "architecture": arch or label.split("_")[0], "scale": 2, "protocol": "y",
            "checkpoint": str(ckpt) if ckpt else None, "sets": sets, "psnr": psnr, "ssim": 0.85,
            "time_color_s": tc, "time_gray_s": tg, "time_color_s_per_mp": tc * 4, "time_gray_s_per_mp": tg * 4,
            "params": 1000, "macs_per_mp": 1e9, "peak_memory_mb": 10.0, "threads": 2, "device": "cpu",
            "color": "y", "net": None}


def write_results(folder: Path, metrics: list[dict]) -> Path:
    """What evaluate.py writes: results/<label>/metrics.json and results/results.csv."""
    rows = []
    for m in metrics:
        name = f"bicubic_x{m['scale']}" if m["model"] == "bicubic" else m["model"]  # as evaluate.py names them
        name += "_rgb" if m["protocol"] != "y" else ""
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / "metrics.json").write_text(json.dumps(m, indent=2))
        row = {"model": m["model"], "architecture": m["architecture"], "scale": m["scale"], "protocol": m["protocol"],
               "psnr": m["psnr"], "ssim": m["ssim"], "time_color": m["time_color_s"], "time_gray": m["time_gray_s"],
               "params": m["params"], "macs_per_mp": m["macs_per_mp"], "checkpoint": m["checkpoint"] or ""}
        for s, v in m["sets"].items():
            row[f"psnr_{s}"], row[f"ssim_{s}"] = v["psnr"], v["ssim"]
        rows.append(row)
    write_csv(folder / "results.csv", rows)
    return folder


@pytest.fixture
def results_dir(tmp_path, checkpoints) -> Path:
    return write_results(tmp_path / "results", [
        metrics_json("bicubic", 30.0, 0.002, 0.001, None, arch="bicubic"),
        metrics_json("espcn_x2_adam_tanh_none", 32.0, 0.05, 0.02, checkpoints["espcn"]),
        metrics_json("fsrcnn_x2_adam_prelu_none", 31.0, 0.08, 0.03, checkpoints["fsrcnn"]),
    ])


# ------------------------------------------------------------------------------------------ the rule


def test_rank_points_best_gets_n_worst_one_ties_share_the_average():
    assert rank_points([3.0, 1.0, 2.0], higher_is_better=True) == [3, 1, 2]
    assert rank_points([3.0, 1.0, 2.0], higher_is_better=False) == [1, 3, 2]
    assert rank_points([5.0, 5.0, 1.0, 0.0], higher_is_better=True) == [3.5, 3.5, 2, 1]
    assert rank_points([2.0, 2.0, 2.0], higher_is_better=False) == [2, 2, 2]
    assert rank_points([7.0], higher_is_better=True) == [1]


def test_rule_on_a_hand_checked_example():
    ranking = rank_models(TABLE, CRITERIA)
    assert [e.model for e in ranking.ranked] == ["B", "A", "C", "D"]
    for e in ranking.ranked:
        assert e.points == EXPECTED_POINTS[e.model], e.model
        assert e.score == pytest.approx(EXPECTED_SCORES[e.model])
        assert e.expert == 1
    assert [e.rank for e in ranking.ranked] == [1, 2, 3, 4]
    assert ranking.winner.model == "B"
    # bicubic: shown for reference, not ranked (else the points above would be out of 5)
    assert [e.model for e in ranking.reference] == ["bicubic"]
    assert ranking.reference[0].score is None


def test_include_bicubic_ranks_it_out_of_n_plus_one():
    ranking = rank_models(TABLE, CRITERIA, include_bicubic=True)
    bic = next(e for e in ranking.ranked if e.model == "bicubic")
    assert bic.points == {"psnr": 1.0, "time_color": 5.0, "time_gray": 5.0}
    assert next(e for e in ranking.ranked if e.model == "A").points["psnr"] == 5.0
    assert not ranking.reference


def test_expert_coefficients_change_the_winner():
    expert = {"A": 10, "B": 2, "C": 5, "D": 3}
    ranking = rank_models(TABLE, CRITERIA, expert=expert)
    scores = {e.model: e.score for e in ranking.ranked}
    assert scores == pytest.approx({m: EXPECTED_SCORES[m] * k for m, k in expert.items()})
    assert [e.model for e in ranking.ranked] == ["A", "C", "B", "D"]  # 27.0, 13.25, 5.8, 5.25
    assert ranking.expert_given


def test_custom_weights_and_criteria():
    criteria = parse_criteria({"psnr": {"weight": 1.0, "higher_is_better": True}})
    assert rank_models(TABLE, criteria).winner.model == "A"


# -------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("expert, message", [
    ({"A": 10, "B": 2, "C": 5, "D": 3, "E": 4}, "unknown model"),
    ({"A": 10, "B": 2, "C": 5, "D": 3, "bicubic": 4}, "include_bicubic"),
    ({"A": 10, "B": 10, "C": 5, "D": 3}, "used once: 10 given to A, B"),
    ({"A": 11, "B": 2, "C": 5, "D": 3}, "outside 2..10"),
    ({"A": 1, "B": 2, "C": 5, "D": 3}, "outside 2..10"),
    ({"A": 2.5, "B": 2, "C": 5, "D": 3}, "must be an integer"),
    ({"A": True, "B": 2, "C": 5, "D": 3}, "must be an integer"),
    ({"A": 10, "B": 2, "C": 5}, "no expert coefficient for model(s) ['D']"),
])
def test_bad_expert_coefficients_are_errors(expert, message):
    with pytest.raises(SelectionError) as err:
        rank_models(TABLE, CRITERIA, expert=expert)
    assert message in str(err.value)


def test_expert_file_errors(tmp_path):
    dup_key = tmp_path / "dup.yaml"
    dup_key.write_text("A: 10\nA: 9\n")
    with pytest.raises(SelectionError, match="not a YAML mapping"):
        load_expert(dup_key)
    with pytest.raises(SelectionError, match="no such file"):
        load_expert(tmp_path / "missing.yaml")
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- 1\n- 2\n")
    with pytest.raises(SelectionError, match="mapping"):
        load_expert(not_mapping)
    good = write_expert(tmp_path / "expert.yaml", {"A": 10, "B": 2, "C": 5, "D": 3}, models="ABCD")
    assert load_expert(good) == {"A": 10, "B": 2, "C": 5, "D": 3}
    with pytest.raises(SelectionError, match="outside"):
        write_expert(tmp_path / "bad.yaml", {"A": 12}, models="A")


def test_missing_criterion_column_is_an_error():
    rows = [{k: v for k, v in r.items() if k != "time_gray"} for r in TABLE]
    with pytest.raises(SelectionError, match=r"criterion column\(s\) \['time_gray'\] not found"):
        rank_models(rows, CRITERIA)


def test_empty_or_unusable_tables_are_errors(tmp_path):
    with pytest.raises(SelectionError, match="empty table"):
        rank_models([], CRITERIA)
    with pytest.raises(SelectionError, match="only the bicubic baseline"):
        rank_models([TABLE[-1]], CRITERIA)
    header_only = tmp_path / "header.csv"
    header_only.write_text("model,psnr,time_color,time_gray\n")
    with pytest.raises(SelectionError, match="empty table"):
        load_table(header_only)
    blank = tmp_path / "blank.csv"
    blank.write_text("")
    with pytest.raises(SelectionError, match="empty file"):
        load_table(blank)
    with pytest.raises(SelectionError, match="no usable 'time_color' value"):
        rank_models([{**TABLE[0], "time_color": ""}, TABLE[1]], CRITERIA)
    with pytest.raises(SelectionError, match="appears twice"):
        rank_models([TABLE[0], TABLE[0]], CRITERIA)
    with pytest.raises(SelectionError, match="no results at"):
        load_results(tmp_path / "nowhere" / "results.csv")


@pytest.mark.parametrize("criteria, message", [
    ({}, "empty"),
    ({"psnr": {"weight": 0.5}}, "required"),
    ({"psnr": {"weight": -1, "higher_is_better": True}}, ">= 0"),
    ({"psnr": {"weight": 0.5, "higher_is_better": "yes"}}, "true or false"),
    ({"psnr": {"weight": 0.5, "higher_is_better": True, "wieght": 1}}, "unknown key"),
    ({"psnr": {"weight": 0, "higher_is_better": True}}, "all criterion weights are 0"),
])
def test_bad_criteria_are_errors(criteria, message):
    with pytest.raises(SelectionError, match=message):
        parse_criteria(criteria)


# -------------------------------------------------------------------------------------------- inputs


def test_plain_csv_table_input(tmp_path, capsys):
    table = write_csv(tmp_path / "other" / "table.csv", TABLE)
    out = run({"table": str(table), "criteria": DEFAULT_CRITERIA, "deploy_dir": str(tmp_path / "deploy")})
    printed = capsys.readouterr().out
    assert "Expert coefficients: none given" in printed and "every model's coefficient is 1" in printed
    assert "(reference, not ranked)" in printed and "Winner: B" in printed
    assert "no checkpoint" in printed and "nothing to export" in printed
    assert out["deploy_dir"] is None and not (tmp_path / "deploy").exists()
    assert out["ranking_csv"] == tmp_path / "other" / "ranking.csv"  # beside the table read
    with open(out["ranking_csv"]) as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["B", "A", "C", "D", "bicubic"]
    assert float(rows[0]["score"]) == pytest.approx(2.9)
    assert float(rows[0]["time_color_points"]) == 3.5 and rows[0]["expert"] == "1"
    assert rows[-1]["score"] == "" and rows[-1]["note"] == "reference, not ranked"


def test_expert_file_through_run(tmp_path, capsys):
    table = write_csv(tmp_path / "table.csv", TABLE)
    expert = write_expert(tmp_path / "expert.yaml", {"A": 10, "B": 2, "C": 5, "D": 3})
    out = run({"table": str(table), "criteria": DEFAULT_CRITERIA, "expert": str(expert),
               "output": str(tmp_path / "out"), "deploy_dir": None})
    assert out["ranking"].winner.model == "A"
    assert (tmp_path / "out" / "ranking.csv").is_file()
    assert "A=10" in capsys.readouterr().out


def test_evaluate_results_input_csv_and_metrics_dir(results_dir, tmp_path):
    import shutil

    from_dir, base_dir = load_results(results_dir)
    from_csv, base_csv = load_results(results_dir / "results.csv")
    only_json = shutil.copytree(results_dir, tmp_path / "only_json")
    (only_json / "results.csv").unlink()
    from_json, base_json = load_results(only_json)
    assert base_dir == base_csv == results_dir and base_json == only_json
    for rows in (from_dir, from_csv, from_json):
        by_model = {r["model"]: r for r in rows}
        assert set(by_model) == {"bicubic", "espcn_x2_adam_tanh_none", "fsrcnn_x2_adam_prelu_none"}
        espcn = by_model["espcn_x2_adam_tanh_none"]
        assert float(espcn["time_color"]) == 0.05 and float(espcn["time_gray"]) == 0.02
        assert espcn["metrics"]["sets"]["Set5"]["psnr"] == 32.5  # full metrics.json attached
        ranking = rank_models(rows, CRITERIA)
        assert ranking.winner.model == "espcn_x2_adam_tanh_none"  # best in all three
        assert [e.model for e in ranking.reference] == ["bicubic"]


def test_mixed_scales_or_protocols_must_be_chosen(results_dir, checkpoints):
    # evaluate.py keeps every metrics.json it wrote (other scales, protocol rgb as <label>_rgb)
    (results_dir / "results.csv").unlink()
    write_results(results_dir, [{**metrics_json("espcn_x2_adam_tanh_none", 20.0, 0.05, 0.02, checkpoints["espcn"]),
                                 "protocol": "rgb"}])
    (results_dir / "results.csv").unlink()
    with pytest.raises(SelectionError, match=r"mix scales/protocols \(x2 rgb, x2 y\)"):
        load_results(results_dir)
    rows, _ = load_results(results_dir, protocol="y")
    assert {r["protocol"] for r in rows} == {"y"} and len(rows) == 3
    rows, _ = load_results(results_dir, scale=2, protocol="rgb")
    assert [r["psnr"] for r in rows] == [20.0]
    with pytest.raises(SelectionError, match="no results"):
        load_results(results_dir, scale=4)


def test_ranking_by_another_results_column(results_dir):
    rows, _ = load_results(results_dir)
    ranking = rank_models(rows, parse_criteria({"psnr_Set14": {"weight": 1, "higher_is_better": True}}),
                          include_bicubic=True)
    assert ranking.winner.model == "espcn_x2_adam_tanh_none" and ranking.ranked[-1].model == "bicubic"


# -------------------------------------------------------------------------------------------- deploy


@pytest.mark.parametrize("name", ["espcn", "fsrcnn"])
def test_deploy_round_trip_equals_the_checkpoint_network(tmp_path, checkpoints, name):
    from srlab.checkpoint import load_network
    from srlab.sr import super_resolve

    ckpt = checkpoints[name]
    metrics = {"model": name, "protocol": "y", "psnr": 30.0, "score": 3.0}
    out = export_deploy(ckpt, metrics, tmp_path / "deploy" / "best")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "metrics.json", "weights.safetensors"]
    net, config = load_deployed(out)
    ref, _ = load_network(ckpt)
    assert config["net"]["_target_"] == "srlab.models.build_model"
    assert config["architecture"] == name and config["scale"] == 2 and config["protocol"] == "y"
    assert config["color"] == ref.color and config["in_channels"] == ref.in_channels
    assert config["params"] == sum(p.numel() for p in ref.parameters())
    assert json.loads((out / "metrics.json").read_text()) == metrics
    x = torch.rand(2, 3, 12, 10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(super_resolve(net, x), super_resolve(ref, x), atol=1e-6, rtol=0)
        raw = torch.rand(1, ref.in_channels, 9, 7)
        assert torch.equal(net(raw), ref(raw))
    assert not net.training


def test_deploy_replaces_atomically_and_rejects_tampering(tmp_path, checkpoints):
    out = tmp_path / "best"
    export_deploy(checkpoints["espcn"], {"model": "first"}, out)
    export_deploy(checkpoints["fsrcnn"], {"model": "second"}, out)
    assert json.loads((out / "metrics.json").read_text())["model"] == "second"
    assert load_deployed(out / "config.json")[1]["architecture"] == "fsrcnn"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]  # no temporary or old siblings left

    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "net": {**config["net"], "_target_": "os.system"}}))
    with pytest.raises(DeployError, match="refusing"):
        load_deployed(out)
    (out / "config.json").write_text(json.dumps(config))
    with open(out / "weights.safetensors", "r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(b"\0\0\0\1")
    with pytest.raises(DeployError, match="sha256"):
        load_deployed(out)
    with pytest.raises(DeployError, match="no config.json"):
        load_deployed(tmp_path)


def test_load_deployed_needs_neither_pickle_nor_lightning(tmp_path, checkpoints):
    out = export_deploy(checkpoints["espcn"], {"model": "espcn"}, tmp_path / "best")
    code = ("import sys, torch\n"
            "torch.load = None  # no pickle path may be taken\n"
            "from srlab.deploy import load_deployed\n"
            f"net, cfg = load_deployed({str(out)!r})\n"
            "print(net(torch.rand(1, 1, 4, 4)).shape)\n"
            "assert not [m for m in sys.modules if 'lightning' in m], 'lightning imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "torch.Size([1, 1, 8, 8])" in proc.stdout


# --------------------------------------------------------------------------------------- end to end


def _select_best(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PROJECT_ROOT", None)
    return subprocess.run([sys.executable, str(ROOT / "select_best.py"), *overrides], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180, check=False)


def test_select_best_end_to_end(tmp_path, results_dir, checkpoints):
    expert = write_expert(tmp_path / "expert.yaml", {"espcn_x2_adam_tanh_none": 2, "fsrcnn_x2_adam_prelu_none": 9})
    proc = _select_best(f"select.results={results_dir}", f"select.expert={expert}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Winner: fsrcnn_x2_adam_prelu_none" in proc.stdout  # 9 x 1.0 beats 2 x 2.0
    assert "(reference, not ranked)" in proc.stdout
    with open(results_dir / "ranking.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["fsrcnn_x2_adam_prelu_none", "espcn_x2_adam_tanh_none", "bicubic"]
    best = tmp_path / "deploy" / "best"  # the default deploy_dir, relative to the working directory
    assert sorted(p.name for p in best.iterdir()) == ["config.json", "metrics.json", "weights.safetensors"]
    metrics = json.loads((best / "metrics.json").read_text())
    assert metrics["model"] == "fsrcnn_x2_adam_prelu_none" and metrics["score"] == pytest.approx(9.0)
    assert metrics["sets"]["Set5"]["psnr"] == 31.5 and metrics["selection"]["expert"] == 9
    _, config = load_deployed(best)
    assert config["architecture"] == "fsrcnn" and config["color"] == "rgb"


def test_select_best_reports_bad_input_clearly(tmp_path, results_dir):
    expert = write_expert(tmp_path / "expert.yaml", {"espcn_x2_adam_tanh_none": 2, "fsrcnn_x2_adam_prelu_none": 2})
    proc = _select_best(f"select.results={results_dir}", f"select.expert={expert}", cwd=tmp_path)
    assert proc.returncode != 0
    assert "select_best: error: each expert coefficient may be used once" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "deploy").exists()


def test_pruning_masks_left_in_a_state_dict_are_folded():
    from srlab.deploy import _fold_pruning

    w, m = torch.randn(4, 3), (torch.rand(4, 3) > 0.5).float()
    folded = _fold_pruning({"conv.weight_orig": w, "conv.weight_mask": m, "conv.bias": torch.ones(4)})
    assert set(folded) == {"conv.weight", "conv.bias"} and torch.equal(folded["conv.weight"], w * m)
