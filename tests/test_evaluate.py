"""``evaluate.py`` / :mod:`srlab.evaluation`: the published bicubic baselines on the four benchmark sets,
end-to-end runs on real (tiny) checkpoints and sweeps, the metrics.json / results.csv schema, bad input."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _train_utils import (
    ROOT,
    base_overrides,
    hermetic_env,
    make_dataset,
    make_images,
    run_train,
)
from conftest import SHARED_DATASETS
from PIL import Image

from srlab import metrics
from srlab.checkpoint import CheckpointError, load_network
from srlab.evaluation import (
    BICUBIC,
    DEFAULT_SETS,
    EvaluationError,
    ModelSpec,
    best_checkpoint,
    collect_models,
    evaluate_set,
    load_model,
    load_set,
    run,
    upscale,
)
from srlab.color import rgb_to_y
from srlab.resize import bicubic_upscale
from srlab.sr import replace_y

EVALUATE_PY = ROOT / "evaluate.py"

# Published bicubic baselines (Y of BT.601, border = scale), e.g. VDSR (Kim et al. 2016) Table 2.
PUBLISHED_PSNR = {
    2: {"Set5": 33.66, "Set14": 30.24, "BSD100": 29.56, "Urban100": 26.88},
    3: {"Set5": 30.39, "Set14": 27.55, "BSD100": 27.21, "Urban100": 24.46},
    4: {"Set5": 28.42, "Set14": 26.00, "BSD100": 25.96, "Urban100": 23.14},
}
PUBLISHED_SSIM_X4 = {"Set5": 0.8104, "Set14": 0.7027, "BSD100": 0.6675, "Urban100": 0.6577}

METRICS_KEYS = {"model", "architecture", "scale", "protocol", "checkpoint", "sets", "psnr", "ssim", "time_color_s",
                "time_gray_s", "time_color_s_per_mp", "time_gray_s_per_mp", "params", "macs_per_mp",
                "peak_memory_mb", "threads", "device", "color", "net"}
CSV_COLUMNS = ["model", "architecture", "scale", "protocol", "psnr", "ssim", "time_color", "time_gray", "params",
               "macs_per_mp", "checkpoint"]


# ----------------------------------------------------------------------------------- benchmark baselines


@pytest.fixture(scope="module")
def benchmark_sets():
    """The four test sets, decoded once for all scales."""
    if not all((SHARED_DATASETS / name).is_dir() for name in DEFAULT_SETS):
        pytest.skip(f"benchmark images not found at {SHARED_DATASETS}")
    return [load_set(name, SHARED_DATASETS, download=False) for name in DEFAULT_SETS]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_reproduces_published_baselines(benchmark_sets, scale):
    bicubic = load_model(ModelSpec(BICUBIC), scale)
    measured = {}
    for test_set in benchmark_sets:
        result = evaluate_set(bicubic, test_set, scale, "y", ssim=scale == 4)
        measured[test_set.name] = result
        assert result["images"] == {"Set5": 5, "Set14": 14, "BSD100": 100, "Urban100": 100}[test_set.name]
    psnr = {name: round(r["psnr"], 3) for name, r in measured.items()}
    for name, published in PUBLISHED_PSNR[scale].items():
        assert psnr[name] == pytest.approx(published, abs=0.03), f"x{scale} {name}: {psnr} vs {PUBLISHED_PSNR[scale]}"
    if scale == 4:  # torchmetrics' SSIM (reflect-padded window) reads up to ~0.0025 above MATLAB's tables
        for name, published in PUBLISHED_SSIM_X4.items():
            assert measured[name]["ssim"] == pytest.approx(published, abs=0.004)


def test_single_channel_files_not_equal_channels_decide_intensity(benchmark_sets):
    set14 = next(s for s in benchmark_sets if s.name == "Set14")
    flags = {img.name: img.gray for img in set14.images}
    assert flags["bridge.png"] is True  # a single-channel PNG: measured on its intensity
    assert flags["man.png"] is False  # an RGB PNG with R = G = B: measured on Y, as MATLAB's scripts do
    man = next(img for img in set14.images if img.name == "man.png")
    assert np.array_equal(man.rgb[..., 0], man.rgb[..., 2])
    urban = next(s for s in benchmark_sets if s.name == "Urban100")
    assert not any(img.gray for img in urban.images)


# ----------------------------------------------------------------------------------- tiny trained runs


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A sweep folder with two real (tiny) training runs, a tiny test set and two small photos."""
    root = tmp_path_factory.mktemp("evaluate")
    make_dataset(root / "data")
    for i, model in enumerate(["espcn", "fsrcnn"]):
        overrides = base_overrides(root / "data", root / "train_work") + [
            f"model={model}", "data.iters_per_epoch=2", "trainer.max_epochs=1", "callbacks.latest.every_n_train_steps=1000"]
        run_train(overrides, root / "sweep" / f"{i}_{model}")
    tiny = make_images(root / "tinyset", 2, seed=7, size=48)
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (48, 40), dtype=np.uint8)).save(tiny / "gray.png")  # a single-channel file
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(root / "color_photo.png")
    Image.fromarray(rng.integers(0, 256, (32, 24), dtype=np.uint8)).save(root / "gray_photo.png")
    return root


