"""The inference engine (srlab.inference) and its CLI (python -m srlab.upscale)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srlab.imageio import ImageReadError
from srlab.inference import ImageTooLargeError, Upscaler, count_tiles, list_deployed, tile_grid
from srlab.models import build_model
from srlab.resize import bicubic_upscale
from srlab.color import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from srlab.sr import replace_y, super_resolve

ROOT = Path(__file__).resolve().parents[1]


def photo(h: int = 70, w: int = 100, seed: int = 0) -> np.ndarray:
    """A smooth-ish colour image with some texture (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([np.sin(x / 7 + c) * np.cos(y / 5 - c) for c in range(3)], axis=2) * 0.4 + 0.5
    img += rng.normal(0, 0.08, img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def net_upscaler(name: str, scale: int = 2, seed: int = 0) -> Upscaler:
    torch.manual_seed(seed)
    return Upscaler.from_network(build_model(name, scale), name)


def as_int(im: Image.Image) -> np.ndarray:
    return np.asarray(im).astype(np.int64)


# -- tiling -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["espcn", "fsrcnn", "edsr_baseline"])
def test_tiled_equals_untiled(name: str) -> None:
    up = net_upscaler(name)
    img = Image.fromarray(photo())
    whole = up.upscale(img, tile=None)
    tiled = up.upscale(img, tile=32)
    assert whole.size == tiled.size == (200, 140)
    assert np.abs(as_int(whole) - as_int(tiled)).max() <= 1
    # The check has teeth: without the overlap the tile borders show.
    seams = up.upscale(img, tile=32, overlap=0)
    assert np.abs(as_int(whole) - as_int(seams)).max() > 1


def test_tile_grid_covers_image_once() -> None:
    h, w = 70, 100
    cover = np.zeros((h, w), int)
    for (y0, y1, x0, x1), (py0, py1, px0, px1) in tile_grid(h, w, 32, 5):
        cover[y0:y1, x0:x1] += 1
        assert py0 == max(0, y0 - 5) and py1 == min(h, y1 + 5) and px0 == max(0, x0 - 5) and px1 == min(w, x1 + 5)
    assert (cover == 1).all()
    assert count_tiles(h, w, 32) == len(list(tile_grid(h, w, 32, 5))) == 3 * 4
    assert count_tiles(h, w, None) == 1


def test_progress_once_per_tile() -> None:
    calls: list[tuple[int, int]] = []
    out = net_upscaler("espcn", 3).upscale(Image.fromarray(photo()), tile=32, progress=lambda d, t: calls.append((d, t)))
    assert out.size == (300, 210)
    assert calls == [(i, 12) for i in range(1, 13)]  # ceil(70/32) * ceil(100/32) = 3 * 4


# -- colour modes ------------------------------------------------------------------------------------


def chw(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


def test_replace_y_sets_luma_and_keeps_chroma() -> None:
    rgb, other = chw(photo()), chw(photo(seed=1))
    out = replace_y(rgb, rgb_to_y(other))
    ycbcr, ref = rgb_to_ycbcr(out), rgb_to_ycbcr(rgb)
    assert torch.allclose(ycbcr[:, :1], rgb_to_y(other), atol=1e-5)
    assert torch.allclose(ycbcr[:, 1:], ref[:, 1:], atol=1e-5)
    assert torch.allclose(out, ycbcr_to_rgb(torch.cat([rgb_to_y(other), ref[:, 1:]], dim=1)), atol=1e-5)


def test_y_network_output_is_its_y_on_bicubic_colour() -> None:
    up = net_upscaler("espcn")
    rgb = photo()
    out = as_int(up.upscale(Image.fromarray(rgb), tile=32))
    with torch.inference_mode():
        y_sr = up.net(rgb_to_y(chw(rgb)))
        ref = replace_y(chw(bicubic_upscale(rgb, 2)), y_sr).clamp(0, 1)
        # the same image as super_resolve's YCbCr round trip, but for the bicubic kernel of the chroma
        # (Pillow's a = -0.5 here, torch's a = -0.75 there): equal luma wherever nothing clips
        luma_rt = rgb_to_y(super_resolve(up.net, chw(rgb)))
    ref = (ref[0].permute(1, 2, 0).numpy() * 255).round().astype(np.int64)
    assert np.abs(out - ref).max() <= 1
    luma = rgb_to_y(torch.from_numpy(out).permute(2, 0, 1)[None].float() / 255)
    assert (luma - luma_rt).abs().lt(1.5 / 255).float().mean() > 0.99
    assert np.abs(out[..., 0] - out[..., 2]).mean() > 20  # coloured, not gray


class BicubicY(torch.nn.Module):
    """A "Y network" that only upscales Y with the engine's bicubic (Pillow's, in float): through the Y
    path, the whole image must come out as the bicubic upscale of the RGB input (everything is linear),
    colour included."""

    scale, in_channels, color, receptive_field = 2, 1, "y", 2

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        plane = Image.fromarray(np.ascontiguousarray(y[0, 0].numpy())).resize((y.shape[-1] * 2, y.shape[-2] * 2), Image.Resampling.BICUBIC)
        return torch.from_numpy(np.asarray(plane).copy())[None, None]


def test_y_path_keeps_colour() -> None:
    rgb = photo()
    out = as_int(Upscaler.from_network(BicubicY()).upscale(Image.fromarray(rgb), tile=32))
    ref = bicubic_upscale(rgb, 2).astype(np.int64)
    # Pillow's 8-bit bicubic rounds and clips after each of its two passes; where it clipped, that
    # pixel's chroma differs from the float bicubic's by a few levels. Everywhere else: rounding.
    diff = np.abs(out - ref)
    assert (diff <= 1).mean() > 0.995 and diff.mean() < 0.3 and diff.max() <= 8
    assert np.abs(out[..., 0] - out[..., 2]).mean() > 20  # coloured, not gray


@pytest.mark.parametrize("name", ["espcn", "edsr_baseline"])
def test_grayscale_stays_gray(name: str) -> None:
    gray = photo()[..., 1]
    up = net_upscaler(name)
    out = up.upscale(Image.fromarray(gray), tile=32)
    assert out.mode == "L" and out.size == (200, 140)
    # Same as the RGB path on the replicated image, brought back to one channel.
    rgb_out = as_int(up.upscale(Image.fromarray(np.repeat(gray[..., None], 3, axis=2)), tile=32))
    expected = rgb_out[..., 0] if name == "espcn" else rgb_out @ np.array([0.299, 0.587, 0.114])
    assert np.abs(as_int(out) - expected).max() <= 1.5


def test_16bit_gray_stays_16bit_at_full_precision() -> None:
    rng = np.random.default_rng(1)
    gray16 = (photo()[..., 0].astype(np.uint16) * 257 + rng.integers(0, 257, (70, 100))).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(gray16).save(buf, format="PNG")
    up = net_upscaler("espcn")
    out = up.upscale(Image.open(io.BytesIO(buf.getvalue())), tile=32)
    assert out.mode == "I;16" and out.size == (200, 140)
    arr = np.asarray(out)
    assert arr.dtype == np.uint16 and arr.max() > 255
    assert len(np.unique(arr % 257)) > 100  # not 8-bit values scaled up
    with torch.inference_mode():
        y = torch.from_numpy(gray16.astype(np.float32) / 65535)[None, None]
        ref = ((up.net(y * 219 / 255 + 16 / 255) - 16 / 255) * 255 / 219).clamp(0, 1)[0, 0].numpy() * 65535
    assert np.abs(arr - ref).max() <= 2


def test_rgba_keeps_alpha() -> None:
    rgb = photo()
    alpha = np.tile(np.linspace(0, 255, 100).astype(np.uint8), (70, 1))
    alpha[20:40, 30:60] = 0
    img = Image.fromarray(np.concatenate([rgb, alpha[..., None]], axis=2))
    up = net_upscaler("espcn")
    out = up.upscale(img, tile=32)
    assert out.mode == "RGBA" and out.size == (200, 140)
    out_arr = np.asarray(out)
    np.testing.assert_array_equal(out_arr[..., 3], bicubic_upscale(alpha, 2))
    np.testing.assert_array_equal(out_arr[..., :3], np.asarray(up.upscale(Image.fromarray(rgb), tile=32)))


def test_gray_with_alpha_palette_and_cmyk() -> None:
    up = net_upscaler("espcn")
    la = Image.merge("LA", [Image.fromarray(photo()[..., 0]), Image.fromarray(photo()[..., 1])])
    assert up.upscale(la).mode == "LA"
    pal = Image.fromarray(photo()).quantize(16)
    assert pal.mode == "P" and up.upscale(pal).mode == "RGB"
    cmyk = Image.fromarray(photo()).convert("CMYK")
    out = up.upscale(cmyk)
    assert out.mode == "RGB" and out.size == (200, 140)
    assert up.upscale(Image.fromarray(photo()).convert("1")).mode == "L"


def test_exif_rotated_jpeg(tmp_path: Path) -> None:
    img = Image.fromarray(photo(40, 60))  # landscape pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display: portrait
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif.tobytes(), quality=95)
    up = net_upscaler("espcn")
    assert up.upscale(path, tile=16).size == (80, 120)
    with Image.open(path) as raw:
        raw.load()
        assert raw.size == (60, 40)
        assert up.upscale(raw).size == (80, 120)


@pytest.mark.parametrize("name", ["espcn", "fsrcnn", "edsr_baseline", "srcnn"])
def test_tiny_images(name: str) -> None:
    up = net_upscaler(name, 4)
    for w, h in [(1, 1), (1, 3), (5, 2)]:
        out = up.upscale(Image.fromarray(photo(h, w)), tile=2)
        assert out.size == (4 * w, 4 * h)


def test_bicubic_upscaler() -> None:
    up = Upscaler.load("bicubic", scale=3)
    assert (up.name, up.scale, up.metrics) == ("bicubic", 3, {})
    rgb = photo()
    np.testing.assert_array_equal(np.asarray(up.upscale(Image.fromarray(rgb))), bicubic_upscale(rgb, 3))
    gray16 = (photo()[..., 0].astype(np.uint16) * 257)
    assert up.upscale(Image.fromarray(gray16)).mode == "I;16"
    with pytest.raises(ValueError, match="scale"):
        Upscaler.load("bicubic")


# -- errors ------------------------------------------------------------------------------------------


def test_pixel_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(photo()).save(path)
    up = net_upscaler("espcn")
    up.max_input_pixels = 5000
    with pytest.raises(ImageTooLargeError, match="max_input_pixels"):
        up.upscale(path)
    with pytest.raises(ImageTooLargeError):
        up.upscale(Image.fromarray(photo()))
    up.max_input_pixels = 7000
    assert up.upscale(path).size == (200, 140)


def test_unreadable_files(tmp_path: Path) -> None:
    up = net_upscaler("espcn")
    (tmp_path / "notes.png").write_text("not an image")
    good = tmp_path / "good.png"
    Image.fromarray(photo()).save(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:300])
    for name in ("notes.png", "cut.png", "missing.png"):
        with pytest.raises(ImageReadError, match=name):
            up.upscale(tmp_path / name)


def test_file_objects_and_lazy_images(tmp_path: Path) -> None:
    """The app's path: an upload's bytes, or an Image.open() not yet decoded."""
    up = net_upscaler("espcn")
    good = tmp_path / "good.png"
    Image.fromarray(photo()).save(good)
    expected = np.asarray(up.upscale(good))
    np.testing.assert_array_equal(np.asarray(up.upscale(io.BytesIO(good.read_bytes()))), expected)
    with pytest.raises(ImageReadError):
        up.upscale(io.BytesIO(b"GIF89a nonsense"))
    with pytest.raises(ImageReadError):
        up.upscale(Image.open(io.BytesIO(good.read_bytes()[:400])))  # truncated, decoded lazily
    up.max_input_pixels = 100
    with pytest.raises(ImageTooLargeError):
        up.upscale(io.BytesIO(good.read_bytes()))


def test_upscale_array_matches_image_path() -> None:
    up = net_upscaler("fsrcnn")
    rgb = photo()
    np.testing.assert_array_equal(up.upscale_array(rgb, tile=32), np.asarray(up.upscale(Image.fromarray(rgb), tile=32)))
    gray = rgb[..., 0].copy()
    np.testing.assert_array_equal(up.upscale_array(gray), np.asarray(up.upscale(Image.fromarray(gray))))
    f = up.upscale_array(rgb.astype(np.float32) / 255)
    assert f.dtype == np.float32 and f.shape == (140, 200, 3)


# -- loading: checkpoint and deploy folder -----------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    import pytorch_lightning as pl

    from srlab.deploy import export_deploy
    from srlab.lit import SRLitModule

    root = tmp_path_factory.mktemp("inference")
    torch.manual_seed(0)
    module = SRLitModule(net={"_target_": "srlab.models.build_model", "name": "espcn", "scale": 2},
                         optimizer={"_target_": "torch.optim.Adam", "lr": 1e-3}, name="espcn_tiny")
    data = [{"lr": torch.rand(3, 8, 8), "hr": torch.rand(3, 16, 16)} for _ in range(4)]
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=root)
    trainer.fit(module, torch.utils.data.DataLoader(data, batch_size=2))
    ckpt = root / "espcn.ckpt"
    trainer.save_checkpoint(ckpt)
    deploy = root / "deploy"
    metrics = {"model": "espcn_tiny", "architecture": "espcn", "scale": 2, "psnr": 30.5, "ssim": 0.9,
               "time_color_s": 0.12}
    export_deploy(ckpt, metrics, deploy / "best")
    export_deploy(ckpt, {**metrics, "psnr": 29.0}, deploy / "another")
    return {"ckpt": ckpt, "deploy": deploy}


