"""Upscale photos from the command line.

    python -m srlab.upscale photo.jpg -o photo_x4.png                # one file -> that file name
    python -m srlab.upscale photos/ more.png -o out/ --model deploy/best --tile 256
    python -m srlab.upscale photo.jpg -o out/ --model bicubic --scale 4
    python -m srlab.upscale photo.jpg -o out/ --model fsrcnn_x4      # a network that ships with srlab

Inputs are files or folders (searched recursively for images). Outputs are PNGs named
``<name>_x<scale>.png`` in the ``-o`` folder (sub-folders of an input folder are mirrored), or ``-o``
itself when it names a ``.png`` file and there is a single input file. A file that fails is reported
(on stderr, by name) and the rest go on; the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from srlab.imageio import ImageReadError, is_image_file
from srlab.inference import DEFAULT_MAX_INPUT_PIXELS, DEFAULT_TILE, PRECISIONS, Upscaler, default_model


def collect_inputs(inputs: list[str]) -> tuple[list[tuple[Path, Path]], list[str]]:
    """``[(file, relative output stem base)]`` and the inputs that do not exist."""
    found: list[tuple[Path, Path]] = []
    missing: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p)):
                found.append((f, f.relative_to(path)))
        elif path.is_file():
            found.append((path, Path(path.name)))
        else:
            missing.append(item)
    return found, missing


def output_path(rel: Path, out: Path, scale: int, single_file: bool) -> Path:
    if single_file and out.suffix.lower() == ".png":
        return out
    return out / rel.parent / f"{rel.stem}_x{scale}.png"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m srlab.upscale", description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", metavar="IN", help="image files or folders (recursive)")
    parser.add_argument("-o", "--output", required=True, help="output folder, or a .png name for one input file")
    parser.add_argument("--model", default=None,
                        help="deploy folder, .ckpt, 'bicubic', or a shipped folder's name such as fsrcnn_x4 "
                             "(default: deploy/best, else the shipped default: see srlab/weights/README.md)")
    parser.add_argument("--scale", type=int, default=None, help="scale of the bicubic baseline (default 4)")
    parser.add_argument("--tile", type=int, default=DEFAULT_TILE,
                        help=f"LR tile size; 0 = whole image at once (default {DEFAULT_TILE})")
    parser.add_argument("--overlap", type=int, default=None,
                        help="LR context per tile side (default: the network's receptive field)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="bf16: autocast to bfloat16, ~2x faster on CPUs with AVX512-BF16/AMX; measured cost "
                             "under 0.01 dB PSNR on Set5 for every network but FSRCNN here (BENCHMARKS.md)")
    parser.add_argument("--max-pixels", type=float, default=DEFAULT_MAX_INPUT_PIXELS / 1e6,
                        help=f"refuse inputs above this many megapixels (default {DEFAULT_MAX_INPUT_PIXELS / 1e6:g})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scale = args.scale
    if args.model is None:
        args.model = str(default_model())
        print(f"model: {args.model}", file=sys.stderr)
    if scale is None and args.model.lower() == "bicubic":
        scale = 4
    try:
        upscaler = Upscaler.load(args.model, scale=scale, threads=args.threads, precision=args.precision,
                                 max_input_pixels=int(args.max_pixels * 1e6))
    except (OSError, ValueError) as err:
        print(f"error: cannot load model {args.model}: {err}", file=sys.stderr)
        return 2
    files, missing = collect_inputs(args.inputs)
    failed = [f"{m}: no such file or folder" for m in missing]
    out = Path(args.output)
    single = len(files) == 1 and not missing and Path(args.inputs[0]).is_file() and len(args.inputs) == 1
    if not single and out.suffix.lower() == ".png" and files:
        print(f"error: -o {out} names a file, but there are {len(files)} inputs; give a folder", file=sys.stderr)
        return 2
    tile = args.tile if args.tile and args.tile > 0 else None

    files_bar = tqdm(files, desc=f"{upscaler.name} x{upscaler.scale}", unit="img", disable=len(files) < 2)
    tiles_bar = tqdm(total=0, unit="tile", leave=False)
    for path, rel in files_bar:
        tiles_bar.reset(total=0)
        tiles_bar.set_description(path.name)

        def progress(done: int, total: int) -> None:
            if tiles_bar.total != total:
                tiles_bar.reset(total=total)
            tiles_bar.n = done
            tiles_bar.refresh()

        target = output_path(rel, out, upscaler.scale, single)
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            result = upscaler.upscale(path, tile=tile, overlap=args.overlap, progress=progress)
            target.parent.mkdir(parents=True, exist_ok=True)
            result.save(tmp, format="PNG")
            tmp.replace(target)  # no half-written PNG under the real name
        except (ImageReadError, OSError, ValueError, RuntimeError, MemoryError) as err:
            tmp.unlink(missing_ok=True)
            msg = str(err) if str(path) in str(err) else f"{path}: {err}"
            failed.append(msg)
            tqdm.write(f"FAILED {msg}", file=sys.stderr)
            continue
        tqdm.write(f"{path} -> {target} ({result.width}x{result.height})")
    tiles_bar.close()
    files_bar.close()
    if failed:
        print(f"{len(failed)} of {len(files) + len(missing)} input(s) failed:", file=sys.stderr)
        for msg in failed:
            print(f"  {msg}", file=sys.stderr)
        return 1
    if not files:
        print("no images found", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
