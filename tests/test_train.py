"""End-to-end training through ``train.py``: every network and scale, sweeps, optimizers and schedulers,
pruning, checkpoint retention, exact resume and fine-tuning. Tiny data (64x64 textures), 8px patches,
a handful of steps; most runs go in-process through Hydra's compose API and ``train.train(cfg)``."""

from __future__ import annotations

import copy
import csv
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from _train_utils import ROOT, base_overrides, compose_cfg, hermetic_env, make_dataset, run_train
from hydra.utils import instantiate
from torch import nn

PSNR_MODELS = ["srcnn", "fsrcnn", "espcn", "vdsr", "edsr_baseline", "edsr", "rdn", "srresnet"]
# Architecture sizes are covered by tests/test_models.py; here the deep nets are shrunk to keep this fast.
TINY = {
    "edsr": ["+model.net.num_blocks=1", "+model.net.num_features=16"],
    "edsr_baseline": ["+model.net.num_blocks=2"],
    "srresnet": ["+model.net.num_blocks=2"],
    "rdn": ["+model.net.num_blocks=2", "+model.net.num_layers=3"],
    "vdsr": ["+model.net.depth=6"],
}
PRUNABLE = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch):
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.delenv("YADISK_TOKEN", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # train() sets the process-wide thread count
    HydraConfig.instance().cfg = None


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    make_dataset(root)
    return root


@pytest.fixture
def base(data, tmp_path) -> list[str]:
    return base_overrides(data, tmp_path)


class Snapshot(pl.Callback):
    """What the trainer holds when training starts (after any checkpoint restore, before step 1)."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.global_step = trainer.global_step
        self.net = {k: v.detach().clone() for k, v in pl_module.net.state_dict().items()}
        self.optimizer = copy.deepcopy(trainer.optimizers[0].state_dict())
        self.schedulers = [copy.deepcopy(c.scheduler.state_dict()) for c in trainer.lr_scheduler_configs]


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def column(rows: list[dict[str, str]], name: str) -> list[float]:
    return [float(r[name]) for r in rows if r.get(name) not in (None, "")]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def net_state(ckpt: dict) -> dict[str, torch.Tensor]:
    return {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


# --------------------------------------------------------------------------------------------------
# every network x every scale


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("model", PSNR_MODELS)
def test_every_network_trains_at_every_scale(model, scale, base, tmp_path):
    run_dir = tmp_path / "run"
    snap = Snapshot()
    out = run_train(base + [f"model={model}", f"scale={scale}"] + TINY.get(model, []), run_dir, [snap])

    record = json.loads((run_dir / "run.json").read_text())
    assert (record["model"], record["scale"], record["steps"], record["epochs"]) == (model, scale, 6, 2)
    assert record["run_name"].startswith(f"{model}_x{scale}_adam_")
    assert record["best_psnr"] is not None and math.isfinite(record["best_psnr"])
    assert record["best_psnr"] == pytest.approx(out["best_psnr"], abs=1e-3)

    ckpt_dir = run_dir / "checkpoints"
    best = sorted(ckpt_dir.glob("best-*.ckpt"))
    assert best and Path(record["best_ckpt"]) in best
    # one last.ckpt, from the `latest` callback (100-step period > 6 steps: written at the end of fit)
    assert {p.name for p in ckpt_dir.iterdir()} - {p.name for p in best} == {"last.ckpt"}
    assert record["last_ckpt"] == str(ckpt_dir / "last.ckpt")
    last = load(ckpt_dir / "last.ckpt")
    assert last["global_step"] == 6
    # the exported weights are the trained ones, and training changed them
    final = {k: v.detach() for k, v in out["module"].net.state_dict().items()}
    assert_same_tensors(net_state(last), final)
    assert any(not torch.equal(snap.net[k], final[k]) for k in final if final[k].is_floating_point())

    rows = read_metrics(run_dir)
    losses, psnrs = column(rows, "train/loss"), column(rows, "val/psnr")
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses)
    assert len(psnrs) == 2 and all(math.isfinite(v) for v in psnrs)
    assert record["best_psnr"] == pytest.approx(max(psnrs), abs=1e-3)


# --------------------------------------------------------------------------------------------------
# CLI sweep


def test_cli_sweep_runs_four_jobs_and_prints_summary(data, tmp_path):
    sweep_dir = tmp_path / "sweep"
    cmd = [sys.executable, str(ROOT / "train.py"), "-m", "model=espcn,fsrcnn", "optimizer=adam,rmsprop",
           *base_overrides(data, tmp_path), "trainer.max_epochs=1", f"hydra.sweep.dir={sweep_dir}"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=hermetic_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]

    records = [json.loads(p.read_text()) for p in sorted(sweep_dir.rglob("run.json"))]
    names = {f"{m}_x4_{o}_{a}_none" for m, a in (("espcn", "tanh"), ("fsrcnn", "prelu")) for o in ("adam", "rmsprop")}
    assert {r["run_name"] for r in records} == names
    assert all(r["steps"] == 3 and math.isfinite(r["best_psnr"]) for r in records)
    assert {r["optimizer"] for r in records} == {"adam", "rmsprop"}
    for r in records:  # one run directory per job, named after the run
        assert Path(r["run_dir"]).parent == sweep_dir and Path(r["run_dir"]).name.endswith(r["run_name"])

    summary = (sweep_dir / "summary.md").read_text()
    table_rows = [line for line in summary.splitlines() if line.startswith("| ") and "run_name" not in line]
    assert len(table_rows) == 4 and all(any(n in row for row in table_rows) for n in names)
    assert "Sweep results" in proc.stdout and all(n in proc.stdout for n in names)
    with open(sweep_dir / "summary.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 4


# --------------------------------------------------------------------------------------------------
# optimizers and schedulers


OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "rmsprop": torch.optim.RMSprop, "adamw": torch.optim.AdamW}
SCHEDULERS = {"step": torch.optim.lr_scheduler.StepLR, "cosine": torch.optim.lr_scheduler.CosineAnnealingLR, "none": None}


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
@pytest.mark.parametrize("scheduler", list(SCHEDULERS))
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_optimizer_and_scheduler_configs_instantiate_and_step(optimizer, scheduler, base, tmp_path):
    cfg = compose_cfg(base + [f"optimizer={optimizer}", f"scheduler={scheduler}", "model=espcn"], tmp_path / "run")
    module = instantiate(cfg.module)
    conf = module.configure_optimizers()
    opt = conf["optimizer"] if isinstance(conf, dict) else conf
    assert type(opt) is OPTIMIZERS[optimizer]
    assert opt.param_groups[0]["lr"] == pytest.approx(cfg.model.lr)

    before = [p.detach().clone() for p in module.parameters()]
    batch = {"lr": torch.rand(2, 3, 8, 8), "hr": torch.rand(2, 3, 32, 32)}
    module.training_step(batch, 0).backward()
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, module.parameters()))

    if SCHEDULERS[scheduler] is None:
        assert not isinstance(conf, dict)
        return
    sched = conf["lr_scheduler"]["scheduler"]
    assert type(sched) is SCHEDULERS[scheduler] and conf["lr_scheduler"]["interval"] == "epoch"
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(cfg.trainer.max_epochs):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    if scheduler == "cosine":  # T_max = max_epochs: down to eta_min at the end of training
        assert all(a > b for a, b in zip(lrs, lrs[1:])) and lrs[-1] == pytest.approx(cfg.scheduler.eta_min)
    else:  # step_size is 5 epochs: unchanged over the 2 test epochs, halved at 5
        assert lrs == [pytest.approx(cfg.model.lr)] * 3
        for _ in range(3):
            sched.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(cfg.model.lr * cfg.scheduler.gamma)


def test_scheduler_steps_per_epoch_in_training(base, tmp_path):
    run_dir = tmp_path / "run"
    run_train(base + ["optimizer=rmsprop", "scheduler=step", "scheduler.step_size=1", "scheduler.gamma=0.5",
                      "trainer.max_epochs=3"], run_dir)
    lrs = column(read_metrics(run_dir), "lr-RMSprop")
    assert lrs == pytest.approx([1e-3, 5e-4, 2.5e-4])


# --------------------------------------------------------------------------------------------------
# pruning


def prunable(state: dict[str, torch.Tensor], net: nn.Module) -> dict[str, torch.Tensor]:
    names = {f"{n}.weight" for n, m in net.named_modules() if isinstance(m, PRUNABLE)}
    assert names
    return {k: v for k, v in state.items() if k in names}


@pytest.mark.parametrize("method", ["random_unstructured", "l1_unstructured"])
def test_one_shot_pruning(method, base, tmp_path):
    run_dir = tmp_path / "run"
    # fsrcnn: Conv2d, ConvTranspose2d and PReLU (whose slopes must not be pruned). Keep every
    # step-3 checkpoint: `latest-step0000003` is taken before the epoch-0 pruning, `best-epoch000`
    # right after it (same step), last.ckpt after one more epoch of masked training.
    out = run_train(base + ["model=fsrcnn", f"pruning={method}", "pruning.amount=0.1",
                            "callbacks.latest.every_n_train_steps=3", "callbacks.latest.save_top_k=-1",
                            "callbacks.best.save_top_k=-1"], run_dir)
    net = out["module"].net
    ckpt_dir = run_dir / "checkpoints"
    before = net_state(load(ckpt_dir / "latest-step0000003.ckpt"))
    [pruned_path] = ckpt_dir.glob("best-epoch000-*.ckpt")
    pruned, last = (load(p) for p in (pruned_path, ckpt_dir / "last.ckpt"))
    assert pruned["global_step"] == 3 and last["global_step"] == 6

    for ckpt in (pruned, last):  # masks made permanent in every checkpoint
        assert not [k for k in ckpt["state_dict"] if k.endswith(("_orig", "_mask"))]
    assert not [n for n, _ in net.named_parameters() if n.endswith("_orig")]  # and in the module at the end
    assert not [n for n, _ in net.named_buffers() if n.endswith("_mask")]

    weights_before, weights_pruned = prunable(before, net), prunable(net_state(pruned), net)
    weights_last = prunable(net_state(last), net)
    assert all((w != 0).all() for w in weights_before.values())
    same_as_l1 = []
    for k, w in weights_pruned.items():
        n, zero = w.numel(), w == 0
        assert int(zero.sum()) == round(0.1 * n), k  # exactly the rounded fraction, per tensor
        assert torch.equal(w[~zero], weights_before[k][~zero])  # the others untouched
        assert torch.equal(weights_last[k] == 0, zero)  # still zero after training with the mask
        threshold = weights_before[k].abs().flatten().kthvalue(round(0.1 * n)).values
        same_as_l1.append(bool((weights_before[k][zero].abs() <= threshold).all()))
    if method == "l1_unstructured":  # the zeroed entries are the smallest-magnitude ones
        assert all(same_as_l1)
    else:
        assert not any(same_as_l1)
    others = [k for k in before if k not in weights_before]  # biases and PReLU slopes are not pruned
    prelu = {f"{n}.weight" for n, m in net.named_modules() if isinstance(m, nn.PReLU)}
    assert prelu and prelu <= set(others)
    assert all(torch.equal(before[k], net_state(pruned)[k]) for k in others)

    total = sum(w.numel() for w in weights_last.values())
    expected = sum(round(0.1 * w.numel()) for w in weights_last.values()) / total
    sparsity = column(read_metrics(run_dir), "train/sparsity")
    assert sparsity == pytest.approx([expected, expected], abs=1e-6)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["sparsity"] == pytest.approx(expected, abs=1e-4) and record["pruning"] == method


# --------------------------------------------------------------------------------------------------
# checkpoints: best-K, resume, fine-tune


def test_keeps_best_k_by_val_psnr_and_last(base, tmp_path):
    run_dir = tmp_path / "run"
    # lr 3e-3: PSNR peaks at epoch 2 then dips, so the top 2 are not simply the last 2 epochs (here)
    run_train(base + ["callbacks.best.save_top_k=2", "trainer.max_epochs=5", "data.iters_per_epoch=6",
                      "model.lr=3e-3"], run_dir)
    rows = read_metrics(run_dir)
    by_epoch = {int(float(r["epoch"])): float(r["val/psnr"]) for r in rows if r.get("val/psnr")}
    assert sorted(by_epoch) == [0, 1, 2, 3, 4]
    top2 = sorted(by_epoch, key=by_epoch.get, reverse=True)[:2]

    ckpt_dir = run_dir / "checkpoints"
    best = sorted(ckpt_dir.glob("best-*.ckpt"))
    epochs = sorted(int(re.search(r"epoch(\d+)", p.name).group(1)) for p in best)
    assert epochs == sorted(top2)
    for p in best:
        psnr = float(re.search(r"psnr(-?[\d.]+)\.ckpt$", p.name).group(1))
        assert psnr == pytest.approx(by_epoch[int(re.search(r"epoch(\d+)", p.name).group(1))], abs=1e-3)
    assert load(ckpt_dir / "last.ckpt")["global_step"] == 30
    record = json.loads((run_dir / "run.json").read_text())
    assert record["best_epoch"] == top2[0] and record["best_psnr"] == pytest.approx(by_epoch[top2[0]], abs=1e-4)
    assert Path(record["best_ckpt"]).name == f"best-epoch{top2[0]:03d}-psnr{by_epoch[top2[0]]:.3f}.ckpt"

    losses = column(rows, "train/loss")  # 30 steps of ESPCN on smooth textures: the loss goes down
    assert len(losses) == 30 and sum(losses[-5:]) < sum(losses[:5])


def test_resume_is_exact(base, tmp_path):
    first = tmp_path / "first"
    common = base + ["scheduler=step", "scheduler.step_size=1"]
    run_train(common, first)
    last_path = first / "checkpoints" / "last.ckpt"
    ckpt = load(last_path)
    assert ckpt["global_step"] == 6 and ckpt["epoch"] == 2  # saved at the end of fit

    snap, second = Snapshot(), tmp_path / "second"
    out = run_train(common + [f"ckpt_path={last_path}", "trainer.max_epochs=3"], second, [snap])
    assert snap.global_step == 6
    assert_same_tensors(snap.net, net_state(ckpt))
    saved, resumed = ckpt["optimizer_states"][0], snap.optimizer
    assert saved["state"].keys() == resumed["state"].keys() and saved["state"]
    for i, state in saved["state"].items():
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(resumed["state"][i][key], state[key]), (i, key)
    assert resumed["param_groups"][0]["lr"] == saved["param_groups"][0]["lr"] == pytest.approx(1e-3 * 0.25)
    assert snap.schedulers == ckpt["lr_schedulers"] and snap.schedulers[0]["last_epoch"] == 2

    assert out["trainer"].global_step == 9
    record = json.loads((second / "run.json").read_text())
    assert record["steps"] == 9 and record["epochs"] == 3
    assert load(second / "checkpoints" / "last.ckpt")["global_step"] == 9


def test_fine_tune_from_checkpoint(base, tmp_path):
    first = tmp_path / "first"
    run_train(base, first)  # espcn x4
    source = first / "checkpoints" / "last.ckpt"
    weights = net_state(load(source))

    snap = Snapshot()
    out = run_train(base + [f"model.init_from={source}", "optimizer=sgd"], tmp_path / "tuned", [snap])
    assert snap.global_step == 0 and not snap.optimizer["state"]  # weights only: no step, no optimizer state
    assert_same_tensors(snap.net, weights)
    assert out["trainer"].global_step == 6

    for wrong in (["model=fsrcnn"], ["scale=3"]):  # another architecture; the same one at another scale
        with pytest.raises(Exception, match="does not fit this network") as err:
            run_train(base + wrong + [f"model.init_from={source}"], tmp_path / "wrong")
        assert str(source) in str(err.value)


# --------------------------------------------------------------------------------------------------
# W&B (offline)


def test_wandb_offline_run_named_after_the_experiment(base, tmp_path, monkeypatch):
    import wandb

    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    run_dir = tmp_path / "run"
    overrides = [o for o in base if not o.startswith("logger=")] + [
        "scale=2", "optimizer=sgd", "model.net.activation=relu", "pruning=random_unstructured", "trainer.max_epochs=1"]
    try:
        out = run_train(overrides, run_dir)
        name = out["trainer"].loggers[0].experiment.name
    finally:
        wandb.finish()
    expected = "espcn_x2_sgd_relu_random_unstructured0.1"
    assert name == expected
    [offline] = list((run_dir / "wandb").glob("offline-run-*"))
    [log] = list(offline.glob("run-*.wandb"))
    deadline = time.monotonic() + 20  # wandb-core may still be flushing the transaction log after finish()
    while expected.encode() not in log.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert expected.encode() in log.read_bytes()
    assert json.loads((run_dir / "run.json").read_text())["run_name"] == expected
    assert (run_dir / "csv" / "metrics.csv").is_file()  # the W&B config also keeps the local CSV


def test_mixed_precision_falls_back_to_fp32_on_non_finite_output():
    """bf16 autocast on the CPU: a network that overflows in half precision gets an fp32 step instead."""
    import torch

    from srlab.lit import SRLitModule

    module = SRLitModule(net={"_target_": "srlab.models.build_model", "name": "espcn", "scale": 2},
                         optimizer={"_target_": "torch.optim.Adam", "lr": 1e-3})
    module.log = lambda *args, **kwargs: None
    real_forward = module.net.forward

    def overflow_in_half(x):
        y = real_forward(x)
        return y * float("nan") if y.dtype == torch.bfloat16 else y  # overflow ends as inf - inf = NaN

    module.net.forward = overflow_in_half
    batch = {"lr": torch.rand(2, 3, 8, 8), "hr": torch.rand(2, 3, 16, 16)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = module.training_step(batch, 0)
        sr = module(batch["lr"])
    assert torch.isfinite(loss) and torch.isfinite(sr).all()
    assert module.fp32_fallbacks == 2
    module.net.forward = real_forward
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a finite bf16 result is kept (no silent fp32)
        module.training_step(batch, 1)
    assert module.fp32_fallbacks == 2
