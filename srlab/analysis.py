"""Where a dataset's images sit on the complexity-entropy plane, at HR and at each LR scale.

For every image this computes the normalised permutation entropy ``H`` and the statistical complexity
``C`` of its 2-D ordinal patterns (Bandt-Pompe symbols of ``dy x dx`` pixel windows), i.e. the
complexity-entropy plane of Ribeiro et al. 2012, "Complexity-entropy causality plane as a complexity
measure for two-dimensional patterns" (PLoS ONE 7(8): e40689). ``H`` near 1 means every local ordering
of pixels is equally likely (noise-like texture); ``H`` near 0 means one ordering dominates (smooth
ramps, flat areas). ``C`` is large for structured images in between and small at both ends.

Why it matters for SR: the LR images a network sees are bicubic downscales of the HR ones, and how far an
image moves on the plane between HR and x2/x3/x4 says how much local structure the downscale destroys
(and therefore how much the network has to invent). Plotting HR/x2/x3/x4 per image shows that at a glance.

The measures themselves come from :mod:`ordpy` (``complexity_entropy``, and the theoretical boundary
curves ``minimum_complexity_entropy`` / ``maximum_complexity_entropy``); this module only prepares the
images (crop, mod-crop, MATLAB-style bicubic downscale, BT.601 luma) and reports.

Run::

    python -m srlab.analysis data=samples                    # scikit-image photos, train split
    python -m srlab.analysis data=folder data.train.roots=[/photos] analysis.dx=3 analysis.max_images=50

Or without Hydra: :func:`analyse_images` then :func:`write_report`.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from srlab.imageio import ImageReadError, read_image
from srlab.resize import bicubic_downscale, modcrop

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
CSV_COLUMNS = ("image", "scale", "height", "width", "entropy", "complexity")
PLOT_FILES = {
    "plane": "complexity_entropy_plane.png",
    "complexity": "complexity_by_scale.png",
    "entropy": "entropy_by_scale.png",
}

def scale_label(scale: int) -> str:
    return "HR" if scale == 1 else f"x{scale}"


def luma(rgb: np.ndarray) -> np.ndarray:
    """``uint8`` RGB ``H x W x 3`` -> float64 BT.601 Y in [16/255, 235/255], ``H x W``.

    Same Y as the PSNR/SSIM of :mod:`srlab.metrics` (:func:`srlab.color.rgb_to_y`, MATLAB constants), in
    float64 and not re-quantised to ``uint8``: rounding would merge neighbouring grey levels into ties, and
    the ordinal pattern of tied pixels is decided by position alone (ordpy's stable argsort), which would
    bias ``H`` down for a reason that has nothing to do with the image. Pixels equal in RGB still give
    exactly equal Y, so genuinely flat areas stay flat.
    """
    import torch

    from srlab.color import rgb_to_y

    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB array, got shape {rgb.shape}")
    chw = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).to(torch.float64) / 255.0
    return rgb_to_y(chw)[0].numpy()


def center_crop(img: np.ndarray, max_side: int | None) -> np.ndarray:
    """Crop the central ``max_side x max_side`` region (each side only if it is longer).

    A crop rather than a resize: resizing would itself change the ordinal statistics that are being
    measured across scales; a crop keeps native pixels and only bounds the cost (see ``max_side`` in
    ``conf/analysis.yaml``). The crop happens before the downscales, so all scales see the same content.
    """
    if max_side is None:
        return img
    if max_side < 1:
        raise ValueError(f"max_side must be positive or None, got {max_side}")
    h, w = img.shape[:2]
    top, left = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
    return img[top : top + max_side, left : left + max_side]


def at_scale(hr: np.ndarray, scale: int) -> np.ndarray:
    """The LR image a SR model would get for ``scale`` (``1`` returns ``hr`` itself): benchmark protocol,
    mod-crop then MATLAB-style antialiased bicubic (:func:`srlab.resize.bicubic_downscale`)."""
    if scale == 1:
        return hr
    return bicubic_downscale(modcrop(hr, scale), scale)


def min_size_ok(height: int, width: int, dx: int, dy: int) -> bool:
    """Whether an image has at least ``(dx*dy)!`` embedding windows.

    With fewer windows than possible patterns not every pattern can even occur, so ``H`` is capped
    below 1 by the image size alone and the point on the plane says nothing about the image.
    """
    windows = max(0, height - dy + 1) * max(0, width - dx + 1)
    return windows >= math.factorial(dx * dy)


def complexity_entropy(gray: np.ndarray, dx: int, dy: int) -> tuple[float, float]:
    """``(H, C)`` of a 2-D array via :func:`ordpy.complexity_entropy` (``dx`` horizontal, ``dy`` vertical)."""
    import ordpy

    h, c = ordpy.complexity_entropy(gray, dx=dx, dy=dy)
    return float(h), float(c)


def _check_params(scales: Sequence[int], dx: int, dy: int) -> list[int]:
    scales = [int(s) for s in scales]
    if not scales or any(s < 1 for s in scales):
        raise ValueError(f"scales must be positive integers (1 = HR), got {scales}")
    if len(set(scales)) != len(scales):
        raise ValueError(f"scales repeat: {scales}")
    if dx < 1 or dy < 1 or dx * dy < 2:
        raise ValueError(f"need dx, dy >= 1 and dx*dy >= 2 for ordinal patterns, got dx={dx}, dy={dy}")
    if dx * dy > 8:
        # ordpy enumerates (dx*dy)! patterns for the boundary curves and needs many more windows than
        # that for a stable estimate: 9! = 362880 already exceeds a 512 x 512 crop.
        warnings.warn(f"dx*dy = {dx * dy}: (dx*dy)! patterns need very large images; expect a biased H", stacklevel=3)
    return scales


def _display_names(paths: Sequence[Path]) -> list[str]:
    """File names, or full paths where two files share a name (folders of ``0001.png``...)."""
    names = [p.name for p in paths]
    dup = {n for n in names if names.count(n) > 1}
    return [str(p) if p.name in dup else p.name for p in paths]


def analyse_images(
    paths: Sequence[Path | str],
    scales: Sequence[int] = (1, 2, 3, 4),
    dx: int = 2,
    dy: int = 2,
    max_side: int | None = 512,
) -> list[dict[str, Any]]:
    """One row per (image, scale): ``image, scale, height, width, entropy, complexity``.

    Images are read one at a time (not all first) so memory stays
    flat on a DIV2K-sized folder. Unreadable files are skipped with a warning naming them; a scale at which
    an image is too small for the embedding (:func:`min_size_ok`) is skipped with a warning too.
    ``height``/``width`` are those of the array actually analysed at that scale.
    """
    scales = _check_params(scales, dx, dy)
    paths = [Path(p) for p in paths]
    rows: list[dict[str, Any]] = []
    for path, name in zip(paths, _display_names(paths)):
        try:
            hr = center_crop(read_image(path), max_side)
        except ImageReadError as err:
            warnings.warn(f"skipping unreadable image: {err}", stacklevel=2)
            continue
        for scale in scales:
            h, w = hr.shape[0] // scale, hr.shape[1] // scale
            if h < 1 or w < 1 or not min_size_ok(h, w, dx, dy):
                warnings.warn(
                    f"skipping {path} at {scale_label(scale)}: {w}x{h} pixels is too small for a {dx}x{dy} "
                    f"embedding (needs at least {math.factorial(dx * dy)} windows)",
                    stacklevel=2,
                )
                continue
            gray = luma(at_scale(hr, scale))
            entropy, complexity = complexity_entropy(gray, dx, dy)
            rows.append({"image": name, "scale": scale, "height": gray.shape[0], "width": gray.shape[1],
                         "entropy": entropy, "complexity": complexity})
    return rows


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scale (in order of first appearance): ``scale, n, entropy_mean/std, complexity_mean/std``."""
    out = []
    for scale in dict.fromkeys(r["scale"] for r in rows):
        hs = np.array([r["entropy"] for r in rows if r["scale"] == scale])
        cs = np.array([r["complexity"] for r in rows if r["scale"] == scale])
        out.append({"scale": scale, "n": len(hs), "entropy_mean": float(hs.mean()), "entropy_std": float(hs.std()),
                    "complexity_mean": float(cs.mean()), "complexity_std": float(cs.std())})
    return out


def format_summary(rows: Sequence[dict[str, Any]]) -> str:
    lines = [f"{'scale':>5}  {'n':>4}  {'H mean':>7}  {'H std':>6}  {'C mean':>7}  {'C std':>6}"]
    for s in summarise(rows):
        lines.append(f"{scale_label(s['scale']):>5}  {s['n']:>4}  {s['entropy_mean']:7.4f}  {s['entropy_std']:6.4f}  "
                     f"{s['complexity_mean']:7.4f}  {s['complexity_std']:6.4f}")
    return "\n".join(lines)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row[k] for k in CSV_COLUMNS})
    return path


