"""The networks that ship in srlab/weights/ (each folder found there is tested: adding one adds its tests),
the rule that picks the default among them, and the exporter that makes them (python -m srlab.weights)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import srlab.inference
from srlab.deploy import CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE, export_deploy
from srlab.inference import SHIPPED_WEIGHTS, Upscaler, default_model, list_deployed, shipped_default
from srlab.metrics import psnr_y
from srlab.resize import bicubic_downscale, bicubic_upscale

from _train_utils import fit_checkpoint, make_images

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in SHIPPED_WEIGHTS.iterdir() if (p / CONFIG_FILE).is_file())
SETS = ["Set5", "Set14", "BSD100", "Urban100"]
MAX_WEIGHTS_BYTES = 250 * 1024


def as_tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a)).permute(2, 0, 1)[None].double() / 255


def unseen_photos() -> dict[str, np.ndarray]:
    """HR photos none of the networks trained on (sr291 = T91 + BSD200), sides a multiple of 4."""
    import skimage.data

    return {"chelsea": np.ascontiguousarray(skimage.data.chelsea()[:300, :448]),
            "astronaut": np.ascontiguousarray(skimage.data.astronaut()[:256, 128:384])}


def metrics(folder: Path) -> dict:
    return json.loads((folder / METRICS_FILE).read_text())


# -- what ships ----------------------------------------------------------------------------------------


def test_networks_ship() -> None:
    assert "espcn_x4" in [p.name for p in SHIPPED]


def test_package_data_covers_every_shipped_file() -> None:
    """pyproject.toml's package-data globs (setuptools reads them relative to srlab/) take in every file
    under srlab/weights/ that is not Python."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["srlab"]
    package = ROOT / "srlab"
    packaged = {f for pattern in globs for f in package.glob(pattern)}
    files = {f for f in SHIPPED_WEIGHTS.rglob("*") if f.is_file() and f.suffix not in (".py", ".pyc")}
    assert files and files <= packaged, sorted(map(str, files - packaged))


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_shipped_folder_is_small_and_its_metrics_comparable(folder: Path) -> None:
    """Small fp32 safetensors, and metrics.json from the papers' x4 protocol on the four full sets, so
    that the mean PSNR that picks the default compares like with like."""
    assert (folder / WEIGHTS_FILE).stat().st_size < MAX_WEIGHTS_BYTES
    config, m = json.loads((folder / CONFIG_FILE).read_text()), metrics(folder)
    assert folder.name == f"{config['architecture']}_x{config['scale']}"
    assert config["scale"] == m["scale"] == 4 and m["protocol"] == "y"
    assert list(m["sets"]) == SETS
    assert m["psnr"] == pytest.approx(np.mean([m["sets"][s]["psnr"] for s in SETS]))
    if "bicubic" in m:  # exported by python -m srlab.weights
        assert list(m["bicubic"]["sets"]) == SETS and m["psnr"] > m["bicubic"]["psnr"]
        assert m["trained_with"] and m["training"]["steps"] > 0 and m["training"]["minutes"] > 0


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda p: p.name)
def test_shipped_network_upscales_through_the_cli_and_beats_bicubic(folder: Path, tmp_path: Path) -> None:
    """Loads (by path and by its name), upscales a photo through ``python -m srlab.upscale --model <name>``,
    and beats bicubic on photos it never saw."""
    up = Upscaler.load(folder)
    assert up.scale == 4 and up.net is not None and up.metrics["psnr"] == metrics(folder)["psnr"]
    assert Upscaler.load(folder.name).path == folder

    photos = unseen_photos()
    lr = {name: bicubic_downscale(hr, 4) for name, hr in photos.items()}
    Image.fromarray(lr["chelsea"]).save(tmp_path / "chelsea.png")
    proc = subprocess.run([sys.executable, "-m", "srlab.upscale", str(tmp_path / "chelsea.png"), "-o",
                           str(tmp_path / "sr.png"), "--model", folder.name, "--threads", "1"],
                          check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    sr = {"chelsea": np.asarray(Image.open(tmp_path / "sr.png").convert("RGB")),
          "astronaut": np.asarray(up.upscale(Image.fromarray(lr["astronaut"])))}
    for name, hr in photos.items():
        assert sr[name].shape == hr.shape
        gain = (psnr_y(as_tensor(sr[name]), as_tensor(hr), 4).item()
                - psnr_y(as_tensor(bicubic_upscale(lr[name], 4)), as_tensor(hr), 4).item())
        assert gain > 0.2, (name, gain)


def test_default_is_the_best_mean_psnr_and_the_cli_uses_it(tmp_path: Path) -> None:
    best = max(SHIPPED, key=lambda p: metrics(p)["psnr"])
    assert shipped_default() == best == default_model(tmp_path / "no-deploy")
    shipped = [e for e in list_deployed(tmp_path / "no-deploy") if e["shipped"]]
    assert [e["name"] for e in shipped] == [f"{best.name} (shipped)"] + [f"{p.name} (shipped)" for p in SHIPPED if p != best]
    assert [e["default"] for e in shipped] == [True] + [False] * (len(SHIPPED) - 1)

    Image.fromarray(bicubic_downscale(unseen_photos()["astronaut"], 4)).save(tmp_path / "lr.png")
    proc = subprocess.run([sys.executable, "-m", "srlab.upscale", str(tmp_path / "lr.png"), "-o", str(tmp_path / "sr.png"),
                           "--threads", "1"], check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"model: {best}" in proc.stderr  # says which model it used
    assert Image.open(tmp_path / "sr.png").size == (256, 256)


# -- the default rule, on folders made here ---------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {s: fit_checkpoint(root / f"espcn_x{s}.ckpt", {"_target_": "srlab.models.build_model", "name": "espcn", "scale": s})
            for s in (2, 4)}


def test_default_rule_highest_mean_psnr_at_x4_ties_by_name(tiny_ckpts, tmp_path: Path, monkeypatch) -> None:
    shipped = tmp_path / "weights"
    monkeypatch.setattr(srlab.inference, "SHIPPED_WEIGHTS", shipped)
    assert shipped_default() is None and default_model(tmp_path / "deploy") == tmp_path / "deploy" / "best"
    export_deploy(tiny_ckpts[4], {"model": "a", "psnr": 26.0}, shipped / "a_x4")
    export_deploy(tiny_ckpts[4], {"model": "c", "psnr": 26.5}, shipped / "c_x4")
    export_deploy(tiny_ckpts[4], {"model": "d"}, shipped / "d_x4")  # no psnr: never the default
    export_deploy(tiny_ckpts[2], {"model": "b", "psnr": 33.0}, shipped / "b_x2")  # x2 PSNRs are not comparable
    assert shipped_default() == shipped / "c_x4" == default_model(tmp_path / "deploy")
    assert [e["name"] for e in list_deployed(tmp_path / "deploy")] == [
        "c_x4 (shipped)", "a_x4 (shipped)", "b_x2 (shipped)", "d_x4 (shipped)"]
    export_deploy(tiny_ckpts[4], {"model": "a", "psnr": 26.5}, shipped / "a_x4")
    assert shipped_default() == shipped / "a_x4"  # a tie goes to the first name
    assert Upscaler.load("b_x2").scale == 2
    with pytest.raises(FileNotFoundError, match="a_x4, b_x2, c_x4, d_x4"):
        Upscaler.load("e_x4")
    export_deploy(tiny_ckpts[4], {"model": "best"}, tmp_path / "deploy" / "best")
    assert default_model(tmp_path / "deploy") == tmp_path / "deploy" / "best"


# -- the exporter ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A run folder as train.py leaves it (checkpoint, run.json, .hydra/overrides.yaml) and evaluate.py's
    real results folder for its checkpoint (a tiny test set, no timing)."""
    from hydra import compose, initialize_config_dir

    from srlab.evaluation import run as evaluate

    root = tmp_path_factory.mktemp("ship")
    run_dir = root / "outputs" / "budget_1m" / "fsrcnn_x4_adam_prelu_none"
    ckpt = fit_checkpoint(run_dir / "checkpoints" / "final.ckpt", {"_target_": "srlab.models.build_model",
                                                                    "name": "fsrcnn", "scale": 4})
    (run_dir / "run.json").write_text(json.dumps({
        "run_name": "fsrcnn_x4_adam_prelu_none", "model": "fsrcnn", "scale": 4, "optimizer": "adam",
        "activation": "prelu", "data": "sr291", "train_time_s": 61.5, "steps": 2, "epochs": 1,
        "finished": "2026-12-04T23:00:00"}))
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "overrides.yaml").write_text("- experiment=budget\n- model=fsrcnn\n- budget_minutes=1\n")
    tiny = make_images(root / "tinyset", 2, seed=7, size=48)
    results = root / "results" / "budget_1m" / "fsrcnn"
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"ckpt_path={ckpt}", f"eval.sets=[{tiny}]", f"eval.output={results}",
                                             "eval.speed=false", f"paths.data_dir={root / 'data'}",
                                             f"paths.cache_dir={root / 'cache'}", "threads=1"])
    evaluate(cfg)
    return {"ckpt": ckpt, "results": results, "root": root}


def test_exporter_writes_a_shipped_folder(evaluated_run, tmp_path: Path, capsys) -> None:
    from srlab.weights.export import main

    out = tmp_path / "weights" / "fsrcnn_x4"
    command = "BUDGET=1 MODELS=fsrcnn bash benchmarks/quality_per_minute.sh"
    assert main(["--ckpt", str(evaluated_run["ckpt"]), "--results", str(evaluated_run["results"]),
                 "--command", command, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [CONFIG_FILE, METRICS_FILE, WEIGHTS_FILE]
    m = metrics(out)
    record = json.loads((evaluated_run["results"] / "fsrcnn_x4_adam_prelu_none" / METRICS_FILE).read_text())
    assert m["model"] == "fsrcnn_x4_adam_prelu_none" and m["architecture"] == "fsrcnn" and m["scale"] == 4
    assert m["protocol"] == "y" and m["protocol_description"] == record["protocol_description"]
    assert list(m["sets"]) == ["tinyset"]
    assert m["sets"]["tinyset"]["psnr"] == pytest.approx(record["sets"]["tinyset"]["psnr"])
    assert m["psnr"] == pytest.approx(record["psnr"]) and m["ssim"] == pytest.approx(record["ssim"])
    bicubic = json.loads((evaluated_run["results"] / "bicubic_x4" / METRICS_FILE).read_text())
    assert m["bicubic"]["psnr"] == pytest.approx(bicubic["psnr"]) and list(m["bicubic"]["sets"]) == ["tinyset"]
    assert m["params"] == 12809 and m["time_color_s"] is None
    assert m["trained_with"] == command
    assert m["training"] == {"run_name": "fsrcnn_x4_adam_prelu_none", "data": "sr291", "optimizer": "adam",
                             "activation": "prelu", "steps": 2, "epochs": 1, "minutes": 1.0, "train_time_s": 61.5,
                             "finished": "2026-12-04T23:00:00",
                             "train_overrides": ["experiment=budget", "model=fsrcnn", "budget_minutes=1"]}
    up = Upscaler.load(out)
    assert up.name == "fsrcnn_x4_adam_prelu_none" and up.scale == 4 and up.metrics == m
    assert (out / WEIGHTS_FILE).stat().st_size < MAX_WEIGHTS_BYTES
    assert all(f.stat().st_mode & 0o444 == 0o444 for f in out.iterdir())  # readable by all (safetensors writes 0600)
    assert f"| `fsrcnn_x4` | FSRCNN x4, 12,809 params | `{command}` (2 steps, 1.0 min, 2026-12-04) |" in printed


def test_exporter_default_folder_and_moved_results(evaluated_run, tmp_path: Path, monkeypatch) -> None:
    """Without --out it writes srlab/weights/<architecture>_x<scale>; a results table whose checkpoint
    path no longer exists still matches by file name and run name."""
    import shutil

    from srlab.weights import export

    monkeypatch.setattr(export, "SHIPPED_WEIGHTS", tmp_path / "weights")
    moved = tmp_path / "moved"
    shutil.copytree(evaluated_run["root"] / "outputs", moved / "outputs")
    ckpt = moved / evaluated_run["ckpt"].relative_to(evaluated_run["root"])
    assert export.main(["--ckpt", str(ckpt), "--results", str(evaluated_run["results"]), "--command", "x"]) == 0
    assert metrics(tmp_path / "weights" / "fsrcnn_x4")["checkpoint"] == str(ckpt)


def test_exporter_refuses_what_does_not_belong_together(evaluated_run, tmp_path: Path, capsys) -> None:
    from srlab.weights.export import main

    ckpt, results = evaluated_run["ckpt"], evaluated_run["results"]
    other = fit_checkpoint(tmp_path / "run" / "checkpoints" / "final.ckpt",
                           {"_target_": "srlab.models.build_model", "name": "espcn", "scale": 4})

    def refused(ckpt: Path, results: Path) -> str:
        assert main(["--ckpt", str(ckpt), "--results", str(results), "--command", "x", "--out", str(tmp_path / "out")]) == 2
        return capsys.readouterr().err

    assert "no such checkpoint" in refused(tmp_path / "nothing.ckpt", results)
    assert "results.csv: not found" in refused(ckpt, tmp_path)
    assert "cannot read the training record" in refused(other, results)  # no run.json beside it
    (tmp_path / "run" / "run.json").write_text(json.dumps({"run_name": "espcn_x4", "steps": 2, "train_time_s": 6}))
    assert "no row of the results table is this checkpoint" in refused(other, results)
    assert not (tmp_path / "out").exists()


def test_python_m_srlab_weights_help() -> None:
    proc = subprocess.run([sys.executable, "-m", "srlab.weights", "--help"], check=False, capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and "--ckpt" in proc.stdout and "--results" in proc.stdout
