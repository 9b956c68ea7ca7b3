"""DIV2K (Agustsson & Timofte, "NTIRE 2017 challenge on single image super-resolution: dataset and
study", CVPR Workshops 2017): 800 training + 100 validation 2K images, with bicubic LR versions.

Layout on disk (the official archives' own layout, so a folder someone already downloaded and
unzipped by hand is used as is, without any request)::

    root/DIV2K_train_HR/0001.png ... 0800.png
    root/DIV2K_train_LR_bicubic/X4/0001x4.png ...
    root/DIV2K_valid_HR/0801.png ... 0900.png
    root/DIV2K_valid_LR_bicubic/X4/0801x4.png ...

Missing folders are downloaded (size + sha256 verified), extracted into a hidden staging folder,
count-checked, and only then renamed into place, so a folder present under ``root`` is complete.
Archives are downloaded into ``root/archives/`` and DELETED once their folder is installed: DIV2K's
archives are as large as their contents (the train HR zip alone is 3.5 GB), and the verified
folder is what later runs use. Delete a folder to have it downloaded again.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from .download import download as _download
from .download import extract_zip

__all__ = ["CHECKSUMS", "OFFICIAL", "SCALES", "SPLITS", "prepare_div2k"]

log = logging.getLogger(__name__)

OFFICIAL = "https://data.vision.ee.ethz.ch/cvl/DIV2K"
SCALES = (2, 3, 4)
# Image ids per split. The test split (0901-1000) has public LR images only: its HR images were
# withheld for the NTIRE challenge and were never released.
SPLITS: dict[str, range] = {"train": range(1, 801), "valid": range(801, 901)}

# Archive name -> (size in bytes, sha256), keyed by file name so that a mirror (base_url) is held
# to the same bytes. Source: tensorflow/datasets, tensorflow_datasets/url_checksums/div2k.txt at
# commit 333639b37af6c6fedf3610a4a2d42f1c6ef6f7d5 (TFDS recorded them from the official site).
CHECKSUMS: dict[str, tuple[int, str]] = {
    "DIV2K_train_HR.zip": (3530603713, "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335"),
    "DIV2K_train_LR_bicubic_X2.zip": (925390592, "a53a424317575838dadce4bcd97cf7b744d6855f43740ed5f0245af3cf4bd850"),
    "DIV2K_train_LR_bicubic_X3.zip": (427847282, "ad5c8e5507e2765823d3c2c5bd0934842efcd487c5370604c224090898b3163a"),
    "DIV2K_train_LR_bicubic_X4.zip": (246914039, "f006b837f4eb52b82909aa01478e6d6d199eefce932179491d0c9dbb706dde3a"),
    "DIV2K_valid_HR.zip": (448993893, "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc"),
    "DIV2K_valid_LR_bicubic_X2.zip": (117763600, "60eed9875c697df51204aa579e2a699e1d5215095788a097ff54dd17e2664d57"),
    "DIV2K_valid_LR_bicubic_X3.zip": (54513392, "04b9a2ed3b4a0715d3924d3ae8514830c3328fac8d30512ce716d6f419e052a3"),
    "DIV2K_valid_LR_bicubic_X4.zip": (31505881, "a50a5d1c4b88de4e8d300d8fb2b904c52fe93b2b298a4899697760d7cbb6d553"),
}

_STAGING = ".staging"
_ARCHIVES = "archives"


def _check_args(scale: int, split: str) -> None:
    if split == "test":
        raise ValueError(
            "DIV2K split 'test' is not available: its HR images (0901-1000) were never made public. "
            "Use split='valid' (0801-0900) for evaluation, as the SR literature does."
        )
    if split not in SPLITS:
        raise ValueError(f"unknown DIV2K split {split!r}; expected one of {sorted(SPLITS)}")
    if scale not in SCALES:
        raise ValueError(f"DIV2K has bicubic LR images for scales {list(SCALES)}, not {scale!r}")


def _layout_problem(folder: Path, expected: list[str]) -> str | None:
    """``None`` if ``folder`` holds exactly the ``expected`` PNGs, else what is wrong with it."""
    present = {p.name for p in folder.iterdir() if p.suffix.lower() == ".png"}
    missing = sorted(set(expected) - present)
    extra = sorted(present - set(expected))
    if not missing and not extra:
        return None
    problem = f"{len(present)} PNG images instead of {len(expected)}"
    if missing:
        problem += f"; missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}"
    if extra:
        problem += f"; unexpected {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}"
    return problem


def _ensure_folder(
    root: Path,
    relative: str,
    expected: list[str],
    archive_name: str,
    *,
    download: bool,
    base_url: str,
) -> Path:
    """Return ``root/relative`` holding exactly ``expected``, downloading ``archive_name`` if needed.

    ``relative`` is also the folder's path inside the archive (DIV2K's zips carry their layout).
    """
    folder = root / relative
    if folder.is_dir():
        problem = _layout_problem(folder, expected)
        if problem is None:
            return folder
        # Never download over a folder we did not install: it may be someone's own copy.
        raise RuntimeError(
            f"DIV2K folder {folder} is not as expected ({problem}). Fix it, or delete it to have "
            f"{archive_name} downloaded and extracted again."
        )
    if not download:
        where = f"DIV2K root {root} does not exist" if not root.exists() else f"{folder} does not exist"
        raise FileNotFoundError(
            f"{where}. Pass download=True to fetch {archive_name} from {base_url}, or point root at a "
            f"folder in the official layout (e.g. root/DIV2K_train_HR/0001.png)."
        )

    size, sha256 = CHECKSUMS.get(archive_name, (None, None))
    if sha256 is None:
        log.warning("no known checksum for %s; it is downloaded unverified", archive_name)
    url = f"{base_url.rstrip('/')}/{archive_name}"
    archive = _download(url, root / _ARCHIVES / archive_name, size=size, sha256=sha256)

    staging = root / _STAGING / archive_name.removesuffix(".zip")
    shutil.rmtree(staging, ignore_errors=True)  # left by a run killed between extraction and rename
    extract_zip(archive, staging)
    try:
        extracted = staging / relative
        if not extracted.is_dir():
            raise RuntimeError(f"{archive} does not contain the folder {relative}/ that DIV2K's archives have")
        problem = _layout_problem(extracted, expected)
        if problem is not None:
            raise RuntimeError(f"{archive} holds {problem} in {relative}/; the archive is kept for inspection")
        folder.parent.mkdir(parents=True, exist_ok=True)
        os.replace(extracted, folder)  # atomic: the folder appears complete or not at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            (root / _STAGING).rmdir()
        except OSError:
            pass  # not empty (another archive is being staged) or already gone
    # Installed and verified: the archive is no longer needed (see module docstring).
    archive.unlink()
    try:
        archive.parent.rmdir()
    except OSError:
        pass
    log.info("installed %s", folder)
    return folder


def prepare_div2k(
    root: Path,
    scale: int,
    split: str,
    *,
    download: bool = True,
    base_url: str = OFFICIAL,
    lr: bool = True,
) -> list[tuple[Path, Path | None]]:
    """Make DIV2K ``split`` available under ``root``; return sorted ``(hr_path, lr_path)`` pairs.

    ``split`` is ``"train"`` (0001-0800) or ``"valid"`` (0801-0900). There is no ``"test"``: the
    DIV2K test HR images are not public. ``scale`` (2, 3 or 4) selects the bicubic LR folder;
    with ``lr=False`` only HR images are prepared and every ``lr_path`` is ``None`` (for pipelines
    that make their own LR inputs). Folders already present in the official layout are used without
    any request; missing ones are downloaded from ``base_url`` (size + sha256 checked) when
    ``download`` is true, otherwise FileNotFoundError says what is missing.
    """
    _check_args(scale, split)
    root = Path(root).expanduser()
    ids = list(SPLITS[split])
    hr_names = [f"{i:04d}.png" for i in ids]
    hr_dir = _ensure_folder(
        root, f"DIV2K_{split}_HR", hr_names, f"DIV2K_{split}_HR.zip", download=download, base_url=base_url
    )
    if not lr:
        return [(hr_dir / name, None) for name in hr_names]
    lr_names = [f"{i:04d}x{scale}.png" for i in ids]
    lr_dir = _ensure_folder(
        root,
        f"DIV2K_{split}_LR_bicubic/X{scale}",
        lr_names,
        f"DIV2K_{split}_LR_bicubic_X{scale}.zip",
        download=download,
        base_url=base_url,
    )
    return [(hr_dir / h, lr_dir / lo) for h, lo in zip(hr_names, lr_names)]
