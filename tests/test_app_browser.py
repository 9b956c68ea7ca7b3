"""The app in a real browser: ``streamlit run srlab/app.py`` on 127.0.0.1 driven by Debian's chromium
through Playwright. Upload a 64x48 photo, wait for the x4 result, download it and check it is 256x192.

Skipped (with the reason) when /usr/bin/chromium (or $SRLAB_CHROMIUM) or playwright is missing. The
screenshot goes to $SRLAB_SCREENSHOT (default: the test's tmp folder).
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("SRLAB_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STARTUP_S = 40
STEP_MS = 45_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"streamlit not healthy at {url} within {STARTUP_S} s")


@pytest.fixture
def server(tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium, or set SRLAB_CHROMIUM)")
    pytest.importorskip("playwright.sync_api", reason="python playwright not installed (pip install playwright)")
    pytest.importorskip("streamlit", reason="streamlit not installed")
    from srlab.deploy import export_deploy
    from test_app import fit_checkpoint

    deploy = tmp_path / "deploy"
    export_deploy(fit_checkpoint(tmp_path / "a.ckpt", 0), {"model": "espcn_a", "psnr": 28.5,
                                                           "time_color_s": 0.12}, deploy / "best")
    port = _free_port()
    env = {**os.environ, "SRLAB_DEPLOY_DIR": str(deploy), "SRLAB_VOTES_DB": str(tmp_path / "votes.sqlite"),
           "SRLAB_CACHE_DIR": str(ROOT / "cache"), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    log = open(tmp_path / "streamlit.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "srlab" / "app.py"),
                             "--server.headless", "true", "--server.port", str(port),
                             "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
                             "--server.fileWatcherType", "none"],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, proc, time.monotonic() + STARTUP_S)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def test_upload_upscale_download_in_chromium(server, tmp_path):
    from playwright.sync_api import sync_playwright

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
    shot = Path(os.environ.get("SRLAB_SCREENSHOT") or tmp_path / "app.png")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, timeout=STEP_MS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            page.set_default_timeout(STEP_MS)
            page.goto(server, timeout=STEP_MS)
            # The demo photo is upscaled with nothing uploaded.
            page.get_by_text(re.compile(r"451x300 \S+ 1804x1200")).wait_for()  # markdown shows -> as an arrow
            page.locator('input[type="file"]').set_input_files(
                {"name": "small.png", "mimeType": "image/png", "buffer": buf.getvalue()})
            page.get_by_text(re.compile(r"small: 64x48 \S+ 256x192")).wait_for()
            button = page.get_by_role("button", name="Download PNG")
            button.wait_for()
            with page.expect_download(timeout=STEP_MS) as info:
                button.click()
            download = info.value
            target = tmp_path / download.suggested_filename
            download.save_as(target)
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    assert target.name == "small_x4_best.png"
    with Image.open(target) as im:
        assert im.size == (256, 192) and im.format == "PNG"
    assert shot.stat().st_size > 0
