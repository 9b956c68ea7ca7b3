"""SRGANModule: manual-optimization GAN training, init from SRResNet, checkpoints, resume, Hydra config.

Tiny networks (1 residual block, 8 features), LR 8x8 -> HR 32x32 at x4, batch 2, random VGG weights.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from torch.utils.data import DataLoader, Dataset

from srlab.checkpoint import load_network
from srlab.lit import SRGANModule, SRLitModule
from srlab.models import ESPCN, SRGANDiscriminator, SRResNet

ROOT = Path(__file__).resolve().parents[1]
SCALE = 4
NET = {"_target_": "srlab.models.build_model", "name": "srgan", "scale": SCALE, "num_blocks": 1, "num_features": 8}
DISCRIMINATOR = {"_target_": "srlab.models.SRGANDiscriminator", "num_features": 8, "pool_size": 1, "dense_features": 16}
# Random VGG weights: relu5_4 features vanish through 16 random layers (content loss ~1e-15), relu2_2's do not.
VGG = {"_target_": "srlab.models.VGGFeatureExtractor", "layer": "relu2_2", "pretrained": False}
ADAM = {"_target_": "torch.optim.Adam", "lr": 1.0e-4, "betas": [0.9, 0.999]}
STEP = {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1, "gamma": 0.5}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # 2 shared cores: two intra-op threads under load make tiny batch norms 100x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Patches(Dataset):
    """Smooth random HR patches and their 4x4-average LR, ``{"lr", "hr"}`` as SRDataModule gives."""

    def __init__(self, n: int, lr_size: int = 8, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        hr = F.interpolate(torch.rand(n, 3, lr_size, lr_size, generator=g), scale_factor=SCALE, mode="bilinear")
        self.hr = hr.clamp(0, 1)
        self.lr = F.avg_pool2d(self.hr, SCALE)

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"lr": self.lr[i], "hr": self.hr[i]}


def loaders() -> tuple[DataLoader, DataLoader]:
    return DataLoader(Patches(8), batch_size=2, shuffle=False), DataLoader(Patches(2, seed=1), batch_size=1)


def trainer(root: Path, max_steps: int, callbacks: list | None = None) -> pl.Trainer:
    return pl.Trainer(max_steps=max_steps, limit_train_batches=2, limit_val_batches=1, logger=False,
                      enable_checkpointing=True, accelerator="cpu", devices=1, default_root_dir=root,
                      enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                      callbacks=callbacks or [])


def srgan(init_from: str | None = None, **kwargs) -> SRGANModule:
    kwargs = {"discriminator": DISCRIMINATOR, "vgg": VGG, "d_optimizer": ADAM, "scheduler": STEP,
              "d_scheduler": STEP, "pixel_weight": 0.1} | kwargs
    return SRGANModule(net=NET, optimizer=ADAM, init_from=init_from, **kwargs)


def clone_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class Snapshot(pl.Callback):
    """Weights and optimizer/scheduler states as training starts (after setup and any resume)."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: SRGANModule) -> None:
        self.global_step = trainer.global_step
        self.discriminator = clone_state(pl_module.discriminator)
        self.vgg = clone_state(pl_module.vgg)
        self.optimizers = [{k: v.clone() for k, v in opt.state[opt.param_groups[0]["params"][0]].items()}
                           if opt.state else {} for opt in trainer.optimizers]
        self.schedulers = [c.scheduler.state_dict() for c in trainer.lr_scheduler_configs]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A 1-step SRResNet run (the init checkpoint), then 4 SRGAN steps = 2 epochs of 2 batches."""
    root = tmp_path_factory.mktemp("srgan")
    torch.manual_seed(0)
    train, val = loaders()
    pre = SRLitModule(net=NET, optimizer=ADAM, loss="l2")
    t = trainer(root / "srresnet", max_steps=1)
    t.fit(pre, train, val)
    srresnet_ckpt = root / "srresnet.ckpt"
    t.save_checkpoint(srresnet_ckpt)

    module = srgan(init_from=str(srresnet_ckpt))
    snapshot = Snapshot()
    t = trainer(root / "srgan", max_steps=4, callbacks=[snapshot])
    t.fit(module, train, val)
    ckpt = root / "srgan.ckpt"
    t.save_checkpoint(ckpt)
    return SimpleNamespace(root=root, srresnet_ckpt=srresnet_ckpt, pre=pre, module=module, trainer=t,
                           snapshot=snapshot, ckpt=ckpt)


def test_training_updates_generator_and_discriminator_not_vgg(run: SimpleNamespace) -> None:
    module, t, snap = run.module, run.trainer, run.snapshot
    assert t.global_step == 4  # batches: the discriminator's steps are not counted
    init = run.pre.net.state_dict()
    assert any(not torch.equal(v, module.net.state_dict()[k]) for k, v in init.items() if v.is_floating_point())
    assert any(not torch.equal(v, module.discriminator.state_dict()[k]) for k, v in snap.discriminator.items()
               if v.is_floating_point())
    assert all(torch.equal(v, module.vgg.state_dict()[k]) for k, v in snap.vgg.items())
    assert not any(p.requires_grad for p in module.vgg.parameters())

    g_opt, d_opt = t.optimizers
    assert {id(p) for p in g_opt.param_groups[0]["params"]} == {id(p) for p in module.net.parameters()}
    assert {id(p) for p in d_opt.param_groups[0]["params"]} == {id(p) for p in module.discriminator.parameters()}
    for opt in (g_opt, d_opt):
        assert opt.state and all(int(s["step"]) == 4 for s in opt.state.values())
        assert opt.param_groups[0]["lr"] == pytest.approx(1e-4 * 0.5**2)  # both schedulers stepped per epoch

    metrics = t.callback_metrics
    for key in ("train/g_loss", "train/d_loss", "train/content", "train/adversarial", "train/d_real_acc",
                "train/d_fake_acc", "train/pixel", "val/psnr", "val/ssim"):
        assert key in metrics and math.isfinite(float(metrics[key])), key
    assert 0.0 <= float(metrics["train/d_real_acc"]) <= 1.0 and float(metrics["train/content"]) > 0
    # toggled_optimizer gave every trainable parameter its requires_grad back
    assert all(p.requires_grad for p in [*module.net.parameters(), *module.discriminator.parameters()])


def test_checkpoint_holds_plain_hparams_both_optimizers_and_no_vgg(run: SimpleNamespace) -> None:
    ckpt = torch.load(run.ckpt, map_location="cpu", weights_only=True)  # plain types only
    keys = ckpt["state_dict"].keys()
    assert not any(k.startswith("vgg.") for k in keys)
    assert any(k.startswith("net.") for k in keys) and any(k.startswith("discriminator.") for k in keys)
    assert len(ckpt["optimizer_states"]) == 2 and len(ckpt["lr_schedulers"]) == 2
    hp = ckpt["hyper_parameters"]
    assert hp["discriminator"] == DISCRIMINATOR and hp["vgg"] == VGG and hp["init_from"] == str(run.srresnet_ckpt)
    assert hp["content_weight"] == 0.006 and hp["adversarial_weight"] == 1e-3 and hp["pixel_weight"] == 0.1
    net, net_hp = load_network(run.ckpt)  # the deploy/export path: generator only
    assert isinstance(net, SRResNet) and net_hp["name"] is None


def test_load_from_checkpoint_round_trip(run: SimpleNamespace, tmp_path: Path) -> None:
    # The init_from file need not exist where a trained SRGAN is loaded (its weights are in the checkpoint).
    ckpt = torch.load(run.ckpt, map_location="cpu", weights_only=True)
    ckpt["hyper_parameters"]["init_from"] = str(tmp_path / "gone.ckpt")
    moved = tmp_path / "srgan.ckpt"
    torch.save(ckpt, moved)
    loaded = SRGANModule.load_from_checkpoint(moved, weights_only=True, map_location="cpu")
    assert isinstance(loaded, SRGANModule) and loaded.vgg is None
    assert isinstance(loaded.discriminator, SRGANDiscriminator)
    assert dict(loaded.hparams) == {**dict(run.module.hparams), "init_from": str(tmp_path / "gone.ckpt")}
    for name in ("net", "discriminator"):
        ref = getattr(run.module, name).state_dict()
        assert all(torch.equal(v, ref[k]) for k, v in getattr(loaded, name).state_dict().items())
    lr = Patches(1)[0]["lr"][None]
    run.module.eval()
    loaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(lr), run.module(lr))


def test_resume_restores_both_optimizers_and_schedulers(run: SimpleNamespace) -> None:
    ckpt = torch.load(run.ckpt, map_location="cpu", weights_only=True)
    snapshot = Snapshot()
    t = trainer(run.root / "srgan", max_steps=6, callbacks=[snapshot])  # the same run directory
    train, val = loaders()
    t.fit(srgan(init_from=str(run.srresnet_ckpt)), train, val, ckpt_path=run.ckpt)
    assert snapshot.global_step == 4 and t.global_step == 6
    for i, restored in enumerate(snapshot.optimizers):
        saved = ckpt["optimizer_states"][i]["state"][0]
        assert restored and torch.equal(restored["exp_avg"], saved["exp_avg"])
        assert torch.equal(restored["exp_avg_sq"], saved["exp_avg_sq"])
    assert snapshot.schedulers == ckpt["lr_schedulers"]
    assert [o.param_groups[0]["lr"] for o in t.optimizers] == pytest.approx([1e-4 * 0.5**3] * 2)


def test_init_from_loads_srresnet_weights(run: SimpleNamespace) -> None:
    module = srgan(init_from=str(run.srresnet_ckpt))
    ref = run.pre.net.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in module.net.state_dict().items())


def test_init_from_another_architecture_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "espcn.ckpt"  # what an SRLitModule run of ESPCN saves, reduced to the essentials
    espcn = {"_target_": "srlab.models.build_model", "name": "espcn", "scale": SCALE}
    torch.save({"state_dict": {f"net.{k}": v for k, v in ESPCN(scale=SCALE).state_dict().items()},
                "hyper_parameters": {"net": espcn}}, path)
    with pytest.raises(ValueError, match=r"does not fit this network \(SRResNet, x4\)"):
        srgan(init_from=str(path))


def test_missing_init_from_warns() -> None:
    module = srgan()
    with pytest.warns(UserWarning, match=r"trained SRResNet.*python train.py model=srresnet"):
        module.on_fit_start()


def test_defaults_and_channels_last() -> None:
    module = SRGANModule(net=NET, optimizer=ADAM, scheduler={}, d_scheduler=None)
    hp = module.hparams
    assert hp.d_optimizer == {"_target_": "torch.optim.Adam", "lr": 1e-4, "betas": [0.9, 0.999]}
    assert hp.vgg["layer"] == "relu5_4" and hp.vgg["pretrained"] is True and module.vgg is None
    assert hp.discriminator["pool_size"] == 6 and hp.scheduler is None and hp.d_scheduler is None
    assert (hp.content_weight, hp.adversarial_weight, hp.pixel_weight) == (0.006, 1e-3, 0.0)
    opts, scheds = module.configure_optimizers()
    assert [type(o) for o in opts] == [torch.optim.Adam] * 2 and scheds == []
    for net in (module.net, module.discriminator):
        conv = next(p for p in net.parameters() if p.dim() == 4)
        assert conv.is_contiguous(memory_format=torch.channels_last)


def test_hydra_config_builds_srgan_module() -> None:
    overrides = ["model=srgan", "scheduler=none", "model.vgg.pretrained=false", "+model.net.num_blocks=1",
                 "+model.net.num_features=8", "model.discriminator.num_features=8", "model.discriminator.pool_size=1",
                 "model.init_from=null"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    assert cfg.module._target_ == "srlab.lit.SRGANModule"
    # What train.py does: the model's module_kwargs complete the `module` node.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = instantiate(cfg.module, **cfg.model.get("module_kwargs", {}))
    assert isinstance(module, SRGANModule)
    hp = module.hparams
    assert hp.vgg["layer"] == "relu5_4" and hp.vgg["pretrained"] is False
    assert hp.discriminator["pool_size"] == 1 and hp.d_optimizer["lr"] == cfg.model.lr
    assert hp.d_scheduler is None and hp.content_weight == 0.006 and hp.adversarial_weight == 1e-3
    assert type(hp.net) is dict and type(hp.d_optimizer["betas"]) is list  # plain containers