def test_load_checkpoint_and_deploy_agree(trained: dict[str, Path]) -> None:
    from_ckpt = Upscaler.load(trained["ckpt"])
    from_deploy = Upscaler.load(trained["deploy"] / "best")
    assert from_ckpt.scale == from_deploy.scale == 2
    assert from_ckpt.color == from_deploy.color == "y"
    assert from_deploy.name == "espcn_tiny" and from_deploy.metrics["psnr"] == 30.5
    assert from_ckpt.metrics == {}
    img = Image.fromarray(photo())
    a, b = from_ckpt.upscale(img, tile=32), from_deploy.upscale(img)
    assert a.size == (200, 140)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(ValueError, match="x2"):
        Upscaler.load(trained["deploy"] / "best", scale=4)
    with pytest.raises(FileNotFoundError):
        Upscaler.load(trained["deploy"] / "nothing")


def test_list_deployed(trained: dict[str, Path], tmp_path: Path) -> None:
    (trained["deploy"] / "junk").mkdir(exist_ok=True)
    (trained["deploy"] / "junk" / "config.json").write_text("{not json")
    entries = list_deployed(trained["deploy"], shipped=False)
    assert [e["name"] for e in entries] == ["best", "another"]
    best = entries[0]
    assert best["scale"] == 2 and best["psnr"] == 30.5 and best["time_color_s"] == 0.12
    assert Path(best["path"]) == trained["deploy"] / "best"
    assert list_deployed(tmp_path / "absent", shipped=False) == []
    # the weights that ship with the package come last, marked (tests/test_shipped_weights.py: the rest)
    shipped = [e for e in list_deployed(trained["deploy"]) if e["shipped"]]
    assert "espcn_x4 (shipped)" in [e["name"] for e in shipped] and shipped[0]["default"]
    assert list_deployed(trained["deploy"])[:2] == entries


