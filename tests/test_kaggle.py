"""kaggle_dataset_path with the REAL kagglehub client, talking to a fake Kaggle API on 127.0.0.1.

kagglehub has no endpoint setting: KAGGLE_API_ENVIRONMENT=LOCALHOST makes it call
http://localhost/api/v1/..., and HTTP_PROXY (honoured by its requests session) routes those calls
to our server, which answers the two requests a public dataset download makes:
GetDataset (-> current version) and DownloadDataset (-> the zip).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import json
import threading
import traceback
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import kagglehub.config
import pytest
from PIL import Image

from srlab.data.kaggle import kaggle_dataset_path

USER = "srlab-test"
KEY = "0123456789abcdef" + "fedcba9876543210"  # fake; built, so no source line quotes it whole
API = "/api/v1/datasets.DatasetApiService/"


def png(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (6, 5), (seed, 2 * seed, 3 * seed)).save(buf, format="PNG")
    return buf.getvalue()


def dataset_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("images/train/a.png", png(10))
        zf.writestr("images/train/b.png", png(20))
        zf.writestr("images/README.txt", b"tiny")
    return buf.getvalue()


@dataclass
class FakeKaggle:
    """What the fake API serves, and the (path, json body, auth header) of every call it got."""

    zip_bytes: bytes = field(default_factory=dataset_zip)
    fail: tuple[int, dict] | None = None  # (status, json body) to answer every call with
    calls: list[tuple[str, dict, str | None]] = field(default_factory=list)

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        fake = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                # As a proxy we receive the absolute URL: "http://localhost/api/v1/...".
                path = urlsplit(self.path).path
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                fake.calls.append((path, body, self.headers.get("Authorization")))
                if fake.fail is not None:
                    self.reply(fake.fail[0], json.dumps(fake.fail[1]).encode(), "application/json")
                elif path == API + "GetDataset":
                    self.reply(200, json.dumps({"currentVersionNumber": 3}).encode(), "application/json")
                elif path == API + "DownloadDataset":
                    md5 = base64.b64encode(hashlib.md5(fake.zip_bytes).digest()).decode()
                    self.reply(200, fake.zip_bytes, "application/zip", {"x-goog-hash": f"md5={md5}"})
                else:
                    self.reply(404, b'{"code": 404, "message": "no such call"}', "application/json")

            def reply(self, status: int, data: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return _Handler


@pytest.fixture
def fake_kaggle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKaggle]:
    fake = FakeKaggle()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    proxy = f"http://127.0.0.1:{httpd.server_address[1]}"
    # Isolate from the developer's machine: no real credentials, config, cache or proxy settings.
    for var in (
        "KAGGLE_API_TOKEN",
        "KAGGLE_KERNEL_RUN_TYPE",
        "KAGGLE_DATA_PROXY_URL",
        "TBE_RUNTIME_ADDR",
        "COLAB_RELEASE_TAG",
        "NO_PROXY",
        "no_proxy",
        "ALL_PROXY",
        "all_proxy",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    for var in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, proxy)
    monkeypatch.setenv("KAGGLE_USERNAME", USER)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    kagglehub.config.clear_kaggle_credentials()  # nothing set via kagglehub.login() in this process
    yield fake
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


BASIC = "Basic " + base64.b64encode(f"{USER}:{KEY}".encode()).decode()


def test_download_then_cached_then_forced(fake_kaggle: FakeKaggle, tmp_path: Path) -> None:
    folder = kaggle_dataset_path("someone/tiny-sr-set")
    assert folder.is_dir() and folder.is_relative_to(tmp_path / "cache")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png")) == [
        "images/train/a.png",
        "images/train/b.png",
    ]
    assert (folder / "images" / "train" / "a.png").read_bytes() == png(10)
    assert [(path, auth) for path, _, auth in fake_kaggle.calls] == [
        (API + "GetDataset", BASIC),  # credentials came from the environment
        (API + "DownloadDataset", BASIC),
    ]
    assert fake_kaggle.calls[0][1] == {"ownerSlug": "someone", "datasetSlug": "tiny-sr-set"}
    assert fake_kaggle.calls[1][1]["datasetVersionNumber"] == 3

    # cached: only the version lookup, no download
    assert kaggle_dataset_path("someone/tiny-sr-set") == folder
    assert [path for path, _, _ in fake_kaggle.calls[2:]] == [API + "GetDataset"]

    # force: downloaded again, same place
    (folder / "images" / "train" / "a.png").write_bytes(b"damaged")
    assert kaggle_dataset_path("someone/tiny-sr-set", force=True) == folder
    assert [path for path, _, _ in fake_kaggle.calls[3:]] == [API + "GetDataset", API + "DownloadDataset"]
    assert (folder / "images" / "train" / "a.png").read_bytes() == png(10)


def full_report(err: BaseException) -> str:
    return "".join(traceback.format_exception(err))


def test_forbidden_is_a_clear_error_without_secrets(fake_kaggle: FakeKaggle) -> None:
    fake_kaggle.fail = (403, {"code": 403, "message": "Permission denied"})
    with pytest.raises(RuntimeError) as info:
        kaggle_dataset_path("someone/private-set")
    message = str(info.value)
    assert "could not get Kaggle dataset 'someone/private-set'" in message
    assert "403" in message and "KAGGLE_USERNAME and KAGGLE_KEY" in message
    assert KEY not in full_report(info.value)
    assert info.value.__cause__ is not None  # nothing secret in the chain, so it is kept for debugging


def test_server_echoing_the_key_is_redacted(fake_kaggle: FakeKaggle) -> None:
    fake_kaggle.fail = (500, {"code": 500, "message": f"internal error for key {KEY}"})
    with pytest.raises(RuntimeError) as info:
        kaggle_dataset_path("someone/tiny-sr-set")
    report = full_report(info.value)
    assert "internal error for key ***" in str(info.value)
    assert KEY not in report  # neither in the message nor in a chained traceback


def test_bad_handle(fake_kaggle: FakeKaggle) -> None:
    with pytest.raises(RuntimeError, match=r"could not get Kaggle dataset 'not-a-handle'"):
        kaggle_dataset_path("not-a-handle")
    assert fake_kaggle.calls == []