def runs(work: Path) -> list[Path]:
    return sorted((work / "sweep").iterdir())


def eval_overrides(work: Path, out: Path) -> list[str]:
    return [f"eval.sets=[{work / 'tinyset'}]", f"eval.output={out}", f"eval.color_photo={work / 'color_photo.png'}",
            f"eval.gray_photo={work / 'gray_photo.png'}", "eval.repeats=1", f"paths.data_dir={work / 'data_dir'}",
            f"paths.cache_dir={work / 'cache'}", "threads=2"]


def compose_eval(overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        return compose("evaluate", overrides=overrides)


def cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EVALUATE_PY), *args], check=False, cwd=ROOT, capture_output=True, text=True,
                          env=hermetic_env(), timeout=300)


def check_schema(record: dict, sets: list[str]) -> None:
    assert METRICS_KEYS <= set(record)
    assert record["protocol"] in metrics.PROTOCOLS and record["color"] in ("y", "rgb")
    assert list(record["sets"]) == sets
    for m in record["sets"].values():
        assert {"psnr", "ssim", "images"} <= set(m) and m["images"] > 0
    assert record["psnr"] == pytest.approx(np.mean([m["psnr"] for m in record["sets"].values()]))
    assert record["ssim"] == pytest.approx(np.mean([m["ssim"] for m in record["sets"].values()]))
    for key in ("time_color_s", "time_gray_s", "time_color_s_per_mp", "time_gray_s_per_mp"):
        assert record[key] > 0
    assert record["threads"] == 2 and record["device"] == "cpu"
    assert record["peak_memory_mb"] is not None and record["peak_memory_mb"] >= 0


def test_cli_evaluates_a_checkpoint(work, tmp_path):
    run_dir = runs(work)[0]
    ckpt = Path(json.loads((run_dir / "run.json").read_text())["best_ckpt"])
    out = tmp_path / "results"
    res = cli([f"ckpt_path={ckpt}", *eval_overrides(work, out)])
    assert res.returncode == 0, res.stderr[-3000:]
    assert "| bicubic |" in res.stdout and "| espcn_x4_adam_tanh_none |" in res.stdout  # the printed table

    bicubic = json.loads((out / "bicubic_x4" / "metrics.json").read_text())
    espcn = json.loads((out / "espcn_x4_adam_tanh_none" / "metrics.json").read_text())
    for record in (bicubic, espcn):
        check_schema(record, ["tinyset"])
    assert bicubic["model"] == "bicubic" and bicubic["checkpoint"] is None and bicubic["net"] is None
    assert bicubic["params"] == 0 and bicubic["macs_per_mp"] is None
    assert espcn["architecture"] == "espcn" and espcn["scale"] == 4 and espcn["protocol"] == "y" and espcn["color"] == "y"
    assert espcn["checkpoint"] == str(ckpt) and espcn["net"]["name"] == "espcn"
    assert espcn["params"] == 24752 and espcn["macs_per_mp"] == pytest.approx(1.54e9, rel=1e-3)
    assert espcn["sets"]["tinyset"]["images"] == 3
    assert espcn["time_color_s_per_mp"] == pytest.approx(espcn["time_color_s"] / (40 * 4 * 30 * 4 / 1e6))

    # The numbers are the paper protocol applied to the network's Y on bicubic colour, image by image.
    net, _ = load_network(ckpt)
    model = load_model(ModelSpec("espcn", ckpt), 4)
    test_set = load_set(work / "tinyset")
    assert [img.gray for img in test_set.images] == [True, False, False]  # gray.png, img0.png, img1.png
    for (img, hr, lr), row in zip(test_set.pairs(4), espcn["sets"]["tinyset"]["per_image"]):
        with torch.inference_mode():
            x = torch.from_numpy(lr.copy()).permute(2, 0, 1)[None].float() / 255
            bicubic = torch.from_numpy(bicubic_upscale(lr, 4)).permute(2, 0, 1)[None].float() / 255
            sr = metrics.quantize(replace_y(bicubic, net(rgb_to_y(x))).clamp(0, 1))
        assert np.array_equal((sr[0].permute(1, 2, 0) * 255).round().byte().numpy(), upscale(model, lr))
        hr_t = torch.from_numpy(hr.copy()).permute(2, 0, 1)[None].double() / 255
        assert row["name"] == img.name
        assert row["psnr"] == pytest.approx(metrics.psnr_y(sr.double(), hr_t, 4, gray=img.gray).item(), abs=1e-9)

    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == CSV_COLUMNS + ["psnr_tinyset", "ssim_tinyset"]
    assert [r["model"] for r in rows] == ["bicubic", "espcn_x4_adam_tanh_none"]
    assert float(rows[1]["psnr"]) == pytest.approx(espcn["psnr"]) and float(rows[1]["time_color"]) == pytest.approx(espcn["time_color_s"])
    md = (out / "results.md").read_text()
    assert "Protocol \"y\"" in md and "| espcn_x4_adam_tanh_none | espcn |" in md


