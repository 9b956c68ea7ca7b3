"""ensure_benchmark against a 127.0.0.1 server laid out like raw.githubusercontent.com, and the
shipped manifest against the real files where the shared datasets folder is present."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from _http import StaticServer

from srlab.data import benchmarks
from srlab.data.benchmarks import ensure_benchmark, load_manifest
from srlab.data.download import DownloadError

# CI lays the repository out next to shared/ (…/main and …/shared/datasets).
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"

FILES = {"baby.png": b"\x89PNG fake baby", "bird one.png": b"\x89PNG fake bird"}  # a space: URL quoting
REPO, COMMIT, PATH = "someone/sr-sets", "0123456789abcdef0123456789abcdef01234567", "testsets/Tiny/HR/"


@pytest.fixture
def server() -> Iterator[StaticServer]:
    """Laid out like raw.githubusercontent.com: /{REPO}/{COMMIT}/{PATH}{file}."""
    s = StaticServer(dict(FILES), prefix=f"/{REPO}/{COMMIT}/{PATH}")
    yield s
    s.close()


def use_manifest(monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> None:
    manifest = {"Tiny": {"repo": REPO, "commit": COMMIT, "path": PATH, "files": files}}
    monkeypatch.setattr(benchmarks, "load_manifest", lambda: manifest)


def good_hashes() -> dict[str, str]:
    return {name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()}


def test_downloads_verifies_and_then_reuses(tmp_path: Path, server: StaticServer, monkeypatch: pytest.MonkeyPatch) -> None:
    use_manifest(monkeypatch, good_hashes())
    data_dir = tmp_path / "data"
    out = ensure_benchmark("Tiny", data_dir, base_url=server.url)
    assert out == data_dir / "Tiny"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == FILES
    assert sorted(server.requests) == [f"/{REPO}/{COMMIT}/{PATH}baby.png", f"/{REPO}/{COMMIT}/{PATH}bird%20one.png"]
    assert [p.name for p in data_dir.iterdir()] == ["Tiny"]  # no temporary folder left
    assert os.stat(out).st_mode & 0o777 == 0o755

    assert ensure_benchmark("Tiny", data_dir, base_url=server.url) == out
    assert ensure_benchmark("Tiny", data_dir, download=False) == out
    assert len(server.requests) == 2  # reuse made no request


def test_hash_mismatch_leaves_nothing_in_place(
    tmp_path: Path, server: StaticServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = good_hashes()
    hashes["bird one.png"] = "f" * 64
    use_manifest(monkeypatch, hashes)
    with pytest.raises(DownloadError, match=r"bird%20one.png failed: sha256 mismatch"):
        ensure_benchmark("Tiny", tmp_path, base_url=server.url)
    assert list(tmp_path.iterdir()) == []  # neither Tiny/ nor a partial folder nor a .part


def test_missing_file_on_server_leaves_nothing(
    tmp_path: Path, server: StaticServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_manifest(monkeypatch, {**good_hashes(), "zzz.png": "0" * 64})
    with pytest.raises(DownloadError, match=r"zzz.png failed: HTTP 404"):
        ensure_benchmark("Tiny", tmp_path, base_url=server.url)
    assert list(tmp_path.iterdir()) == []


def test_stale_partial_folder_is_replaced(tmp_path: Path, server: StaticServer, monkeypatch: pytest.MonkeyPatch) -> None:
    use_manifest(monkeypatch, good_hashes())
    stale = tmp_path / ".Tiny.partial-killed"
    stale.mkdir()
    (stale / "baby.png").write_bytes(b"half")
    (tmp_path / "Tiny").mkdir()  # empty folder, e.g. made by hand: no images, so not trusted
    out = ensure_benchmark("Tiny", tmp_path, base_url=server.url)
    assert (out / "baby.png").read_bytes() == FILES["baby.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Tiny"]


def test_present_set_needs_no_manifest_match_nor_request(tmp_path: Path) -> None:
    (tmp_path / "Set5").mkdir()
    (tmp_path / "Set5" / "only.png").write_bytes(b"x")
    # a closed port as base_url: any request would raise
    assert ensure_benchmark("Set5", tmp_path, base_url="http://127.0.0.1:9") == tmp_path / "Set5"


def test_missing_set_without_download(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"benchmark set Urban100 not found: .*Urban100.*download=True"):
        ensure_benchmark("Urban100", tmp_path, download=False)
    assert list(tmp_path.iterdir()) == []


def test_unknown_set(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown benchmark set 'Set6'; known sets: Set5, Set14, BSD100"):
        ensure_benchmark("Set6", tmp_path)


def test_non_image_folder_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "Set5").mkdir()
    (tmp_path / "Set5" / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError, match="holds no images; move it away"):
        ensure_benchmark("Set5", tmp_path, base_url="http://127.0.0.1:9")
    assert (tmp_path / "Set5" / "notes.txt").read_text() == "mine"


def test_read_only_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = tmp_path / "ro"
    data_dir.mkdir()
    data_dir.chmod(0o555)
    if os.geteuid() == 0:
        # root ignores directory permissions; simulate what the OS does for everyone else
        def refuse(*args: object, **kwargs: object) -> str:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(benchmarks.tempfile, "mkdtemp", refuse)
    try:
        with pytest.raises(
            PermissionError,
            match=r"Set14 is missing from .*ro, and it cannot be downloaded there \(Permission denied\)",
        ):
            ensure_benchmark("Set14", data_dir, base_url="http://127.0.0.1:9")
        assert list(data_dir.iterdir()) == []
    finally:
        data_dir.chmod(0o755)


def test_shipped_manifest_is_well_formed() -> None:
    manifest = load_manifest()
    assert list(manifest) == ["Set5", "Set14", "BSD100", "Urban100", "T91", "BSD200"]
    counts = {name: len(s["files"]) for name, s in manifest.items()}
    assert counts == {"Set5": 5, "Set14": 14, "BSD100": 100, "Urban100": 100, "T91": 91, "BSD200": 200}
    for source in manifest.values():
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", source["repo"])
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
        assert source["path"].endswith("/") and not source["path"].startswith("/")
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in source["files"].values())
    assert set(manifest["Set5"]["files"]) == {"baby.png", "bird.png", "butterfly.png", "head.png", "woman.png"}


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared datasets folder {SHARED} not present")
def test_shipped_manifest_matches_shared_files() -> None:
    manifest = load_manifest()
    # every set: the same names and hashes as the folder's MANIFEST.sha256 (cheap, text only)
    listed: dict[str, dict[str, str]] = {}
    for line in (SHARED / "MANIFEST.sha256").read_text().splitlines():
        digest, rel = line.split(None, 1)
        set_name, file_name = rel.strip().split("/", 1)
        listed.setdefault(set_name, {})[file_name] = digest
    assert {name: s["files"] for name, s in manifest.items()} == listed
    # and Set5's real bytes hash to what the manifest says
    real = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (SHARED / "Set5").iterdir()}
    assert real == manifest["Set5"]["files"]
    # the shared folder is a complete set, so ensure_benchmark returns it without any request
    assert ensure_benchmark("Set5", SHARED, base_url="http://127.0.0.1:9", download=False) == SHARED / "Set5"
