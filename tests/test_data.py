"""Image reading, sources, patch datasets and the SRDataModule on small data made here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.data import SRDataModule
from srlab.data.cache import DecodedCache
from srlab.data.datasets import EvalImages, TrainPatches, augment_pair
from srlab.data.sources import FolderSource, ImageRecord, PairedFolderSource, SampleSource
from srlab.imageio import ImageReadError, read_image
from srlab.resize import bicubic_downscale


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth random texture: bicubic-friendly content with real detail."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))


def write(path, arr_or_image):
    img = arr_or_image if isinstance(arr_or_image, Image.Image) else Image.fromarray(arr_or_image)
    img.save(path)
    return path


# --- reading every kind of file a camera or editor writes ----------------------------------------

def test_modes_are_converted_to_rgb(tmp_path):
    rgb = texture(20, 30)
    gray = rgb[..., 0]
    cases = {
        "gray.png": Image.fromarray(gray),
        "rgba.png": Image.fromarray(np.dstack([rgb, np.full(gray.shape, 255, np.uint8)])),
        "palette.png": Image.fromarray(rgb).convert("P"),
        "cmyk.jpg": Image.fromarray(rgb).convert("CMYK"),
        "gray16.png": Image.fromarray(gray.astype(np.uint16) * 257),
    }
    for name, im in cases.items():
        out = read_image(write(tmp_path / name, im))
        assert out.shape == (20, 30, 3) and out.dtype == np.uint8, name
    # 16-bit is scaled, not clipped: 257 * v maps back to v exactly
    assert np.array_equal(read_image(tmp_path / "gray16.png")[..., 1], gray)
    assert np.array_equal(read_image(tmp_path / "gray.png")[..., 2], gray)


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red-ish, bottom half fully transparent
    out = read_image(write(tmp_path / "a.png", rgba))
    assert tuple(out[0, 0]) == (200, 0, 0)
    assert tuple(out[3, 3]) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path):
    im = Image.fromarray(texture(10, 20))
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "rot.jpg", exif=exif)
    assert read_image(tmp_path / "rot.jpg").shape[:2] == (20, 10)


@pytest.mark.parametrize("content", [b"", b"not an image at all", "truncated"])
def test_bad_files_raise_a_clear_error_naming_the_file(tmp_path, content):
    path = tmp_path / "bad.png"
    if content == "truncated":
        write(path, texture(64, 64))
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match="bad.png"):
        read_image(path)
    with pytest.raises(ImageReadError, match="no such image"):
        read_image(tmp_path / "missing.png")


# --- sources ------------------------------------------------------------------------------------

def test_folder_source_recursive_sorted_and_errors(tmp_path):
    (tmp_path / "a" / "sub").mkdir(parents=True)
    write(tmp_path / "a" / "2.png", texture(8, 8))
    write(tmp_path / "a" / "sub" / "1.jpg", texture(8, 8))
    (tmp_path / "a" / "notes.txt").write_text("x")
    records = FolderSource(tmp_path / "a").records()
    assert [r.hr.relative_to(tmp_path).as_posix() for r in records] == ["a/2.png", "a/sub/1.jpg"]
    assert all(r.lr is None for r in records)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no images"):
        FolderSource(tmp_path / "empty").records()
    with pytest.raises(FileNotFoundError, match="not found"):
        FolderSource(tmp_path / "nope").records()


def test_paired_source_matches_names_and_checks_sizes(tmp_path):
    (tmp_path / "hr").mkdir(), (tmp_path / "lr").mkdir()
    write(tmp_path / "hr" / "0001.png", texture(16, 24))
    write(tmp_path / "lr" / "0001x4.png", texture(4, 6))
    write(tmp_path / "hr" / "0002.png", texture(17, 26))  # not a multiple of 4: HR is mod-cropped
    write(tmp_path / "lr" / "0002.png", texture(4, 6))
    records = PairedFolderSource(tmp_path / "hr", tmp_path / "lr", scale=4).records()
    assert [(r.hr.name, r.lr.name) for r in records] == [("0001.png", "0001x4.png"), ("0002.png", "0002.png")]
    write(tmp_path / "lr" / "0002.png", texture(5, 6))
    with pytest.raises(ValueError, match=r"0002\.png.*5x6|0002\.png is 6x5"):
        PairedFolderSource(tmp_path / "hr", tmp_path / "lr", scale=4).records()
    (tmp_path / "lr" / "0002.png").unlink()
    with pytest.raises(FileNotFoundError, match="no LR image for .*0002.png"):
        PairedFolderSource(tmp_path / "hr", tmp_path / "lr", scale=4).records()


def test_sample_source_needs_no_download(tmp_path):
    records = SampleSource(["chelsea", "camera"], tmp_path).records()
    assert [r.hr.name for r in records] == ["chelsea.png", "camera.png"]
    assert read_image(records[0].hr).shape == (300, 451, 3)
    with pytest.raises(ValueError, match="no sample image 'nope'"):
        SampleSource(["nope"], tmp_path).records()


# --- patches stay aligned -------------------------------------------------------------------------

def test_augmentations_keep_lr_and_hr_aligned():
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    hr = np.kron(lr, np.ones((3, 3, 1), np.uint8))  # each LR pixel is a 3x3 HR block
    seen = set()
    for code in range(8):
        a, b = augment_pair(lr, hr, code)
        assert np.array_equal(np.kron(a, np.ones((3, 3, 1), np.uint8)), b)
        seen.add(a.tobytes())
    assert len(seen) == 8  # eight distinct flips/rotations


def test_paired_patches_are_aligned_after_crop_and_augmentation(tmp_path):
    s = 3
    rng = np.random.default_rng(1)
    lr = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    (tmp_path / "hr").mkdir(), (tmp_path / "lr").mkdir()
    write(tmp_path / "hr" / "x.png", np.kron(lr, np.ones((s, s, 1), np.uint8)))
    write(tmp_path / "lr" / "x.png", lr)
    records = PairedFolderSource(tmp_path / "hr", tmp_path / "lr", scale=s).records()
    ds = TrainPatches(records, s, patch_size=5, length=40, cache=DecodedCache(tmp_path / "c"))
    for i in range(40):
        item = ds[i]
        assert item["lr"].shape == (3, 5, 5) and item["hr"].shape == (3, 15, 15)
        assert torch.equal(item["lr"].repeat_interleave(s, 1).repeat_interleave(s, 2), item["hr"])


def test_bicubic_patches_match_downscaled_hr(tmp_path):
    write(tmp_path / "t.png", texture(96, 120, seed=3))
    ds = TrainPatches(FolderSource(tmp_path).records(), 4, patch_size=12, length=10,
                      cache=DecodedCache(tmp_path / "c"), augment=False)
    for i in range(10):
        item = ds[i]
        hr = (item["hr"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        local = bicubic_downscale(hr, 4).astype(int)
        lr = (item["lr"].permute(1, 2, 0).numpy() * 255).round().astype(int)
        # interior pixels (away from the patch edge the kernel cannot see) agree to rounding
        assert np.abs(local[2:-2, 2:-2] - lr[2:-2, 2:-2]).max() <= 1


def test_eval_images_center_crop(tmp_path):
    write(tmp_path / "t.png", texture(101, 130))
    ds = EvalImages(FolderSource(tmp_path).records(), 4, DecodedCache(tmp_path / "c"), max_side=64)
    item = ds[0]
    assert item["hr"].shape == (3, 64, 64) and item["lr"].shape == (3, 16, 16) and item["name"] == "t"
    full = EvalImages(FolderSource(tmp_path).records(), 4, DecodedCache(tmp_path / "c"))[0]
    assert full["hr"].shape == (3, 100, 128) and full["lr"].shape == (3, 25, 32)


# --- the DataModule and bad input -------------------------------------------------------------------

def make_module(train_dir, val_dir, cache, **kw) -> SRDataModule:
    options = dict(scale=2, patch_size=8, batch_size=4, iters_per_epoch=3, num_workers=0, cache_dir=cache)
    options.update(kw)
    return SRDataModule(FolderSource(train_dir), FolderSource(val_dir), **options)


def test_datamodule_skips_bad_images_with_a_warning(tmp_path):
    train, val = tmp_path / "train", tmp_path / "val"
    train.mkdir(), val.mkdir()
    write(train / "good.png", texture(40, 40))
    write(train / "gray.png", texture(40, 40)[..., 0])
    write(train / "tiny.png", texture(10, 10))  # 5x5 LR at x2 < 8x8 patch
    (train / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    write(val / "v.png", texture(24, 24))
    dm = make_module(train, val, tmp_path / "cache")
    with pytest.warns(UserWarning) as caught:
        dm.setup("fit")
    messages = " ".join(str(w.message) for w in caught)
    assert "broken.jpg" in messages and "tiny.png" in messages
    assert sorted(r.hr.name for r in dm.train_records) == ["good.png", "gray.png"]
    batch = next(iter(dm.train_dataloader()))
    assert batch["lr"].shape == (4, 3, 8, 8) and batch["hr"].shape == (4, 3, 16, 16)
    assert 0 <= batch["lr"].min() and batch["hr"].max() <= 1
    val_batch = next(iter(dm.val_dataloader()))
    assert val_batch["hr"].shape == (1, 3, 24, 24)


def test_datamodule_with_no_usable_images_is_a_clear_error(tmp_path):
    train, val = tmp_path / "train", tmp_path / "val"
    train.mkdir(), val.mkdir()
    (train / "a.png").write_bytes(b"junk")
    write(val / "v.png", texture(24, 24))
    with pytest.warns(UserWarning, match="a.png"), pytest.raises(ValueError, match="no usable training images"):
        make_module(train, val, tmp_path / "cache").setup("fit")
    with pytest.raises(ValueError, match="scale must be 2, 3 or 4"):
        make_module(train, val, tmp_path / "cache", scale=5)


def test_realistic_degradation_batches(tmp_path):
    train, val = tmp_path / "train", tmp_path / "val"
    train.mkdir(), val.mkdir()
    write(train / "a.png", texture(64, 64))
    write(val / "v.png", texture(24, 24))
    dm = make_module(train, val, tmp_path / "cache", degradation="realistic", scale=4, patch_size=8)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["lr"].shape == (4, 3, 8, 8) and batch["hr"].shape == (4, 3, 32, 32)


def test_decoded_cache_is_reused_and_invalidated(tmp_path):
    path = write(tmp_path / "a.png", texture(16, 16))
    cache = DecodedCache(tmp_path / "c")
    first = np.array(cache.image(path))
    files = list((tmp_path / "c" / "decoded").glob("*.npy"))
    assert len(files) == 1
    assert np.array_equal(np.array(cache.image(path)), first)
    assert list((tmp_path / "c" / "decoded").glob("*.npy")) == files  # no second decode/write
    import os
    write(path, texture(16, 16, seed=9))
    os.utime(path, ns=(1, 1))  # a changed file (size/mtime) is decoded again
    # a later run (a new cache object) decodes the changed file again
    assert not np.array_equal(np.array(DecodedCache(tmp_path / "c").image(path)), first)
    for entry in (tmp_path / "c" / "decoded").glob("*.npy"):
        entry.write_bytes(b"corrupt")  # a damaged cache entry is rebuilt, not trusted
    assert DecodedCache(tmp_path / "c").image(path).shape == (16, 16, 3)


def test_record_lr_files_are_used(tmp_path):
    lr = texture(8, 8)
    write(tmp_path / "hr.png", texture(16, 16))
    write(tmp_path / "lr.png", lr)
    ds = EvalImages([ImageRecord(hr=tmp_path / "hr.png", lr=tmp_path / "lr.png")], 2, DecodedCache(tmp_path / "c"))
    assert torch.equal(ds[0]["lr"], torch.from_numpy(lr.copy()).permute(2, 0, 1).float() / 255)


def test_ranks_draw_different_patches_and_runs_repeat(tmp_path):
    write(tmp_path / "t.png", texture(64, 64))
    records = FolderSource(tmp_path).records()

    def draw(rank: int) -> torch.Tensor:
        torch.manual_seed(123)  # what seed_everything gives every DDP rank
        ds = TrainPatches(records, 2, patch_size=8, length=5, cache=DecodedCache(tmp_path / "c"), rank=rank)
        return torch.stack([ds[i]["lr"] for i in range(5)])

    assert torch.equal(draw(0), draw(0))
    assert not torch.equal(draw(0), draw(1))