def test_cli_evaluates_every_run_of_a_sweep(work, tmp_path):
    out = tmp_path / "results"
    res = cli([f"run_dir={work / 'sweep'}", *eval_overrides(work, out)])
    assert res.returncode == 0, res.stderr[-3000:]
    labels = [json.loads((r / "run.json").read_text())["run_name"] for r in runs(work)]
    assert labels == ["espcn_x4_adam_tanh_none", "fsrcnn_x4_adam_prelu_none"]
    with open(out / "results.csv", newline="") as f:
        assert [r["model"] for r in csv.DictReader(f)] == ["bicubic", *labels]
    for run_dir, label in zip(runs(work), labels):
        record = json.loads((out / label / "metrics.json").read_text())
        check_schema(record, ["tinyset"])
        assert record["checkpoint"] == json.loads((run_dir / "run.json").read_text())["best_ckpt"]
        assert record["run_dir"] == str(run_dir)


def test_cli_bad_input_is_a_clear_error(work, tmp_path):
    res = cli([f"ckpt_path={work / 'color_photo.png'}", *eval_overrides(work, tmp_path / "r")])
    assert res.returncode == 2
    assert "evaluate.py: error:" in res.stderr and "not a readable PyTorch checkpoint" in res.stderr
    assert "Traceback" not in res.stderr


def test_protocol_rgb_is_labelled_and_model_bicubic_alone(work, tmp_path):
    out = tmp_path / "results"
    y = run(compose_eval(["model=bicubic", "eval.speed=false", *eval_overrides(work, out)]))
    rgb = run(compose_eval(["model=bicubic", "eval.speed=false", "eval.protocol=rgb", *eval_overrides(work, out)]))
    assert [r["model"] for r in y] == [BICUBIC] == [r["model"] for r in rgb]
    assert y[0]["protocol"] == "y" and rgb[0]["protocol"] == "rgb" and "NOT the papers'" in rgb[0]["protocol_description"]
    assert y[0]["psnr"] != pytest.approx(rgb[0]["psnr"])
    assert json.loads((out / "bicubic_x4_rgb" / "metrics.json").read_text())["protocol"] == "rgb"
    assert json.loads((out / "bicubic_x4" / "metrics.json").read_text())["protocol"] == "y"
    assert y[0]["time_color_s"] is None  # eval.speed=false


def test_default_photos_and_scale_2(work, tmp_path):
    """Default speed photos (scikit-image's chelsea and camera) at x2, bicubic only: quick."""
    overrides = [o for o in eval_overrides(work, tmp_path / "r") if not o.startswith(("eval.color_photo", "eval.gray_photo"))]
    [record] = run(compose_eval(["model=bicubic", "scale=2", *overrides]))
    assert record["scale"] == 2 and record["time_color_s"] > 0
    assert record["time_color_s_per_mp"] == pytest.approx(record["time_color_s"] / (451 * 2 * 300 * 2 / 1e6))
    assert record["time_gray_s_per_mp"] == pytest.approx(record["time_gray_s"] / (512 * 2 * 512 * 2 / 1e6))
    assert (work / "cache" / "samples" / "chelsea.png").is_file()
    assert (tmp_path / "r" / "bicubic_x2" / "metrics.json").is_file()


