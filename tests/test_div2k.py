"""prepare_div2k against a tiny fake DIV2K served on 127.0.0.1 in the official archive layout."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from _http import StaticServer

from srlab.data import div2k
from srlab.data.div2k import prepare_div2k
from srlab.data.download import DownloadError

IDS = range(1, 4)  # 0001-0003 stand in for 0001-0800


def png(size: int, seed: int) -> bytes:
    img = Image.new("RGB", (size, size), (seed * 40 % 256, 90, 200))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


ARCHIVES = {
    "DIV2K_train_HR.zip": zip_bytes({f"DIV2K_train_HR/{i:04d}.png": png(8, i) for i in IDS}),
    "DIV2K_train_LR_bicubic_X2.zip": zip_bytes({f"DIV2K_train_LR_bicubic/X2/{i:04d}x2.png": png(4, i) for i in IDS}),
}


@pytest.fixture
def server() -> Iterator[StaticServer]:
    s = StaticServer(dict(ARCHIVES), prefix="/div2k/")
    s.base_url = f"{s.url}/div2k"
    yield s
    s.close()


@pytest.fixture
def tiny_div2k(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the expected image ids and checksums to the fake archives'."""
    monkeypatch.setitem(div2k.SPLITS, "train", IDS)
    for name, data in ARCHIVES.items():
        monkeypatch.setitem(div2k.CHECKSUMS, name, (len(data), hashlib.sha256(data).hexdigest()))


def test_shipped_checksums_cover_every_archive_prepare_div2k_can_ask_for() -> None:
    for split in ("train", "valid"):
        assert f"DIV2K_{split}_HR.zip" in div2k.CHECKSUMS
        for scale in div2k.SCALES:
            assert f"DIV2K_{split}_LR_bicubic_X{scale}.zip" in div2k.CHECKSUMS
    assert all(len(sha) == 64 and size > 10**7 for size, sha in div2k.CHECKSUMS.values())
    assert [len(div2k.SPLITS["train"]), len(div2k.SPLITS["valid"])] == [800, 100]


def test_download_extract_then_reuse_without_requests(tmp_path: Path, server: StaticServer, tiny_div2k: None) -> None:
    root = tmp_path / "div2k"
    pairs = prepare_div2k(root, 2, "train", base_url=server.base_url)
    assert sorted(server.requests) == ["/div2k/DIV2K_train_HR.zip", "/div2k/DIV2K_train_LR_bicubic_X2.zip"]
    assert pairs == [
        (root / "DIV2K_train_HR" / f"{i:04d}.png", root / "DIV2K_train_LR_bicubic" / "X2" / f"{i:04d}x2.png")
        for i in IDS
    ]
    for hr, lr in pairs:
        assert Image.open(hr).size == (8, 8)
        assert lr is not None and Image.open(lr).size == (4, 4)
    # archives deleted after installation, staging cleaned: only the official layout is left
    assert sorted(p.name for p in root.iterdir()) == ["DIV2K_train_HR", "DIV2K_train_LR_bicubic"]

    assert prepare_div2k(root, 2, "train", base_url=server.base_url) == pairs
    assert prepare_div2k(root, 2, "train", base_url=server.base_url, download=False) == pairs
    assert len(server.requests) == 2  # second and third calls made no request


def test_hr_only(tmp_path: Path, server: StaticServer, tiny_div2k: None) -> None:
    pairs = prepare_div2k(tmp_path, 4, "train", base_url=server.base_url, lr=False)
    assert [lr for _, lr in pairs] == [None] * len(IDS)
    assert server.requests == ["/div2k/DIV2K_train_HR.zip"]  # no X4 archive needed (nor served)


