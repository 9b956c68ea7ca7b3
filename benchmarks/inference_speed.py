"""Inference speed of every network through the engine (srlab.inference.Upscaler), against this CPU's peak.

    python benchmarks/inference_speed.py                                   # all networks, x4, 2 threads
    python benchmarks/inference_speed.py --models espcn edsr_baseline --repeats 7
    python benchmarks/inference_speed.py --weights outputs/budget_10m --csv results/speed/speed.csv

For each network and each photo (scikit-image's ``chelsea``, colour, and ``camera``, grayscale, centre-
cropped to ``--side`` px so that heavy networks finish), the seconds per output megapixel of:

* ``default``: float32, torch's default (NCHW) memory format;
* ``channels_last``: float32, NHWC (the engine's default, "engine" in the CSV);
* ``bf16``: channels_last under CPU autocast to bfloat16 (kept only where it costs < 0.01 dB);
* ``onnxruntime``: the bare network exported to ONNX and run by ONNX Runtime (when it is installed),
  for comparison (the engine does not use it).

Each timing is the median of ``--repeats`` runs after one warm-up (min-max beside it). The achieved
rate counts the network's multiply-adds (``srlab.models.__main__.macs_per_output_mp``; the colour
conversions and bicubic chroma of Y networks are extra, uncounted work) against the peak of a large
matmul measured in the same process (float32 and bfloat16). With ``--weights``, trained weights (each
network's ``final.ckpt`` under that folder) are used and the PSNR cost of bf16 against float32 is
measured on Set5 (``SRLAB_DATA_DIR``, default ../shared/datasets); random weights otherwise (speed does
not depend on them).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srlab.inference import Upscaler
from srlab.models import build_model, model_names
from srlab.models.__main__ import macs_per_output_mp
from srlab.runtime import configure_torch

MODES = ("default", "channels_last", "bf16")
HEAVY_SIDE = 128  # rdn, vdsr, edsr: smaller crops (s / MP hardly depends on the size beyond ~100 px)


def timed(fn, repeats: int) -> tuple[float, float, float]:
    """(median, min, max) seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of an ``n x n`` matmul (the best this CPU does with torch's BLAS / oneDNN)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    median, lo, _ = timed(lambda: a @ b, repeats)
    return 2 * n ** 3 / lo


def photos(side: int) -> dict[str, Image.Image]:
    from skimage import data

    def crop(arr: np.ndarray) -> Image.Image:
        h, w = arr.shape[:2]
        top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
        return Image.fromarray(np.ascontiguousarray(arr[top:top + side, left:left + side]))

    return {"color": crop(data.chelsea()), "gray": crop(data.camera())}


def trained_checkpoint(weights: Path | None, model: str) -> Path | None:
    if weights is None:
        return None
    found = sorted(weights.glob(f"{model}_x*/checkpoints/final.ckpt"))
    return found[0] if found else None


def load_net(model: str, scale: int, ckpt: Path | None) -> torch.nn.Module:
    if ckpt is None:
        torch.manual_seed(0)
        return build_model(model, scale)
    from srlab.deploy import network_from_checkpoint

    return network_from_checkpoint(ckpt)[0]


def onnx_seconds(net: torch.nn.Module, image: Image.Image, repeats: int) -> tuple[float, float, float] | None:
    """The bare network (no colour handling: Y networks get the gray plane) under ONNX Runtime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    arr = np.asarray(image.convert("L" if net.in_channels == 1 else "RGB"), dtype=np.float32) / 255
    x = torch.from_numpy(arr.reshape(*arr.shape[:2], -1)).permute(2, 0, 1)[None].contiguous()
    buffer = io.BytesIO()
    torch.onnx.export(net.float().to(memory_format=torch.contiguous_format), (x,), buffer, dynamo=False,
                      input_names=["lr"], output_names=["sr"], opset_version=17)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    feed = {"lr": x.numpy()}
    return timed(lambda: session.run(None, feed), repeats)


def set5_psnr_cost(ckpt: Path, name: str, scale: int) -> float | None:
    """Set5 mean PSNR (Y) of float32 channels_last minus that of bf16, in dB (None without Set5)."""
    from srlab.evaluation import ModelSpec, evaluate_set, load_model, load_set

    root = Path(os.environ.get("SRLAB_DATA_DIR", "../shared/datasets"))
    if not (root / "Set5").is_dir():
        return None
    model, test_set = load_model(ModelSpec(name, ckpt), scale), load_set("Set5", root, download=False)
    psnr = {p: evaluate_set(model, test_set, scale, ssim=False, precision=p)["psnr"] for p in ("fp32", "bf16")}
    return psnr["fp32"] - psnr["bf16"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=[m for m in model_names() if m not in ("edsr", "srgan")])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--side", type=int, default=256, help="crop side of the input photos, px")
    parser.add_argument("--weights", type=Path, default=None,
                        help="folder of training runs (<model>_x*/checkpoints/final.ckpt), e.g. outputs/budget_10m")
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--peak-n", type=int, default=2048, help="matmul size for the peak (n x n)")
    parser.add_argument("--csv", type=Path, default=Path("results/speed/speed.csv"))
    args = parser.parse_args()

    threads = configure_torch(args.threads)
    peak32, peak16 = matmul_peak(torch.float32, args.peak_n), matmul_peak(torch.bfloat16, args.peak_n)
    print(f"{threads} threads; matmul peak: {peak32 / 1e9:.0f} GFLOP/s float32, {peak16 / 1e9:.0f} GFLOP/s bfloat16")
    rows = []
    header = (f"{'model':<14}{'photo':<6}{'mode':<14}{'out MP':>7}{'s (min-max)':>25}{'s/out MP':>10}"
              f"{'GFLOP/s':>9}{'% peak':>8}")
    print(header)
    for model in args.models:
        ckpt = trained_checkpoint(args.weights, model)
        net = load_net(model, args.scale, ckpt)
        gmac = macs_per_output_mp(net, 64) / 1e9
        side = HEAVY_SIDE if model in ("rdn", "vdsr", "edsr") else args.side
        cost = set5_psnr_cost(ckpt, model, args.scale) if ckpt is not None else None
        for photo, image in photos(side).items():
            out_mp = image.width * image.height * args.scale ** 2 / 1e6
            results = {}
            for mode in MODES:
                up = Upscaler.from_network(net, model, channels_last=mode != "default",
                                           precision="bf16" if mode == "bf16" else "fp32")
                results[mode] = timed(lambda: up.upscale(image), args.repeats)
            if not args.no_onnx:
                onnx = onnx_seconds(net, image, args.repeats)
                if onnx is not None:
                    results["onnxruntime"] = onnx
            for mode, (median, lo, hi) in results.items():
                gflops = 2 * gmac * out_mp / median
                peak = peak16 if mode == "bf16" else peak32
                row = {"model": model, "photo": photo, "mode": mode, "weights": str(ckpt or "random"),
                       "input": f"{image.width}x{image.height}", "output_mp": round(out_mp, 3),
                       "seconds_median": round(median, 4), "seconds_min": round(lo, 4), "seconds_max": round(hi, 4),
                       "s_per_output_mp": round(median / out_mp, 4), "gmac_per_output_mp": round(gmac, 3),
                       "gflops": round(gflops, 1), "peak_fraction": round(gflops * 1e9 / peak, 3),
                       "bf16_psnr_cost_db": None if cost is None or mode != "bf16" else round(cost, 4),
                       "threads": threads, "peak_fp32_gflops": round(peak32 / 1e9), "peak_bf16_gflops": round(peak16 / 1e9)}
                rows.append(row)
                print(f"{model:<14}{photo:<6}{mode:<14}{out_mp:>7.2f}{f'{median:.3f} ({lo:.3f}-{hi:.3f})':>25}"
                      f"{median / out_mp:>10.3f}{gflops:>9.1f}{100 * row['peak_fraction']:>7.0f}%", flush=True)
        if cost is not None:
            print(f"{model}: bf16 costs {cost:+.4f} dB on Set5 (fp32 minus bf16){'' if cost < 0.01 else ' -- over 0.01 dB'}")
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"written {args.csv}")


if __name__ == "__main__":
    main()