def test_wandb_table_offline(work, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    out = tmp_path / "results"
    run(compose_eval(["model=bicubic", "eval.speed=false", "eval.wandb=true", *eval_overrides(work, out)]))
    assert list((out / "wandb").glob("offline-run-*")), list(out.rglob("*"))


# ----------------------------------------------------------------------------------- finding checkpoints


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_best_checkpoint_fallbacks(tmp_path):
    run_dir = tmp_path / "run"
    ckpts = run_dir / "checkpoints"
    touch(ckpts / "last.ckpt")
    assert best_checkpoint(run_dir) == ckpts / "last.ckpt"
    touch(ckpts / "best-epoch001-psnr22.151.ckpt")
    touch(ckpts / "best-epoch003-psnr9.500.ckpt")
    touch(ckpts / "best-epoch002-psnr24.020-v1.ckpt")
    assert best_checkpoint(run_dir).name == "best-epoch002-psnr24.020-v1.ckpt"  # highest PSNR, not latest name
    record = {"run_name": "r", "best_ckpt": "/elsewhere/moved/checkpoints/best-epoch001-psnr22.151.ckpt"}
    (run_dir / "run.json").write_text(json.dumps(record))  # the run folder was copied from another machine
    assert best_checkpoint(run_dir) == ckpts / "best-epoch001-psnr22.151.ckpt"
    shutil.rmtree(ckpts)
    with pytest.raises(EvaluationError, match="no checkpoint to evaluate"):
        best_checkpoint(run_dir)


def test_bad_inputs(work, tmp_path):
    ckpt = runs(work)[0] / "checkpoints" / "last.ckpt"
    base = eval_overrides(work, tmp_path / "r")
    not_ckpt = tmp_path / "notes.ckpt"
    not_ckpt.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        run(compose_eval([f"ckpt_path={not_ckpt}", *base]))
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        run(compose_eval([f"ckpt_path={tmp_path / 'missing.ckpt'}", *base]))
    with pytest.raises(EvaluationError, match=r"x4 network, but scale=2.*scale=4"):
        run(compose_eval([f"ckpt_path={ckpt}", "scale=2", *base]))
    empty = tmp_path / "empty_set"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(EvaluationError, match="holds no images"):
        run(compose_eval([f"ckpt_path={ckpt}", *base, f"eval.sets=[{empty}]"]))
    with pytest.raises(EvaluationError, match="does not exist"):
        run(compose_eval([f"ckpt_path={ckpt}", *base, f"eval.sets=[{tmp_path / 'nowhere'}]"]))
    with pytest.raises(EvaluationError, match="not a known benchmark"):
        run(compose_eval(["model=bicubic", *base, "eval.sets=[NoSuchSet]"]))
    with pytest.raises(EvaluationError, match="not found"):  # a missing benchmark with downloads off
        run(compose_eval(["model=bicubic", *base, "eval.sets=[Set5]", "eval.download=false"]))
    with pytest.raises(EvaluationError, match="no training runs found"):
        run(compose_eval([f"run_dir={empty}", *base]))
    with pytest.raises(EvaluationError, match="not a directory"):
        run(compose_eval([f"run_dir={tmp_path / 'nowhere'}", *base]))
    with pytest.raises(EvaluationError, match="nothing to evaluate"):
        run(compose_eval(base))
    with pytest.raises(EvaluationError, match="only model=bicubic"):
        run(compose_eval(["model=espcn", *base]))
    with pytest.raises(EvaluationError, match="protocol"):
        run(compose_eval(["model=bicubic", "eval.protocol=lab", *base]))
    assert not (tmp_path / "r").exists()  # every error came before any work or output


def test_labels_are_unique(work):
    run_dir = runs(work)[0]
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    specs = collect_models(4, ckpt_paths=[ckpt, ckpt], run_dir=run_dir)
    assert [s.label for s in specs] == ["bicubic", "espcn_x4_adam_tanh_none", "espcn_x4_adam_tanh_none-2",
                                        "espcn_x4_adam_tanh_none-3"]
    assert [s.label for s in collect_models(4, ckpt_paths=[ckpt], include_bicubic=False)] == ["espcn_x4_adam_tanh_none"]
    lone = work / "lone.ckpt"  # outside a run folder: the network's name and scale
    shutil.copy(ckpt, lone)
    assert collect_models(4, ckpt_paths=[lone], include_bicubic=False)[0].label == "espcn_x4"


def test_peak_memory_sees_a_known_allocation():
    from srlab.evaluation import PeakMemory

    def work():
        a = torch.ones(25_000_000)  # 100 MB of float32, freed on return
        return float(a[-1])

    with PeakMemory(torch.device("cpu")) as peak:
        work()
    assert 90 <= peak.mb <= 140, peak.mb
    assert "RSS" in peak.method or "ru_maxrss" in peak.method
