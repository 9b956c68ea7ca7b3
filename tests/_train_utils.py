"""Shared helpers for the training tests: tiny image folders, the common overrides, and running
``train.py`` in-process through Hydra's compose API (the same ``train(cfg)`` that ``main`` calls)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
TRAIN_PY = ROOT / "train.py"


def texture(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    """A random but learnable RGB texture: a few oriented sinusoids plus mild noise, uint8."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    img = np.zeros((size, size, 3), np.float32)
    for c in range(3):
        for _ in range(3):
            fx, fy = rng.uniform(0.02, 0.25, 2)
            img[..., c] += np.sin(2 * np.pi * (fx * x + fy * y) + rng.uniform(0, 2 * np.pi))
    img = (img - img.min()) / (np.ptp(img) + 1e-6)
    img += rng.normal(0, 0.03, img.shape)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def make_images(folder: Path, n: int, seed: int, size: int = 64) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(texture(rng, size)).save(folder / f"img{i}.png")
    return folder


def make_dataset(root: Path) -> tuple[Path, Path]:
    """3 training and 1 validation 64x64 PNGs under ``root``."""
    return make_images(root / "train", 3, seed=0), make_images(root / "val", 1, seed=1)


def base_overrides(data_root: Path, work: Path, logger: str = "csv") -> list[str]:
    """Tiny, fast, hermetic run: folder data (train and val), small patches, 2 epochs x 3 steps."""
    train_dir, val_dir = data_root / "train", data_root / "val"
    return [
        "data=folder",
        f"data.train.roots=[{train_dir}]",
        # conf/data/folder.yaml validates on Set5 (a download); swap in a folder source instead. A plain
        # `data.val={...}` override would *merge* into the BenchmarkSource node, hence delete + add.
        "~data.val",
        f"+data.val={{_target_:srlab.data.sources.FolderSource,roots:[{val_dir}]}}",
        "data.num_workers=0",
        "data.patch_size=8",
        "data.batch_size=4",
        "data.iters_per_epoch=3",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "trainer.log_every_n_steps=1",
        f"paths.root_dir={work}",
        f"paths.log_dir={work / 'logs'}",
        f"paths.cache_dir={work / 'cache'}",
        f"paths.data_dir={work / 'data'}",
        f"logger={logger}",
        "threads=1",  # 2 shared cores: one intra-op thread is 1-3x faster than two under load
    ]


def hermetic_env(**extra: str) -> dict[str, str]:
    """Environment for a ``python train.py`` subprocess: no uploads, no W&B network, unbuffered."""
    env = {k: v for k, v in os.environ.items() if k not in ("YADISK_TOKEN", "WANDB_API_KEY")}
    env.update(WANDB_MODE="offline", PYTHONUNBUFFERED="1", HYDRA_FULL_ERROR="1", **extra)
    return env


def load_train_script():
    """``train.py`` as a module (it lives at the repo root, outside the package)."""
    if "srlab_train_script" in sys.modules:
        return sys.modules["srlab_train_script"]
    spec = importlib.util.spec_from_file_location("srlab_train_script", TRAIN_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules["srlab_train_script"] = module
    spec.loader.exec_module(module)
    return module


def compose_cfg(overrides: list[str], run_dir: Path):
    """Compose ``conf/train.yaml`` as ``python train.py <overrides>`` would, with ``run_dir`` as the
    Hydra output directory; the ``${hydra:...}`` interpolations resolve through ``HydraConfig``."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict, read_write

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with read_write(cfg.hydra):
        cfg.hydra.runtime.output_dir = str(run_dir)
    HydraConfig.instance().set_config(cfg)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]
    return cfg


def run_train(overrides: list[str], run_dir: Path, extra_callbacks=()) -> dict:
    """Run ``train(cfg)`` in-process; returns its dict (best_psnr, trainer, module, datamodule)."""
    cfg = compose_cfg(overrides, run_dir)
    return load_train_script().train(cfg, extra_callbacks=extra_callbacks)


def fit_checkpoint(path: Path, net: dict, seed: int = 0) -> Path:
    """A real srlab checkpoint: 2 Lightning steps of SRLitModule on random tensors (``net`` is a
    ``srlab.models.build_model`` config with ``name`` and ``scale``)."""
    import pytorch_lightning as pl
    import torch
    from torch.utils.data import DataLoader, Dataset

    from srlab.lit import SRLitModule

    scale = net["scale"]

    class Random(Dataset):
        def __len__(self) -> int:
            return 4

        def __getitem__(self, i: int) -> dict:
            g = torch.Generator().manual_seed(seed * 100 + i)
            return {"lr": torch.rand(3, 8, 8, generator=g), "hr": torch.rand(3, 8 * scale, 8 * scale, generator=g)}

    pl.seed_everything(seed, verbose=False)
    module = SRLitModule(net=net, optimizer={"_target_": "torch.optim.Adam", "lr": 1e-2}, scheduler=None,
                         loss="l2", name=net["name"])
    trainer = pl.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(module, DataLoader(Random(), batch_size=2))
    path.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(path)
    return path
