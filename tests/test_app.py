"""The Streamlit app (srlab/app.py) through Streamlit's AppTest, and its logic (srlab/app_support.py).

The deploy folder is real: 2 Lightning steps of ESPCN x4 on random tensors, exported with
``export_deploy`` twice (as ``best`` and under a second name with other weights), so the picker, the
inference and the blind rating run end to end on the CPU in seconds.
"""

from __future__ import annotations

import io
import math
import random
import sqlite3
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srlab import app_support as sup

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(Path(__file__).resolve().parents[1] / "srlab" / "app.py")
ESPCN4 = {"_target_": "srlab.models.build_model", "name": "espcn", "scale": 4}
TIMEOUT = 60


def fit_checkpoint(path: Path, seed: int) -> Path:
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader

    from srlab.lit import SRLitModule

    class Random(torch.utils.data.Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(seed * 100 + i)
            return {"lr": torch.rand(3, 8, 8, generator=g), "hr": torch.rand(3, 32, 32, generator=g)}

    pl.seed_everything(seed, verbose=False)
    module = SRLitModule(net=ESPCN4, optimizer={"_target_": "torch.optim.Adam", "lr": 1e-3})
    trainer = pl.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", limit_val_batches=0, num_sanity_val_steps=0)
    trainer.fit(module, DataLoader(Random(), batch_size=2))
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def deploy_dir(tmp_path_factory) -> Path:
    from srlab.deploy import export_deploy

    root = tmp_path_factory.mktemp("app")
    a = fit_checkpoint(root / "a.ckpt", 0)
    b = fit_checkpoint(root / "b.ckpt", 1)
    deploy = root / "deploy"
    export_deploy(a, {"model": "espcn_a", "psnr": 28.5, "time_color_s": 0.12}, deploy / "best")
    export_deploy(a, {"model": "espcn_a", "psnr": 28.5, "time_color_s": 0.12}, deploy / "espcn_a")
    export_deploy(b, {"model": "espcn_b", "psnr": 27.9, "time_color_s": 0.10}, deploy / "espcn_b")
    return deploy


@pytest.fixture
def app_env(monkeypatch, deploy_dir, tmp_path):
    monkeypatch.setenv("SRLAB_DEPLOY_DIR", str(deploy_dir))
    monkeypatch.setenv("SRLAB_VOTES_DB", str(tmp_path / "votes.sqlite"))
    monkeypatch.setenv("SRLAB_CACHE_DIR", str(Path(__file__).resolve().parents[1] / "cache"))
    return tmp_path


def png(w: int, h: int, mode: str = "RGB", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(buf, format="PNG")
    return buf.getvalue()


def claimed_size_png(w: int, h: int) -> bytes:
    """An 8x8 PNG whose header says w x h (IHDR patched, CRC fixed): a decompression bomb's header."""
    data = bytearray(png(8, 8))
    data[16:24] = struct.pack(">II", w, h)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def run(at: AppTest) -> AppTest:
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest, kind: str) -> list[str]:
    return [e.value for e in getattr(at, kind)]


# ------------------------------------------------------------------------------------------ upscale page


def test_demo_photo_upscaled_with_best_model_preselected(app_env):
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    picker = at.selectbox[0]
    labels = picker.options
    assert labels[0].startswith("best - x4, PSNR 28.50 dB, 0.12 s/photo"), labels
    assert any(label.startswith("espcn_b - x4") for label in labels) and labels[-1].startswith("bicubic - x4")
    assert picker.value["name"] == "best"
    assert not at.error
    assert any("chelsea" in c for c in texts(at, "caption"))  # the demo photo, 451x300 -> 1804x1200
    assert any("451x300 -> 1804x1200" in c for c in texts(at, "caption"))
    assert len(at.get("download_button")) == 1
    assert len(at.get("image")) >= 5  # original + result + 3 crops

    picker.select(labels[-1])  # the bicubic baseline from the same picker
    run(at)
    assert any("with bicubic (x4)" in c for c in texts(at, "caption"))


def test_no_deployed_model_uses_the_shipped_weights_and_says_how_to_make_one(monkeypatch, app_env):
    monkeypatch.setenv("SRLAB_DEPLOY_DIR", str(app_env / "empty"))
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    note = " ".join(texts(at, "info"))
    assert "No deployed model" in note and "python select_best.py" in note and "ship with srlab" in note
    # every shipped folder is offered, the shipped default (srlab/weights/README.md) preselected
    from srlab.deploy import CONFIG_FILE
    from srlab.inference import SHIPPED_WEIGHTS, shipped_default

    shipped = sorted(p.name for p in SHIPPED_WEIGHTS.iterdir() if (p / CONFIG_FILE).is_file())
    default = shipped_default().name
    picker = at.selectbox[0]
    names = [label.split(" - ")[0] for label in picker.options]
    assert names == [f"{default} (shipped)"] + [f"{n} (shipped)" for n in shipped if n != default] + ["bicubic"]
    assert picker.value["name"] == f"{default} (shipped)"
    assert any(f"451x300 -> 1804x1200 with {default} (shipped) (x4)" in c for c in texts(at, "caption"))
    assert not at.error


def test_without_any_model_the_bicubic_baseline_upscales(monkeypatch, app_env):
    import srlab.inference

    monkeypatch.setenv("SRLAB_DEPLOY_DIR", str(app_env / "empty"))
    monkeypatch.setattr(srlab.inference, "SHIPPED_WEIGHTS", app_env / "no-shipped-weights")
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    assert "the bicubic baseline upscales" in " ".join(texts(at, "info"))
    assert at.selectbox[0].value == 4
    at.selectbox[0].select(2)
    run(at)
    assert any("451x300 -> 902x600 with bicubic (x2)" in c for c in texts(at, "caption"))
    assert not at.error


def test_upload_bad_files_then_a_good_one(app_env):
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    good = png(16, 12)
    bad = {
        "notes.png": b"this is not an image at all",
        "cut.png": good[: len(good) // 2],
        "dot.png": png(1, 1),
        "huge.png": claimed_size_png(3000, 3000),
        "bomb.png": claimed_size_png(20000, 20000),
    }
    for name, data in bad.items():
        at.sidebar.get("file_uploader")[0].set_value((name, data, "image/png"))
        run(at)
        assert at.error and name in at.error[0].value, (name, texts(at, "error"))
        assert not at.get("download_button")
    at.sidebar.get("file_uploader")[0].set_value(("small.png", good, "image/png"))
    run(at)
    assert not at.error
    assert any("small: 16x12 -> 64x48" in c for c in texts(at, "caption"))
    assert len(at.get("download_button")) == 1


def test_crop_sliders_move_the_zoomed_crop(app_env):
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    at.slider[0].set_value(0)
    at.slider[2].set_value(50)
    run(at)
    assert not at.error and len(at.get("image")) >= 5


# ------------------------------------------------------------------------------------------ rate page


def test_rate_page_records_a_vote_and_updates_the_ranking(app_env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    run(at)
    at.sidebar.radio[0].set_value("Rate")
    run(at)
    assert not at.error
    pair = at.session_state["pair"]
    assert sorted(pair) == ["espcn_a", "espcn_b"]  # best is the same model as espcn_a: rated once
    assert any("0 vote(s)" in c for c in texts(at, "caption"))
    left = next(b for b in at.button if b.label == "Left is better")
    left.click()
    run(at)
    rows = sqlite3.connect(app_env / "votes.sqlite").execute("SELECT winner, loser FROM votes").fetchall()
    assert rows == [(pair[0], pair[1])]
    assert any("1 vote(s)" in c for c in texts(at, "caption"))
    assert any(f"{pair[0]} beat {pair[1]}" in s for s in texts(at, "success"))
    table = at.dataframe[0].value
    assert list(table["model"]) == [pair[0], pair[1]] and list(table["expert coefficient"]) == [10, 9]

    path = app_env / "expert.yaml"
    at.text_input[0].set_value(str(path))
    next(b for b in at.button if b.label == "Write expert coefficients").click()
    run(at)
    assert path.read_text() == f'"{pair[0]}": 10\n"{pair[1]}": 9\n'
    from srlab.selection import load_expert

    assert load_expert(path) == {pair[0]: 10, pair[1]: 9}


def test_rate_page_needs_two_models(monkeypatch, app_env, deploy_dir, tmp_path):
    import shutil

    one = tmp_path / "one"
    shutil.copytree(deploy_dir / "best", one / "best")
    monkeypatch.setenv("SRLAB_DEPLOY_DIR", str(one))
    at = run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    at.sidebar.radio[0].set_value("Rate")
    run(at)
    assert any("at least two deployed models" in t for t in texts(at, "info"))


# ------------------------------------------------------------------------------------------ support logic


def test_bradley_terry_two_models_closed_form():
    # A beat B 3 times, B beat A once: the ML strengths satisfy p_A / p_B = 3, i.e. 0.75 / 0.25.
    votes = [("A", "B")] * 3 + [("B", "A")]
    p = sup.bradley_terry(votes)
    assert p["A"] == pytest.approx(0.75, abs=1e-8) and p["B"] == pytest.approx(0.25, abs=1e-8)


def test_bradley_terry_one_mm_step_by_hand_and_fixed_point():
    # A>B twice, B>C once, C>A once. From p = (1/3, 1/3, 1/3), one MM step p_i = W_i / sum_j n_ij/(p_i+p_j):
    #   A: 2 / (2/(2/3) + 1/(2/3)) = 2/4.5 = 4/9;  B: 1 / (2/(2/3) + 1/(2/3)) = 2/9;  C: 1 / (1.5 + 1.5) = 3/9
    # (they already sum to 1).
    votes = [("A", "B"), ("A", "B"), ("B", "C"), ("C", "A")]
    one = sup.bradley_terry(votes, iters=1)
    assert [one[m] for m in "ABC"] == pytest.approx([4 / 9, 2 / 9, 3 / 9])
    # Converged: the ML conditions W_i = sum_j n_ij p_i / (p_i + p_j) hold.
    p = sup.bradley_terry(votes)
    games = {frozenset("AB"): 2, frozenset("BC"): 1, frozenset("AC"): 1}
    wins = {"A": 2, "B": 1, "C": 1}
    for i in "ABC":
        expected = sum(games[frozenset(i + j)] * p[i] / (p[i] + p[j]) for j in "ABC" if j != i)
        assert expected == pytest.approx(wins[i], abs=1e-6)
    assert sum(p.values()) == pytest.approx(1.0)
    assert p["A"] > p["C"] > p["B"]


def test_rank_votes_prior_keeps_unbeaten_finite_and_orders():
    ranked = sup.rank_votes([("x", "y"), ("x", "z"), ("y", "z")], models=["x", "y", "z", "w"])
    assert [r.model for r in ranked][:1] == ["x"] and ranked[-1].model == "z"
    assert all(0 < r.strength < 1 and math.isfinite(r.strength) for r in ranked)
    assert [r.coefficient for r in ranked] == [10, 9, 8, 7]
    assert (ranked[0].wins, ranked[0].losses) == (2, 0)


def test_coefficients_conversion_and_expert_file(tmp_path):
    assert sup.coefficients_from_ranking(["a", "b", "c"]) == {"a": 10, "b": 9, "c": 8}
    nine = [f"m{i}" for i in range(9)]
    assert sorted(sup.coefficients_from_ranking(nine).values()) == list(range(2, 11))
    with pytest.raises(ValueError, match="at most 9"):
        sup.coefficients_from_ranking(nine + ["m9"])
    with pytest.raises(ValueError, match="duplicate"):
        sup.coefficients_from_ranking(["a", "a"])
    assert [r.coefficient for r in sup.rank_votes([], models=[f"m{i}" for i in range(10)])] == [None] * 10
    from srlab.selection import load_expert

    path = sup.save_expert(tmp_path / "e" / "expert.yaml", {"a": 10, "b": 9})
    assert load_expert(path) == {"a": 10, "b": 9}
    assert sup.expert_yaml({"a": 10, "b": 9}) == path.read_text()


def test_votes_db_records_and_counts(tmp_path):
    db = sup.VotesDB(tmp_path / "sub" / "v.sqlite")
    db.record("a", "b", "img")
    db.record("b", "a")
    assert db.pairs() == [("a", "b"), ("b", "a")] and db.count() == 2
    with pytest.raises(ValueError):
        db.record("a", "a")


def test_paths_come_from_env(monkeypatch):
    monkeypatch.delenv("SRLAB_DEPLOY_DIR", raising=False)
    monkeypatch.delenv("SRLAB_VOTES_DB", raising=False)
    assert sup.deploy_root() == Path("deploy") and sup.votes_db_path() == Path("deploy/votes.sqlite")
    monkeypatch.setenv("SRLAB_DEPLOY_DIR", "x/y")
    assert sup.votes_db_path() == Path("x/y/votes.sqlite")
    monkeypatch.setenv("SRLAB_VOTES_DB", "v.db")
    assert sup.votes_db_path() == Path("v.db")


def test_read_upload_rejects_bad_inputs_clearly():
    good = png(20, 10)
    im = sup.read_upload(good, "ok.png")
    assert im.size == (20, 10)
    cases = {
        b"": "empty",
        b"%PDF-1.4 not an image": "not an image",
        good[:60]: "truncated or corrupt",
        png(1, 1): "too small",
    }
    for data, words in cases.items():
        with pytest.raises(sup.InputError, match=words):
            sup.read_upload(data, "f")
    # Decompression bombs: tiny files whose headers claim huge sizes; refused before decoding.
    with pytest.raises(sup.InputError, match="megapixels"):
        sup.read_upload(claimed_size_png(3000, 3000), "big.png")  # over the app's limit (4 MP)
    with pytest.raises(sup.InputError, match="decompression bomb"):
        sup.read_upload(claimed_size_png(20000, 20000), "bomb.png")  # over Pillow's own limit too


def test_read_upload_applies_exif_orientation():
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    Image.new("RGB", (30, 10)).save(buf, format="JPEG", exif=exif)
    assert sup.read_upload(buf.getvalue(), "phone.jpg").size == (10, 30)


def test_bounded_upscale_waits_for_a_free_slot():
    slots = threading.BoundedSemaphore(1)
    running, peak, lock = [0], [0], threading.Lock()

    class Slow:
        def upscale(self, image, tile=256, progress=None):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.05)
            if progress:
                progress(1, 1)
            with lock:
                running[0] -= 1
            return image

    waited = []
    threads = [threading.Thread(target=sup.bounded_upscale, args=(Slow(), Image.new("RGB", (4, 4))),
                                kwargs={"slots": slots, "on_wait": lambda: waited.append(1)}) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert peak[0] == 1 and len(waited) >= 1
    slots.acquire()
    with pytest.raises(sup.BusyError):
        sup.bounded_upscale(Slow(), Image.new("RGB", (4, 4)), slots=slots, timeout=0.01)


def test_helpers():
    assert sup.crop_box((100, 50), 0.0, 0.0, 0.2) == (0, 0, 10, 10)
    assert sup.crop_box((100, 50), 1.0, 1.0, 0.2) == (90, 40, 100, 50)
    assert sup.scale_box((1, 2, 3, 4), 4) == (4, 8, 12, 16)
    assert sup.display_size((3200, 1000)) == (1600, 500) and sup.display_size((10, 10)) == (10, 10)
    im = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8))
    full = np.asarray(im.resize((120, 80), Image.Resampling.BICUBIC), dtype=int)
    crop = np.asarray(sup.bicubic_crop(im, (10, 5, 20, 15), 4), dtype=int)
    assert crop.shape == (40, 40, 3) and np.abs(crop - full[20:60, 40:80]).max() <= 2
    infos = [{"name": "best", "model": "m1"}, {"name": "m1", "model": "m1"}, {"name": "m2", "model": None}]
    assert [sup.rating_name(m) for m in sup.distinct_for_rating(infos)] == ["m1", "m2"]
    a, b = sup.random_pair(["x", "y", "z"], random.Random(0))
    assert a != b
    with pytest.raises(ValueError):
        sup.random_pair(["x", "x"])
