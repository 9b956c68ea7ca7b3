"""The classic SR image sets: Set5, Set14, BSD100, Urban100 (test) and T91, BSD200 (training).

Each set is a flat folder of HR images, ``data_dir/<name>/``. Where one is missing it is fetched
file by file from the public GitHub repository it was copied from, pinned to a commit, and every
file is sha256-checked against ``benchmark_manifest.json`` (shipped with the package; it holds
names and hashes only, built from the project's ``datasets/SOURCES.md`` and ``MANIFEST.sha256``).
The files land in a hidden temporary folder that is renamed to ``data_dir/<name>`` only when all
of them verified, so a set folder that exists is complete.

Sizes: Urban100 is about 135 MB, BSD200 52 MB, BSD100 27 MB, T91 16 MB, Set14 5 MB, Set5 1 MB.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import TypedDict
from urllib.parse import quote

from tqdm import tqdm

from .download import download as _download

__all__ = ["BENCHMARKS", "GITHUB_RAW", "IMAGE_SUFFIXES", "ensure_benchmark", "load_manifest"]

log = logging.getLogger(__name__)

GITHUB_RAW = "https://raw.githubusercontent.com"
IMAGE_SUFFIXES = frozenset({".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"})


class SetSource(TypedDict):
    repo: str  # "owner/name" on GitHub
    commit: str  # full commit hash: the files are pinned, a moved branch cannot change them
    path: str  # folder inside the repository, with a trailing "/"
    files: dict[str, str]  # file name -> sha256


@functools.cache
def load_manifest() -> dict[str, SetSource]:
    """The shipped manifest: set name -> where its files come from and their sha256."""
    text = resources.files(__package__).joinpath("benchmark_manifest.json").read_text(encoding="utf-8")
    return json.loads(text)


BENCHMARKS: tuple[str, ...] = tuple(load_manifest())


def _has_images(folder: Path) -> bool:
    return folder.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def ensure_benchmark(
    name: str,
    data_dir: Path,
    *,
    download: bool = True,
    base_url: str = GITHUB_RAW,
) -> Path:
    """Return ``data_dir/name``, downloading the set first if that folder has no images.

    A folder that already holds images is returned as is, without any request (it may be a copy
    the user made; its file count is compared with the manifest and a difference logged).
    Otherwise, with ``download`` true, every file is fetched from
    ``{base_url}/{repo}/{commit}/{path}{file}`` and sha256-verified. ``data_dir`` may be read-only
    (a shared mount): then a present set works and a missing one is a clear error.
    """
    manifest = load_manifest()
    if name not in manifest:
        raise ValueError(f"unknown benchmark set {name!r}; known sets: {', '.join(manifest)}")
    source = manifest[name]
    data_dir = Path(data_dir).expanduser()
    target = data_dir / name

    if _has_images(target):
        count = sum(1 for p in target.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if count != len(source["files"]):
            log.warning("%s holds %d images; the published %s has %d", target, count, name, len(source["files"]))
        return target
    if not download:
        raise FileNotFoundError(
            f"benchmark set {name} not found: {target} does not exist or holds no images. "
            f"Pass download=True to fetch it from github.com/{source['repo']}, or copy it there."
        )
    if target.exists() and any(target.iterdir()):
        # Not ours to replace: it has files, just no images (e.g. a user's notes or a wrong copy).
        raise RuntimeError(f"{target} exists but holds no images; move it away to download {name} there")

    prefix = f".{name}.partial-"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        # Leftovers of a killed run are never trusted; remove them (concurrent downloads of the
        # same set into the same data_dir are not supported).
        for stale in data_dir.glob(prefix + "*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=data_dir))
        tmp.chmod(0o755)  # mkdtemp makes it private; the final set folder should be readable by all
    except OSError as err:
        raise PermissionError(
            f"benchmark set {name} is missing from {data_dir}, and it cannot be downloaded there "
            f"({err.strerror or err}). Use a writable data_dir, or put the set at {target}."
        ) from None

    try:
        prefix = f"{base_url.rstrip('/')}/{source['repo']}/{source['commit']}/{quote(source['path'])}"
        for file_name, sha256 in tqdm(source["files"].items(), desc=f"downloading {name}", unit="file", leave=False):
            _download(prefix + quote(file_name), tmp / file_name, sha256=sha256, progress=False)
        if target.exists():
            target.rmdir()  # empty (checked above): os.replace cannot replace a directory with one
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("downloaded %s (%d files) to %s", name, len(source["files"]), target)
    return target
