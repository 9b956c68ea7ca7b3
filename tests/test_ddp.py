"""``trainer=ddp`` on two CPU processes (gloo): a real ``python train.py`` run trains ESPCN, both ranks
join and step, and rank 0 writes the checkpoint and run.json."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
from _train_utils import ROOT, base_overrides, hermetic_env, make_dataset

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with gloo")


def test_ddp_two_cpu_processes(tmp_path):
    data = tmp_path / "data"
    make_dataset(data)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, str(ROOT / "train.py"), *base_overrides(data, tmp_path), "model=espcn",
           "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", f"hydra.run.dir={run_dir}"]
    try:
        proc = subprocess.run(cmd, cwd=tmp_path, env=hermetic_env(), capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as err:  # a hung rendezvous must fail the test, not hang it
        pytest.fail(f"DDP run did not finish in {err.timeout}s:\n{(err.stderr or b'')[-3000:]!r}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]

    # both ranks joined a 2-process gloo group
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in out and "GLOBAL_RANK: 1, MEMBER: 2/2" in out
    assert "distributed_backend=gloo" in out
    # rank 1 is a separate `train.py` process (Lightning relaunches the script with hydra.job.name
    # set per rank); it composed and started the same run
    rank1_log = run_dir / "train_ddp_process_1.log"
    assert rank1_log.is_file() and "run espcn_x4_adam_tanh_none" in rank1_log.read_text()

    record = json.loads((run_dir / "run.json").read_text())  # written once, by rank 0
    assert record["steps"] == 6 and record["epochs"] == 2 and record["best_psnr"] is not None
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 6
    assert ckpt["hyper_parameters"]["name"] == "espcn"
    runs_csv = (tmp_path / "logs" / "runs.csv").read_text().splitlines()
    assert len(runs_csv) == 2  # header + one row: rank 1 did not write a second record
