"""A real ``python train.py`` killed with SIGKILL while it checkpoints every step leaves only complete,
loadable checkpoints (no torn ``.ckpt``; at most the hidden ``.*.tmp`` of the write it was killed in),
and ``ckpt_path=.../last.ckpt`` resumes at the step the checkpoint recorded."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _train_utils import ROOT, base_overrides, hermetic_env, make_dataset

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")

DEADLINE_S = 120


def train_cmd(data: Path, work: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *base_overrides(data, work), "model=espcn",
            "data.iters_per_epoch=25", "trainer.max_epochs=1000", "callbacks.latest.every_n_train_steps=1",
            f"hydra.run.dir={run_dir}", *extra]


def checkpoint_step(path: Path) -> int | None:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])
    except FileNotFoundError:
        return None


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=log.parent, env=hermetic_env(), stdout=out, stderr=subprocess.STDOUT)


def kill_after_progress(proc: subprocess.Popen, last: Path, log: Path, more_steps: int, rng: random.Random) -> int:
    """Wait for last.ckpt, then for ``more_steps`` further checkpointed steps, then SIGKILL at a
    random moment shortly after. Returns the step of the first checkpoint seen."""
    deadline = time.monotonic() + DEADLINE_S
    first = None
    try:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"train.py exited early ({proc.returncode}):\n{log.read_text()[-3000:]}"
            step = checkpoint_step(last) if last.exists() else None
            if step is not None:
                first = step if first is None else first
                if step >= first + more_steps:
                    time.sleep(rng.uniform(0.0, 0.3))  # land anywhere in a step or a checkpoint write
                    os.kill(proc.pid, signal.SIGKILL)
                    assert proc.wait(timeout=30) == -signal.SIGKILL
                    return first
            time.sleep(0.05)
        pytest.fail(f"no training progress within {DEADLINE_S}s:\n{log.read_text()[-3000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def assert_checkpoints_intact(ckpt_dir: Path) -> int:
    """Every *.ckpt loads with the safe loader; anything else is a hidden .tmp of the killed write.
    Returns last.ckpt's global step."""
    files = sorted(p for p in ckpt_dir.iterdir())
    ckpts = [p for p in files if p.suffix == ".ckpt" and not p.name.startswith(".")]
    others = [p for p in files if p not in ckpts]
    assert len(others) <= 1 and all(p.name.startswith(".") and p.name.endswith(".tmp") for p in others), others
    assert any(p.name.startswith("latest-step") for p in ckpts)
    for p in ckpts:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
        assert {"state_dict", "optimizer_states", "global_step", "loops"} <= ckpt.keys(), p
    return checkpoint_step(ckpt_dir / "last.ckpt")


def test_sigkill_leaves_loadable_checkpoints_and_resume_continues(tmp_path):
    data = tmp_path / "data"
    make_dataset(data)
    rng = random.Random(int(os.environ.get("SRLAB_TEST_SEED", time.time_ns() % 10_000)))

    # 1: a fresh run, killed a few steps after its first checkpoint
    run1 = tmp_path / "run1"
    run1.mkdir()
    proc = start(train_cmd(data, tmp_path, run1), run1 / "out.log")
    seen = kill_after_progress(proc, run1 / "checkpoints" / "last.ckpt", run1 / "out.log", 3, rng)
    step1 = assert_checkpoints_intact(run1 / "checkpoints")
    assert step1 >= seen + 3
    assert not (run1 / "run.json").exists()  # it really died mid-training

    # 2: resume it, and kill the resumed run too (its writes are just as atomic)
    run2 = tmp_path / "run2"
    run2.mkdir()
    proc = start(train_cmd(data, tmp_path, run2, f"ckpt_path={run1 / 'checkpoints' / 'last.ckpt'}"), run2 / "out.log")
    seen2 = kill_after_progress(proc, run2 / "checkpoints" / "last.ckpt", run2 / "out.log", 2, rng)
    assert seen2 > step1  # the resumed run counts on from the checkpoint, not from 0
    step2 = assert_checkpoints_intact(run2 / "checkpoints")
    assert step2 >= step1 + 3

    # 3: resume for exactly 3 more steps and check the step counter continued from the checkpoint
    run3 = tmp_path / "run3"
    run3.mkdir()
    cmd = train_cmd(data, tmp_path, run3, f"ckpt_path={run2 / 'checkpoints' / 'last.ckpt'}",
                    f"+trainer.max_steps={step2 + 3}")
    proc = subprocess.run(cmd, cwd=run3, env=hermetic_env(), capture_output=True, text=True, timeout=DEADLINE_S)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((run3 / "run.json").read_text())
    assert record["steps"] == step2 + 3
    assert checkpoint_step(run3 / "checkpoints" / "last.ckpt") == step2 + 3
    with open(run3 / "csv" / "metrics.csv", newline="") as f:
        logged = [int(r["step"]) for r in csv.DictReader(f) if r.get("train/loss")]
    assert logged == [step2, step2 + 1, step2 + 2]  # the loss of step k+1 is logged at step k


def test_atomic_writer_replaces_and_clears_leftovers(tmp_path):
    import torch

    from srlab.callbacks.checkpoint_io import AtomicCheckpointIO

    target = tmp_path / "last.ckpt"
    leftover = tmp_path / ".last.ckpt.999999.tmp"
    leftover.write_bytes(b"half a checkpoint")
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "w": torch.ones(2)}, target)
    io.save_checkpoint({"step": 2, "w": torch.zeros(2)}, target)
    assert not leftover.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert io.load_checkpoint(target)["step"] == 2
