"""Data-loader patches/s against what training consumes.

    SRLAB_DATA_DIR=../shared/datasets python benchmarks/loader_throughput.py --data sr291 --model espcn

Builds the same ``SRDataModule`` as ``train.py`` (decoding into the cache first, not timed), then
times ``--batches`` batches from the training loader for each worker count, and one training step
of ``--model`` at the same batch size; prints both in patches/s and their ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from hydra import compose, initialize_config_dir

from srlab.runtime import configure_torch

CONF = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf")


def loader_rate(dm, batches: int) -> float:
    it = iter(dm.train_dataloader())
    next(it)  # worker start-up is a one-off, not throughput
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * dm.batch_size / (time.perf_counter() - start)


def training_rate(model: str, scale: int, batch: int, patch: int, steps: int) -> float:
    from srlab.lit import SRLitModule

    module = SRLitModule(net={"_target_": "srlab.models.build_model", "name": model, "scale": scale},
                         optimizer={"_target_": "torch.optim.Adam", "lr": 1e-4})
    opt = module.configure_optimizers()
    module.log = lambda *a, **k: None
    data = {"lr": torch.rand(batch, 3, patch, patch), "hr": torch.rand(batch, 3, patch * scale, patch * scale)}
    for i in range(steps + 2):
        if i == 2:
            start = time.perf_counter()
        loss = module.training_step(data, i)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="samples")
    parser.add_argument("--model", default="espcn")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=24)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--degradation", default="bicubic")
    args = parser.parse_args()
    threads = configure_torch()
    cache = os.environ.get("SRLAB_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "srlab-bench-cache")
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", overrides=[f"data={args.data}", f"scale={args.scale}", f"data.batch_size={args.batch}",
                                          f"data.patch_size={args.patch}", f"data.degradation={args.degradation}",
                                          f"paths.cache_dir={cache}", "data.iters_per_epoch=100000"])
    from hydra.utils import instantiate

    print(f"data={args.data} degradation={args.degradation} x{args.scale} batch={args.batch} patch={args.patch} "
          f"threads={threads} torch={torch.__version__}")
    for workers in args.workers:
        dm = instantiate(cfg.data, num_workers=workers)
        dm.prepare_data()
        dm.setup("fit")
        print(f"loader, {workers} workers: {loader_rate(dm, args.batches):8.0f} patches/s")
    rate = training_rate(args.model, args.scale, args.batch, args.patch, args.steps)
    print(f"training {args.model}: {rate:8.0f} patches/s consumed")


if __name__ == "__main__":
    main()