def _pyplot():
    """pyplot on the Agg backend: reports are written on headless machines, and must never open windows."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _boundary_curves(dx: int, dy: int) -> tuple[np.ndarray, np.ndarray] | None:
    """ordpy's theoretical lower/upper limits of C for a given H, for ``(dx*dy)!`` patterns (or ``None``
    if this ordpy lacks them). ``m`` fills the upper curve between its cusps; capped so that large
    embeddings (``(dx*dy)! - 1`` cusps already) stay cheap."""
    import ordpy

    if not (hasattr(ordpy, "minimum_complexity_entropy") and hasattr(ordpy, "maximum_complexity_entropy")):
        return None
    n_patterns = math.factorial(dx * dy)
    if n_patterns > 5040:  # 7!: beyond this the curves cost more than the analysis itself
        return None
    lower = np.asarray(ordpy.minimum_complexity_entropy(dx=dx, dy=dy, size=200))
    upper = np.asarray(ordpy.maximum_complexity_entropy(dx=dx, dy=dy, m=max(1, 2000 // n_patterns)))
    return lower, upper


def plot_plane(rows: Sequence[dict[str, Any]], path: Path, plot_first: int, dx: int, dy: int) -> Path:
    """The first ``plot_first`` images on the plane: one colour per image, one marker per scale, each
    image's scales joined HR -> x2 -> ... so the direction a downscale moves an image is visible."""
    plt = _pyplot()
    names = list(dict.fromkeys(r["image"] for r in rows))[: max(0, plot_first)]
    scales = list(dict.fromkeys(r["scale"] for r in rows))
    markers = dict(zip(scales, "o^sDvP*Xh<>p"))
    cmap = plt.get_cmap("tab20" if len(names) > 10 else "tab10")

    fig, ax = plt.subplots(figsize=(10, 7))
    shown = [r for r in rows if r["image"] in names]
    curves = _boundary_curves(dx, dy)
    if curves is not None:
        ax.plot(*curves[0].T, color="0.4", lw=1, ls="--", label="min C (theory)")
        ax.plot(*curves[1].T, color="0.4", lw=1, ls=":", label="max C (theory)")
    for i, name in enumerate(names):
        pts = sorted((r for r in shown if r["image"] == name), key=lambda r: r["scale"])
        color = cmap(i % cmap.N)
        ax.plot([r["entropy"] for r in pts], [r["complexity"] for r in pts], "-", color=color, lw=1, alpha=0.7)
        for r in pts:
            ax.plot(r["entropy"], r["complexity"], markers.get(r["scale"], "o"), color=color, ms=6)
        ax.annotate(Path(name).stem, (pts[0]["entropy"], pts[0]["complexity"]), fontsize=7, color=color,
                    xytext=(4, 3), textcoords="offset points")
        ax.plot([], [], "-", color=color, label=Path(name).stem)  # one legend entry per image
    for scale in scales:
        ax.plot([], [], markers.get(scale, "o"), color="k", ls="none", label=scale_label(scale))

    if shown:
        # Natural images sit in a narrow band near H = 1; zoom there instead of showing the empty plane.
        h_lo = max(0.0, min(r["entropy"] for r in shown) - 0.05)
        c_hi = max(r["complexity"] for r in shown)
        if curves is not None:
            upper = curves[1]
            c_hi = max(c_hi, float(upper[upper[:, 0] >= h_lo, 1].max(initial=0.0)))
        ax.set_xlim(h_lo, 1.005)
        ax.set_ylim(0.0, c_hi * 1.08 + 1e-3)
    ax.set_xlabel("normalised permutation entropy H")
    ax.set_ylabel("statistical complexity C")
    ax.set_title(f"Complexity-entropy plane, {dx}x{dy} ordinal patterns of luma (first {len(names)} images)")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_by_scale(rows: Sequence[dict[str, Any]], key: str, path: Path) -> Path:
    """Box plot of ``key`` per scale, means marked, every image overlaid as a faint dot (small datasets
    have too few images for a box alone to be honest)."""
    plt = _pyplot()
    scales = list(dict.fromkeys(r["scale"] for r in rows))
    values = [[r[key] for r in rows if r["scale"] == s] for s in scales]
    positions = list(range(1, len(scales) + 1))
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.boxplot(values, positions=positions, showmeans=True, widths=0.5)
    rng = np.random.default_rng(0)  # fixed jitter: the same data gives the same picture
    for pos, vals in zip(positions, values):
        ax.scatter(pos + rng.uniform(-0.12, 0.12, len(vals)), vals, s=10, alpha=0.5, color="tab:blue", zorder=3)
    ax.set_xticks(positions)
    ax.set_xticklabels([scale_label(s) for s in scales])
    label = {"entropy": "normalised permutation entropy H", "complexity": "statistical complexity C"}[key]
    ax.set_xlabel("scale")
    ax.set_ylabel(label)
    ax.set_title(f"{key.capitalize()} by scale ({len(values[0]) if values else 0} images)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(rows: Sequence[dict[str, Any]], out_dir: Path | str, plot_first: int = 20,
                 dx: int = 2, dy: int = 2) -> dict[str, Path]:
    """Write ``analysis.csv`` and the three plots into ``out_dir``; returns their paths by key
    (``csv``, ``plane``, ``complexity``, ``entropy``). ``dx``/``dy`` only choose the boundary curves."""
    if not rows:
        raise ValueError("no analysis rows to report (no readable images large enough for the embedding)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "csv": write_csv(rows, out_dir / "analysis.csv"),
        "plane": plot_plane(rows, out_dir / PLOT_FILES["plane"], plot_first, dx, dy),
        "complexity": plot_by_scale(rows, "complexity", out_dir / PLOT_FILES["complexity"]),
        "entropy": plot_by_scale(rows, "entropy", out_dir / PLOT_FILES["entropy"]),
    }