# -- CLI ---------------------------------------------------------------------------------------------


def test_cli_folder_with_corrupt_file(trained: dict[str, Path], tmp_path: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(photo(30, 40)).save(src / "sub" / "good.jpg")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "srlab.upscale", str(src), "-o", str(out),
                           "--model", str(trained["deploy"] / "best"), "--tile", "16", "--threads", "1"],
                          check=False, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "broken.png" in proc.stderr
    result = out / "sub" / "good_x2.png"
    with Image.open(result) as im:
        assert im.size == (80, 60)
    assert not (out / "broken_x2.png").exists()


def test_cli_single_file_named_output(tmp_path: Path) -> None:
    from srlab.upscale import main

    src = tmp_path / "p.png"
    Image.fromarray(photo(10, 12)).save(src)
    assert main([str(src), "-o", str(tmp_path / "big.png"), "--model", "bicubic", "--scale", "3"]) == 0
    with Image.open(tmp_path / "big.png") as im:
        assert im.size == (36, 30)
    assert main([str(src), "-o", str(tmp_path / "o"), "--model", "bicubic"]) == 0
    assert (tmp_path / "o" / "p_x4.png").is_file()


def test_bf16_precision_is_close_to_fp32_and_checked() -> None:
    rgb = photo()
    fp32 = as_int(net_upscaler("edsr_baseline").upscale(Image.fromarray(rgb), tile=32))
    torch.manual_seed(0)
    bf16 = Upscaler.from_network(build_model("edsr_baseline", 2), precision="bf16")
    out = as_int(bf16.upscale(Image.fromarray(rgb), tile=32))
    assert out.shape == fp32.shape and np.abs(out - fp32).mean() < 1.0
    with pytest.raises(ValueError, match="precision"):
        Upscaler.from_network(build_model("espcn", 2), precision="fp8")
