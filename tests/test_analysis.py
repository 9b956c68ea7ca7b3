"""srlab.analysis: known values on the complexity-entropy plane, the report files, and the Hydra entry point."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import ordpy
import pytest
from PIL import Image
from scipy import ndimage

from srlab.analysis import CSV_COLUMNS, analyse_images, luma, write_report
from srlab.imageio import save_png
from srlab.resize import bicubic_downscale, modcrop

REPO = Path(__file__).resolve().parents[1]
SCALES = (1, 2, 3, 4)


def gray_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)


def noise_rgb(size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def ramp_rgb(size: int) -> np.ndarray:
    """A diagonal ramp: strictly increasing right and down, so every 2x2 window has the same ordering."""
    i, j = np.mgrid[:size, :size]
    return gray_rgb(i + j)


def smooth_texture_rgb(size: int, sigma: float = 3.0, seed: int = 0) -> np.ndarray:
    """Gaussian-blurred white noise: an oversampled texture whose structure is several pixels wide."""
    field = ndimage.gaussian_filter(np.random.default_rng(seed).standard_normal((size, size)), sigma)
    return gray_rgb(np.rint((field - field.min()) / (field.max() - field.min()) * 255))


def by_scale(rows: list[dict]) -> dict[int, dict]:
    return {r["scale"]: r for r in rows}


@pytest.fixture
def png(tmp_path: Path):
    def write(name: str, img: np.ndarray) -> Path:
        return save_png(img, tmp_path / name)

    return write


def test_luma_is_bt601_with_matlab_constants():
    rgb = noise_rgb(8)
    r, g, b = (rgb[..., k] / 255.0 for k in range(3))
    expected = (16 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    np.testing.assert_allclose(luma(rgb), expected, atol=1e-12)


def test_noise_is_near_maximal_entropy_and_minimal_complexity(png):
    hr = by_scale(analyse_images([png("noise.png", noise_rgb(256))], scales=[1]))[1]
    assert hr["entropy"] > 0.995
    assert hr["complexity"] < 0.01


def test_ramp_has_a_single_pattern_at_every_scale(png):
    rows = by_scale(analyse_images([png("ramp.png", ramp_rgb(128))], scales=SCALES))
    assert rows[1]["entropy"] == pytest.approx(0.0, abs=1e-12)  # one ordering everywhere: H = 0 exactly
    for scale in SCALES:  # bicubic keeps a ramp a ramp (up to the border and rounding)
        assert rows[scale]["entropy"] < 0.1
        assert rows[scale]["complexity"] < 0.1


def test_values_match_ordpy_on_the_same_array_and_dx_dy_are_not_swapped(png):
    img = smooth_texture_rgb(96, sigma=1.5, seed=3)
    img[..., 0] = noise_rgb(96, seed=4)[..., 0]  # colour matters: the luma, not one channel, must be used
    rows = by_scale(analyse_images([png("tex.png", img)], scales=[1, 3], dx=3, dy=2, max_side=None))

    def y(rgb: np.ndarray) -> np.ndarray:  # independent BT.601 luma, not srlab.color
        return (16 + rgb.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) / 255.0) / 255.0

    hr_h, hr_c = ordpy.complexity_entropy(y(img), dx=3, dy=2)
    assert (rows[1]["entropy"], rows[1]["complexity"]) == pytest.approx((hr_h, hr_c), abs=1e-9)
    x3 = bicubic_downscale(modcrop(img, 3), 3)
    assert (rows[3]["height"], rows[3]["width"]) == x3.shape[:2] == (32, 32)
    assert (rows[3]["entropy"], rows[3]["complexity"]) == pytest.approx(ordpy.complexity_entropy(y(x3), dx=3, dy=2), abs=1e-9)
    swapped = ordpy.complexity_entropy(y(img), dx=2, dy=3)
    assert abs(swapped[0] - hr_h) > 1e-4  # the check above would catch a dx/dy mix-up


def test_points_lie_between_the_theoretical_bounds(png):
    paths = [png("noise.png", noise_rgb(64)), png("tex.png", smooth_texture_rgb(128)), png("ramp.png", ramp_rgb(64))]
    rows = analyse_images(paths, scales=SCALES)
    lower = ordpy.minimum_complexity_entropy(dx=2, dy=2, size=400)
    upper = ordpy.maximum_complexity_entropy(dx=2, dy=2, m=200)
    for r in rows:
        assert 0.0 <= r["entropy"] <= 1.0
        assert np.interp(r["entropy"], *lower.T) - 2e-3 <= r["complexity"] <= np.interp(r["entropy"], *upper.T) + 2e-3


def test_downscaling_an_oversampled_texture_raises_entropy(png):
    """Structure several pixels wide looks smooth at HR; each downscale packs more of it per window."""
    rows = by_scale(analyse_images([png("tex.png", smooth_texture_rgb(384))], scales=SCALES))
    h = [rows[s]["entropy"] for s in SCALES]
    c = [rows[s]["complexity"] for s in SCALES]
    assert h == sorted(h) and h[-1] - h[0] > 0.1
    assert c == sorted(c, reverse=True)


def test_downscaling_a_noisy_photo_lowers_entropy(png):
    """The other direction, also true: astronaut's HR has pixel-level sensor/JPEG noise that makes 2x2
    orderings nearly random; the antialiasing bicubic filter averages it away (measured: H 0.942 -> 0.910)."""
    skimage_data = pytest.importorskip("skimage.data")
    rows = by_scale(analyse_images([png("astronaut.png", skimage_data.astronaut())], scales=[1, 2]))
    assert rows[2]["entropy"] < rows[1]["entropy"] - 0.02
    assert rows[2]["complexity"] > rows[1]["complexity"]


def test_center_crop_bounds_the_analysed_size(png):
    img = np.concatenate([noise_rgb(300), noise_rgb(300, seed=1)], axis=1)  # 300 x 600
    rows = by_scale(analyse_images([png("wide.png", img)], scales=SCALES, max_side=256))
    assert [(rows[s]["height"], rows[s]["width"]) for s in SCALES] == [(256, 256), (128, 128), (85, 85), (64, 64)]


def test_corrupt_file_is_skipped_with_a_warning_naming_it(png, tmp_path):
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    good = png("good.png", noise_rgb(32))
    with pytest.warns(UserWarning, match="corrupt.png"):
        rows = analyse_images([bad, good], scales=SCALES)
    assert {r["image"] for r in rows} == {"good.png"} and len(rows) == 4


def test_too_small_scale_is_skipped_with_a_warning(png):
    tiny = png("tiny.png", noise_rgb(12))  # HR 12x12 and x2 6x6 have >= 4! = 24 windows; x3 4x4 has 9
    with pytest.warns(UserWarning) as caught:
        rows = analyse_images([tiny], scales=SCALES)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "tiny.png at x3" in messages[0] and "tiny.png at x4" in messages[1]
    assert [r["scale"] for r in rows] == [1, 2]


def test_report_writes_csv_with_four_rows_per_image_and_three_valid_pngs(png, tmp_path):
    paths = [png(f"img{k}.png", smooth_texture_rgb(64, seed=k)) for k in range(3)]
    rows = analyse_images(paths, scales=SCALES)
    files = write_report(rows, tmp_path / "report", plot_first=2)
    assert set(files) == {"csv", "plane", "complexity", "entropy"}
    with files["csv"].open() as f:
        table = list(csv.DictReader(f))
    assert tuple(table[0]) == CSV_COLUMNS
    assert len(table) == 12
    for name in ("img0.png", "img1.png", "img2.png"):
        assert sorted(int(r["scale"]) for r in table if r["image"] == name) == [1, 2, 3, 4]
    assert float(table[0]["entropy"]) == pytest.approx(rows[0]["entropy"])
    for key in ("plane", "complexity", "entropy"):
        with Image.open(files[key]) as im:
            im.verify()
            assert im.format == "PNG" and min(im.size) > 100


def test_write_report_refuses_an_empty_analysis(tmp_path):
    with pytest.raises(ValueError, match="no analysis rows"):
        write_report([], tmp_path)


def test_hydra_entry_point_end_to_end(png, tmp_path):
    photos = tmp_path / "photos"
    save_png(smooth_texture_rgb(48, seed=1), photos / "a.png")
    save_png(noise_rgb(40), photos / "b.png")
    (photos / "broken.png").write_bytes(b"not a png at all")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(
        [sys.executable, "-m", "srlab.analysis", "data=folder", f"data.train.roots=[{photos}]",
         f"analysis.output={out}", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "broken.png" in proc.stderr  # skipped, and said so
    with (out / "analysis.csv").open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 8 and {r["image"] for r in table} == {"a.png", "b.png"}
    assert all((out / name).is_file() for name in ("complexity_entropy_plane.png", "complexity_by_scale.png", "entropy_by_scale.png"))
    assert "x4" in proc.stdout and str(out) in proc.stdout