def test_official_layout_folder_used_without_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(div2k.SPLITS, "valid", range(801, 803))
    for i in (801, 802):
        (tmp_path / "DIV2K_valid_HR").mkdir(exist_ok=True)
        (tmp_path / "DIV2K_valid_HR" / f"{i:04d}.png").write_bytes(png(12, i))
        (tmp_path / "DIV2K_valid_LR_bicubic" / "X3").mkdir(parents=True, exist_ok=True)
        (tmp_path / "DIV2K_valid_LR_bicubic" / "X3" / f"{i:04d}x3.png").write_bytes(png(4, i))
    # base_url points at a closed port: any request would fail the test
    pairs = prepare_div2k(tmp_path, 3, "valid", base_url="http://127.0.0.1:9/none")
    assert [(hr.name, lr.name if lr else None) for hr, lr in pairs] == [
        ("0801.png", "0801x3.png"),
        ("0802.png", "0802x3.png"),
    ]


def test_incomplete_folder_is_a_clear_error_and_not_overwritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(div2k.SPLITS, "train", IDS)
    hr = tmp_path / "DIV2K_train_HR"
    hr.mkdir()
    (hr / "0001.png").write_bytes(png(8, 1))
    (hr / "0009.png").write_bytes(png(8, 9))
    with pytest.raises(
        RuntimeError, match=r"2 PNG images instead of 3; missing 0002.png, 0003.png; unexpected 0009.png"
    ):
        prepare_div2k(tmp_path, 2, "train", base_url="http://127.0.0.1:9/none", lr=False)
    assert sorted(p.name for p in hr.iterdir()) == ["0001.png", "0009.png"]


def test_archive_with_wrong_image_count_installs_nothing(
    tmp_path: Path, server: StaticServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(div2k.SPLITS, "train", range(1, 5))  # expects 4, the archive has 3
    data = ARCHIVES["DIV2K_train_HR.zip"]
    monkeypatch.setitem(div2k.CHECKSUMS, "DIV2K_train_HR.zip", (len(data), hashlib.sha256(data).hexdigest()))
    with pytest.raises(RuntimeError, match=r"3 PNG images instead of 4; missing 0004.png"):
        prepare_div2k(tmp_path, 2, "train", base_url=server.base_url, lr=False)
    assert not (tmp_path / "DIV2K_train_HR").exists()
    assert not (tmp_path / ".staging").exists()
    assert (tmp_path / "archives" / "DIV2K_train_HR.zip").is_file()  # kept for inspection


def test_checksum_mismatch_installs_nothing(
    tmp_path: Path, server: StaticServer, tiny_div2k: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    size, _ = div2k.CHECKSUMS["DIV2K_train_HR.zip"]
    monkeypatch.setitem(div2k.CHECKSUMS, "DIV2K_train_HR.zip", (size, "0" * 64))
    with pytest.raises(DownloadError, match=r"DIV2K_train_HR.zip failed: sha256 mismatch"):
        prepare_div2k(tmp_path, 2, "train", base_url=server.base_url)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["archives"]  # empty folder, no .part, no images


def test_shipped_sizes_are_enforced(tmp_path: Path, server: StaticServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the real (multi-GB) checksums, the tiny fake archive is refused before being trusted."""
    monkeypatch.setitem(div2k.SPLITS, "train", IDS)
    with pytest.raises(DownloadError, match=r"server announces \d+ bytes, expected 3530603713"):
        prepare_div2k(tmp_path, 2, "train", base_url=server.base_url, lr=False)
    assert not (tmp_path / "DIV2K_train_HR").exists()


def test_missing_root_without_download(tmp_path: Path) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=rf"DIV2K root {root} does not exist.*download=True"):
        prepare_div2k(root, 4, "valid", download=False)
    assert not root.exists()


@pytest.mark.parametrize(
    ("scale", "split", "message"),
    [
        (4, "test", r"'test' is not available: its HR images .* never made public.*split='valid'"),
        (4, "training", r"unknown DIV2K split 'training'"),
        (8, "train", r"scales \[2, 3, 4\], not 8"),
    ],
)
def test_bad_arguments(tmp_path: Path, scale: int, split: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        prepare_div2k(tmp_path, scale, split)
    assert list(tmp_path.iterdir()) == []
