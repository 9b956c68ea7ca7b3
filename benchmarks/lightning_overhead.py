"""Lightning's per-step overhead against a bare PyTorch loop: same network, batch, optimizer, data.

    python benchmarks/lightning_overhead.py --model espcn --steps 300 --repeats 3

Both loops train ``SRLitModule``'s network on the same pre-made in-memory batches (so the data
loader is not measured), Adam, channels_last. Both are timed in their steady state: from the start of
step ``--warmup`` to the end of the last step, so the one-off costs (Trainer.fit's setup, oneDNN's
first-call kernel selection) that a real run pays once are not spread over a few hundred steps.
Prints the median seconds per step of each and the overhead in percent.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from srlab.lit import SRLitModule
from srlab.runtime import configure_torch


class FixedBatches(Dataset):
    def __init__(self, batches: list[dict]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict:
        return self.batches[i]


def make_module(model: str, scale: int) -> SRLitModule:
    return SRLitModule(net={"_target_": "srlab.models.build_model", "name": model, "scale": scale},
                       optimizer={"_target_": "torch.optim.Adam", "lr": 1e-4}, loss="l1")


def bare_loop(module: SRLitModule, batches: list[dict], steps: int, warmup: int) -> float:
    opt = module.configure_optimizers()
    module.train()
    for i in range(steps):
        if i == warmup:
            start = time.perf_counter()
        loss = module.training_step(batches[i % len(batches)], i)  # the same step code, without Lightning
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / (steps - warmup)


class SteadyStateTimer(pl.Callback):
    """Wall time from the start of batch ``warmup`` to the end of training."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        self.end = time.perf_counter()


class NoLog(SRLitModule):
    def log(self, *args, **kwargs) -> None:  # the bare loop has no logger either
        pass


def lightning_loop(module: SRLitModule, batches: list[dict], steps: int, warmup: int) -> float:
    loader = DataLoader(FixedBatches(batches), batch_size=None, shuffle=False)
    timer = SteadyStateTimer(warmup)
    trainer = pl.Trainer(accelerator="cpu", max_steps=steps, max_epochs=-1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                         callbacks=[timer])
    trainer.fit(module, train_dataloaders=loader)
    return (timer.end - timer.start) / (steps - warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="espcn")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=24)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10, help="steps before the clock starts")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    threads = configure_torch()
    g = torch.Generator().manual_seed(0)
    s, p = args.scale, args.patch
    batches = [{"lr": torch.rand(args.batch, 3, p, p, generator=g), "hr": torch.rand(args.batch, 3, p * s, p * s, generator=g)}
               for _ in range(20)]
    bare, lit = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
        torch.manual_seed(0)
        bare.append(bare_loop(make_module(args.model, s), batches, args.steps, args.warmup))
        torch.manual_seed(0)
        module = make_module(args.model, s)
        module.__class__ = NoLog
        lit.append(lightning_loop(module, batches, args.steps, args.warmup))
    b, l = statistics.median(bare), statistics.median(lit)
    print(f"model={args.model} x{s} batch={args.batch} patch={p} steps={args.steps} threads={threads} torch={torch.__version__}")
    print(f"bare PyTorch : {b * 1000:.2f} ms/step (min {min(bare) * 1000:.2f}, max {max(bare) * 1000:.2f})")
    print(f"Lightning    : {l * 1000:.2f} ms/step (min {min(lit) * 1000:.2f}, max {max(lit) * 1000:.2f})")
    print(f"overhead     : {100 * (l - b) / b:+.1f}%")


if __name__ == "__main__":
    main()