def _run(cfg) -> dict[str, Path]:
    """The Hydra job: instantiate only the chosen split's source (the other may need a download)."""
    import hydra.utils

    a = cfg.analysis
    if a.split not in ("train", "val"):
        raise ValueError(f"analysis.split must be train or val, got {a.split!r}")
    source = hydra.utils.instantiate(cfg.data[a.split])
    paths = [r.hr for r in source.records()]
    if a.max_images is not None:
        paths = paths[: int(a.max_images)]
    print(f"analysing {len(paths)} {a.split} images at {', '.join(scale_label(int(s)) for s in a.scales)} "
          f"({a.dx}x{a.dy} ordinal patterns, center crop {a.max_side})", flush=True)
    rows = analyse_images(paths, list(a.scales), int(a.dx), int(a.dy), a.max_side)
    if not rows:
        raise SystemExit("no image could be analysed (all unreadable or too small); nothing written")
    files = write_report(rows, Path(a.output), int(a.plot_first), int(a.dx), int(a.dy))
    print(format_summary(rows))
    print(f"wrote {len(rows)} rows and {len(files) - 1} plots to {Path(a.output).resolve()}")
    return files


def main() -> None:
    import hydra

    # Absolute config path: the module is run as ``python -m srlab.analysis`` from anywhere in the repo.
    hydra.main(config_path=str(CONF_DIR), config_name="analysis", version_base="1.3")(_run)()


if __name__ == "__main__":
    main()
