"""Whole-photo upscaling speed and memory of the inference engine (srlab.inference).

    python benchmarks/inference_12mp.py                          # espcn, fsrcnn, edsr_baseline
    python benchmarks/inference_12mp.py --models espcn fsrcnn --threads 2
    python benchmarks/inference_12mp.py --models rdn --scales 4 --no-untiled --max-tiles 8   # slow networks

For each network (random weights: speed does not depend on them) it upscales a synthetic 12 MP
photo (4000x3000 RGB) x2 and a 3 MP one (2000x1500) x4 -- both 48 MP out -- tiled (``--tile``,
default 256, overlap = receptive field) and untiled, and prints seconds per output megapixel and the
peak RSS. Each configuration runs in its own process so its peak RSS is its own (``base`` = RSS
with torch imported and the input photo decoded, before upscaling; the engine's cost is the rest).
Untiled runs whose feature maps would not fit in ``--max-untiled-gb`` are skipped (EDSR-baseline:
64 channels x 12 MP x 4 B = 3 GB per activation, several alive at once, and minutes of compute).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

CONFIGS = [(2, 4000, 3000), (4, 2000, 1500)]  # (scale, width, height): 12 MP x2 and 3 MP x4


def synthetic_photo(width: int, height: int):
    """Smooth gradients, edges and sensor-like noise: a stand-in for a camera photo (uint8 RGB)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    img = np.empty((height, width, 3), np.uint8)
    for c in range(3):
        plane = 0.5 + 0.3 * np.sin(2 * np.pi * (3 + c) * x + 5 * y) * np.cos(2 * np.pi * 4 * y + c)
        plane += 0.2 * ((x * 8 + y * 5 + c) % 1 > 0.5)  # hard edges
        plane += rng.normal(0, 0.02, (height, width)).astype(np.float32)
        img[..., c] = (np.clip(plane, 0, 1) * 255).astype(np.uint8)
    return Image.fromarray(img)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class _EnoughTiles(Exception):
    pass


def worker(model: str, scale: int, width: int, height: int, tile: int | None, threads: int | None,
           max_tiles: int | None = None, precision: str = "fp32") -> dict:
    import torch

    from srlab.inference import Upscaler
    from srlab.models import build_model
    from srlab.runtime import configure_torch

    threads = configure_torch(threads)
    torch.manual_seed(0)
    up = Upscaler.from_network(build_model(model, scale), model, precision=precision)
    img = synthetic_photo(width, height)
    base = rss_mb()
    tiles: list[int] = []

    def progress(done: int, total: int) -> None:
        tiles.append(total)
        if max_tiles and done >= max_tiles and done < total:
            raise _EnoughTiles

    start = time.perf_counter()
    try:
        up.upscale(img, tile=tile, progress=progress)
        done = len(tiles)
    except _EnoughTiles:
        done = max_tiles
    seconds = time.perf_counter() - start
    total = tiles[-1] if tiles else 1
    out_mp = width * height * scale * scale / 1e6
    # A partial run (max_tiles) extrapolates the time, and adds the output pages not yet written (numpy
    # allocates the output lazily) to the peak: the rest of the run only fills them.
    unwritten_mb = out_mp * 3 * (1 - done / total)
    seconds *= total / done
    return {"model": model, "scale": scale, "in_mp": width * height / 1e6, "out_mp": out_mp,
            "tile": tile, "tiles": total, "tiles_run": done, "overlap": up.receptive_field,
            "seconds": seconds, "s_per_out_mp": seconds / out_mp, "peak_rss_mb": rss_mb() + unwritten_mb,
            "base_rss_mb": base, "threads": threads, "precision": precision}


def untiled_gb(model: str, scale: int, width: int, height: int) -> float:
    """Rough peak activation memory of an untiled run: 3 feature maps of the widest layer alive."""
    from srlab.models import build_model

    net = build_model(model, scale)
    widest = max(m.out_channels for m in net.modules() if hasattr(m, "out_channels"))
    return 3 * widest * width * height * 4 / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["espcn", "fsrcnn", "edsr_baseline"])
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--max-untiled-gb", type=float, default=16.0,
                        help="skip untiled runs estimated above this much activation memory")
    parser.add_argument("--no-untiled", action="store_true")
    parser.add_argument("--scales", type=int, nargs="+", default=[2, 4], choices=(2, 4))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--max-tiles", type=int, default=None,
                        help="stop after this many tiles and extrapolate the time (slow networks); the peak RSS "
                             "then adds the output pages not yet written")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(**json.loads(args.worker))))
        return

    rows = []
    print(f"{'model':<14} {'scale':>5} {'in MP':>6} {'tile':>6} {'tiles':>6} {'s':>8} {'s/outMP':>8} "
          f"{'peakRSS MB':>10} {'base MB':>8}", flush=True)
    for model in args.models:
        for scale, width, height in [c for c in CONFIGS if c[0] in args.scales]:
            for tile in [args.tile, None]:
                if tile is None:
                    gb = untiled_gb(model, scale, width, height)
                    if args.no_untiled or gb > args.max_untiled_gb:
                        print(f"{model:<14} {scale:>5} {width * height / 1e6:>6.1f} {'none':>6}  skipped "
                              f"(untiled needs ~{gb:.0f} GB of activations; --max-untiled-gb {args.max_untiled_gb:g})",
                              flush=True)
                        continue
                job = {"model": model, "scale": scale, "width": width, "height": height, "tile": tile,
                       "threads": args.threads, "precision": args.precision,
                       "max_tiles": args.max_tiles if tile else None}
                proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job)], check=False,
                                      capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
                if proc.returncode != 0:
                    print(f"{model:<14} {scale:>5} {'':>6} {tile or 'none':>6}  FAILED (rc {proc.returncode}): "
                          f"{proc.stderr.strip().splitlines()[-1:] }", flush=True)
                    continue
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                rows.append(r)
                run = f"{r['tiles_run']}/{r['tiles']}" if r["tiles_run"] < r["tiles"] else str(r["tiles"])
                print(f"{model:<14} {scale:>5} {r['in_mp']:>6.1f} {tile or 'none'!s:>6} {run:>6} "
                      f"{r['seconds']:>8.1f} {r['s_per_out_mp']:>8.3f} {r['peak_rss_mb']:>10.0f} "
                      f"{r['base_rss_mb']:>8.0f}", flush=True)
    if rows:
        print(f"threads: {rows[0]['threads']}; output is 48 MP in every row; RSS includes the output image")


if __name__ == "__main__":
    main()
