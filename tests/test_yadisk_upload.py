"""YandexDiskUpload against the real yadisk client talking to a fake Yandex Disk on 127.0.0.1.

The fake server implements the three REST calls an upload needs, with Yandex's semantics
(mkdir needs the parent, 409 error names, upload link -> PUT 201) so that a callback that
skipped creating folders or mis-handled "already exists" fails here too.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import traceback
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger

from srlab.callbacks.yadisk_upload import YandexDiskUpload, run_name_from_trainer

TOKEN = "y0_TEST-SECRET-token-7f3a9c"  # distinctive, so "absent from text" checks mean something


class FakeDisk:
    """A tiny Yandex Disk REST API. ``mode``: ok | fail | hang; ``fail_first`` for flaky runs."""

    def __init__(self, token: str, mode: str = "ok", fail_first: int = 0, fail_status: int = 500) -> None:
        self.token = token
        self.mode = mode
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.dirs: set[str] = {""}  # normalised paths without "disk:/"; "" is the root
        self.files: dict[str, bytes] = {}
        self.link_times: list[float] = []  # one per upload-link request = one upload attempt
        self.mkdir_calls: list[tuple[str, int]] = []
        self.rest_auth: list[str] = []
        self.release = threading.Event()  # ends "hang" handlers and opens the upload gate
        self.gate: threading.Event | None = None  # when set up, uploads wait for it
        self._uploads: dict[str, str] = {}
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        # A bug in the fake must fail the test, not look like a flaky network to the client.
        self.handler_errors: list[str] = []
        self.server.handle_error = lambda request, client_address: self.handler_errors.append(  # type: ignore[method-assign]
            traceback.format_exc()
        )
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> FakeDisk:  # noqa: PYI034 - not meant to be subclassed
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.release.set()
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
        if exc_type is None:  # don't mask the test's own failure
            assert not self.handler_errors, self.handler_errors[0]

    @staticmethod
    def norm(path: str) -> str:
        return path.removeprefix("disk:").strip("/")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        disk = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _reply(self, status: int, body: dict | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # client gave up (timeout) before we answered
                    pass

            def _error(self, status: int, name: str, description: str) -> None:
                self._reply(status, {"message": "error", "description": description, "error": name})

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    for _ in range(1_000_000):  # bounded: a chunked body ends with a 0 chunk
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                    raise RuntimeError("chunked body did not end")
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _auth_ok(self) -> bool:
                got = self.headers.get("Authorization", "")
                disk.rest_auth.append(got)
                if got != f"OAuth {disk.token}":
                    # Echo the header back like a careless proxy: the client must not leak it.
                    self._error(401, "UnauthorizedError", f"bad credentials: {got}")
                    return False
                return True

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query))
                if url.path != "/v1/disk/resources/upload":
                    return self._error(404, "NotFoundError", url.path)
                if not self._auth_ok():
                    return
                with disk._lock:
                    disk.link_times.append(time.monotonic())
                    attempt = len(disk.link_times)
                if disk.mode == "hang":
                    disk.release.wait(30)  # far beyond the client timeout; released at teardown
                    return self._error(503, "ServiceUnavailableError", "hung")
                if disk.mode == "fail" or attempt <= disk.fail_first:
                    got = self.headers.get("Authorization", "")
                    return self._error(disk.fail_status, "InternalServerError", f"boom for {got}")
                path = disk.norm(query["path"])
                parent = path.rpartition("/")[0]
                if parent not in disk.dirs:
                    return self._error(409, "DiskPathDoesntExistsError", "no parent folder")
                if path in disk.files and query.get("overwrite") != "true":
                    return self._error(409, "DiskResourceAlreadyExistsError", "exists")
                upload_id = str(attempt)
                disk._uploads[upload_id] = path
                self._reply(200, {"href": f"{disk.base}/upload/{upload_id}", "method": "PUT", "templated": False})

            def do_PUT(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path.startswith("/upload/"):
                    data = self._body()
                    if disk.gate is not None:
                        disk.gate.wait(20)
                    disk.files[disk._uploads[url.path.rsplit("/", 1)[1]]] = data
                    return self._reply(201)
                if url.path != "/v1/disk/resources":
                    return self._error(404, "NotFoundError", url.path)
                self._body()
                if not self._auth_ok():
                    return
                path = disk.norm(dict(urllib.parse.parse_qsl(url.query))["path"])
                if path in disk.dirs:
                    status = 409
                    self._error(409, "DiskPathPointsToExistentDirectoryError", "exists")
                elif path.rpartition("/")[0] not in disk.dirs:
                    status = 409
                    self._error(409, "DiskPathDoesntExistsError", "no parent")
                else:
                    status = 201
                    disk.dirs.add(path)
                    self._reply(201, {"href": f"{disk.base}/v1/disk/resources?path=disk:/{path}",
                                      "method": "GET", "templated": False})
                disk.mkdir_calls.append((path, status))

        return Handler


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SRLAB_TEST_YADISK_TOKEN", TOKEN)
    return "SRLAB_TEST_YADISK_TOKEN"


@pytest.fixture
def caplog_all(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)  # includes yadisk's and urllib3's own loggers
    yield caplog


def make_callback(disk: FakeDisk, token_env: str, **kwargs: object) -> YandexDiskUpload:
    defaults: dict[str, object] = {"token_env": token_env, "api_base_url": disk.base, "retries": 3,
                                   "backoff_s": 0.02, "timeout_s": 5.0, "wait_on_end_s": 10.0}
    defaults.update(kwargs)
    return YandexDiskUpload(**defaults)  # type: ignore[arg-type]


def assert_no_token(cb: YandexDiskUpload, caplog: pytest.LogCaptureFixture) -> None:
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(cb)
    assert TOKEN not in repr(vars(cb))
    assert all(TOKEN not in msg for _, msg in cb.failed)


def write_ckpt(path: Path, size: int = 300_000) -> bytes:
    data = bytes(range(256)) * (size // 256) + b"tail"
    path.write_bytes(data)
    return data


# ---------------------------------------------------------------------------- worker-level tests


def test_uploads_bytes_creates_folders_and_sends_oauth(tmp_path: Path, token_env: str, caplog_all) -> None:
    ckpt = tmp_path / "epoch=0-step=2.ckpt"
    data = write_ckpt(ckpt)
    with FakeDisk(TOKEN) as disk:
        disk.dirs.add("srlab")  # a pre-existing top folder: only the missing levels get created
        cb = make_callback(disk, token_env)
        assert cb.start("exp/version_0", tmp_path / "stage")
        assert cb.submit(ckpt)
        assert cb.finish() == []
        # second run into the same folder: mkdir answers 409 "exists", which must be ignored
        cb2 = make_callback(disk, token_env)
        assert cb2.start("exp/version_0", tmp_path / "stage2")
        assert cb2.submit(ckpt)
        assert cb2.finish() == []

    remote = "srlab/weights/exp/version_0/epoch=0-step=2.ckpt"
    assert disk.files == {remote: data}
    assert cb.uploaded == [remote] and cb.failed == [] and cb2.uploaded == [remote] and cb2.failed == []
    assert ("srlab/weights/exp/version_0", 409) in disk.mkdir_calls  # cb2 hit "already exists"
    assert "srlab/weights" in disk.dirs
    assert disk.rest_auth and all(h == f"OAuth {TOKEN}" for h in disk.rest_auth)
    assert ckpt.read_bytes() == data  # local checkpoint untouched
    assert not (tmp_path / "stage").exists()  # staged copy cleaned up
    assert_no_token(cb, caplog_all)


def test_retries_with_backoff_then_succeeds(tmp_path: Path, token_env: str, caplog_all) -> None:
    ckpt = tmp_path / "best.ckpt"
    data = write_ckpt(ckpt)
    with FakeDisk(TOKEN, fail_first=2, fail_status=503) as disk:
        cb = make_callback(disk, token_env, retries=5, backoff_s=0.1)
        cb.start("run", tmp_path / "stage")
        cb.submit(ckpt)
        assert cb.finish() == []
    assert len(disk.link_times) == 3  # 2 failures + 1 success; yadisk's own retries are off
    gaps = [b - a for a, b in zip(disk.link_times[:-1], disk.link_times[1:], strict=True)]
    assert gaps[0] >= 0.1 * 0.9 and gaps[1] >= 0.2 * 0.9  # exponential: 0.1 s, then 0.2 s
    assert disk.files == {"srlab/weights/run/best.ckpt": data}
    assert cb.failed == []
    assert_no_token(cb, caplog_all)


def test_always_failing_is_reported_not_raised(tmp_path: Path, token_env: str, caplog_all) -> None:
    ckpt = tmp_path / "best.ckpt"
    data = write_ckpt(ckpt)
    with FakeDisk(TOKEN, mode="fail") as disk:  # error bodies echo the Authorization header
        cb = make_callback(disk, token_env, retries=2)
        cb.start("run", tmp_path / "stage")
        cb.submit(ckpt)
        assert cb.finish() == []  # done (given up), not pending
    assert len(disk.link_times) == 3  # 1 try + 2 retries
    assert disk.files == {}
    assert cb.uploaded == []
    assert len(cb.failed) == 1
    local, message = cb.failed[0]
    assert local == str(ckpt) and "InternalServerError" in message and "<redacted>" in message
    assert "giving up" in caplog_all.text
    assert ckpt.read_bytes() == data
    assert_no_token(cb, caplog_all)


def test_rejected_token_is_not_retried_and_not_leaked(tmp_path: Path, token_env: str, caplog_all) -> None:
    ckpt = tmp_path / "best.ckpt"
    write_ckpt(ckpt)
    with FakeDisk("the-token-the-server-wants") as disk:  # our TOKEN is wrong -> 401 echoing it
        cb = make_callback(disk, token_env, retries=4)
        cb.start("run", tmp_path / "stage")
        cb.submit(ckpt)
        cb.finish()
    # 401 is not retriable; the failed mkdir is the only REST call made
    assert disk.rest_auth == [f"OAuth {TOKEN}"] and disk.link_times == []
    assert len(cb.failed) == 1 and "UnauthorizedError" in cb.failed[0][1]
    assert_no_token(cb, caplog_all)


def test_off_without_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog_all) -> None:
    monkeypatch.delenv("SRLAB_TEST_NO_TOKEN", raising=False)
    ckpt = tmp_path / "best.ckpt"
    write_ckpt(ckpt)
    with FakeDisk(TOKEN) as disk:
        cb = make_callback(disk, "SRLAB_TEST_NO_TOKEN")
        assert not cb.start("run", tmp_path / "stage")
        assert not cb.start("run", tmp_path / "stage")
        assert not cb.submit(ckpt)
        assert cb.finish() == []
    off_lines = [r for r in caplog_all.records if "upload is off" in r.getMessage()]
    assert len(off_lines) == 1 and "SRLAB_TEST_NO_TOKEN" in off_lines[0].getMessage()
    assert off_lines[0].levelno == logging.INFO
    assert disk.rest_auth == [] and not cb.active
    assert not any(t.name == "srlab-yadisk-upload" for t in threading.enumerate() if t.is_alive())


def test_staged_copy_survives_local_rewrite_and_delete(tmp_path: Path, token_env: str) -> None:
    # ModelCheckpoint may overwrite (same filename) or delete the file before the upload runs.
    ckpt = tmp_path / "best.ckpt"
    original = write_ckpt(ckpt)
    with FakeDisk(TOKEN) as disk:
        disk.gate = threading.Event()  # hold the upload until the local file has changed
        cb = make_callback(disk, token_env)
        cb.start("run", tmp_path / "stage")
        cb.submit(ckpt)
        with open(ckpt, "r+b") as f:  # in place: same inode, which a hard link would follow
            f.write(b"X" * 1000)
        disk.gate.set()
        assert cb.finish() == []
    assert disk.files == {"srlab/weights/run/best.ckpt": original}


def test_hanging_server_is_bounded_by_wait_on_end(tmp_path: Path, token_env: str, caplog_all) -> None:
    ckpt = tmp_path / "best.ckpt"
    data = write_ckpt(ckpt)
    with FakeDisk(TOKEN, mode="hang") as disk:
        cb = make_callback(disk, token_env, timeout_s=10.0)
        cb.start("run", tmp_path / "stage")
        worker = cb._worker
        cb.submit(ckpt)
        t0 = time.monotonic()
        assert cb.finish(wait_s=0.3) == [str(ckpt)]
        assert time.monotonic() - t0 < 2.0
        assert cb.not_uploaded == [str(ckpt)] and "not uploaded" in caplog_all.text
        assert worker is not None and worker.daemon
    # leaving the server context released the hung handler: the worker stops without retrying
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert len(disk.link_times) == 1 and cb.failed == [] and cb.uploaded == []
    assert ckpt.read_bytes() == data
    assert_no_token(cb, caplog_all)


# ---------------------------------------------------------------------------- Lightning tests

PSNR_BY_EPOCH = [20.0, 25.0, 22.0]  # best at epoch 0, new best at 1, epoch 2 is worse


class TinyModel(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Conv2d(1, 1, 3, padding=1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.log("val/psnr", PSNR_BY_EPOCH[self.current_epoch])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def loader() -> torch.utils.data.DataLoader:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 8, 8, generator=g)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x), batch_size=4)


class OpenGateAtTrainEnd(pl.Callback):
    """Keeps uploads blocked during training so top-k rotation deletes the first best first."""

    def __init__(self, gate: threading.Event) -> None:
        self.gate = gate

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.gate.set()


def make_trainer(tmp_path: Path, callbacks: list[pl.Callback]) -> pl.Trainer:
    return pl.Trainer(max_epochs=3, limit_train_batches=2, limit_val_batches=1, enable_progress_bar=False,
                      logger=False, default_root_dir=tmp_path, callbacks=callbacks, accelerator="cpu",
                      num_sanity_val_steps=0, enable_model_summary=False)


def test_fit_uploads_exactly_the_new_best_checkpoints(tmp_path: Path, token_env: str, caplog_all) -> None:
    ckpt_cb = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/psnr", mode="max", save_top_k=1)
    with FakeDisk(TOKEN) as disk:
        disk.gate = threading.Event()
        cb = make_callback(disk, token_env, run_name="fit-run")
        trainer = make_trainer(tmp_path, [cb, OpenGateAtTrainEnd(disk.gate), ckpt_cb])
        trainer.fit(TinyModel(), loader(), loader())
        assert disk.gate.is_set()

    prefix = "srlab/weights/fit-run/"
    assert sorted(disk.files) == [prefix + "epoch=0-step=2.ckpt", prefix + "epoch=1-step=4.ckpt"]
    assert cb.uploaded == [prefix + "epoch=0-step=2.ckpt", prefix + "epoch=1-step=4.ckpt"]
    assert cb.failed == [] and cb.not_uploaded == []
    # epoch 0's file was rotated away locally before its upload ran: the staged copy was sent
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["epoch=1-step=4.ckpt"]
    first = torch.load(io.BytesIO(disk.files[prefix + "epoch=0-step=2.ckpt"]), weights_only=False)
    assert first["epoch"] == 0
    assert disk.files[prefix + "epoch=1-step=4.ckpt"] == (tmp_path / "ckpt" / "epoch=1-step=4.ckpt").read_bytes()
    assert not (tmp_path / ".yadisk_staging").exists()
    assert_no_token(cb, caplog_all)


def test_fit_with_hanging_server_finishes_quickly(tmp_path: Path, token_env: str, caplog_all) -> None:
    ckpt_cb = ModelCheckpoint(dirpath=tmp_path / "ckpt", monitor="val/psnr", mode="max", save_top_k=1)
    with FakeDisk(TOKEN, mode="hang") as disk:
        # Client timeout 20 s: were any upload on the training thread, fit would take >= 20 s.
        cb = make_callback(disk, token_env, timeout_s=20.0, wait_on_end_s=0.5)
        trainer = make_trainer(tmp_path, [cb, ckpt_cb])
        t0 = time.monotonic()
        trainer.fit(TinyModel(), loader(), loader())
        elapsed = time.monotonic() - t0
    assert elapsed < 10.0
    assert trainer.current_epoch == 3  # training itself completed
    assert len(cb.not_uploaded) == 2 and cb.uploaded == [] and cb.failed == []
    assert (tmp_path / "ckpt" / "epoch=1-step=4.ckpt").exists()
    assert_no_token(cb, caplog_all)


def test_run_name_from_logger(tmp_path: Path) -> None:
    trainer = pl.Trainer(logger=CSVLogger(tmp_path, name="exp", version=3), default_root_dir=tmp_path)
    assert run_name_from_trainer(trainer) == "exp/version_3"
    trainer = pl.Trainer(logger=CSVLogger(tmp_path, name="exp", version="ablation-a"), default_root_dir=tmp_path)
    assert run_name_from_trainer(trainer) == "exp/ablation-a"


class CrashAfterSavingEpoch1(ModelCheckpoint):
    # ModelCheckpoint saves in on_train_epoch_end, after every other callback's hook; crashing
    # right after that save means only on_exception can still see the new best.
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if trainer.current_epoch == 1:
            raise RuntimeError("simulated crash")


def test_crash_still_uploads_the_last_best(tmp_path: Path, token_env: str, caplog_all) -> None:
    ckpt_cb = CrashAfterSavingEpoch1(dirpath=tmp_path / "ckpt", monitor="val/psnr", mode="max", save_top_k=1)
    with FakeDisk(TOKEN) as disk:
        cb = make_callback(disk, token_env, run_name="crash")
        with pytest.raises(RuntimeError, match="simulated crash"):
            make_trainer(tmp_path, [cb, ckpt_cb]).fit(TinyModel(), loader(), loader())
    assert sorted(disk.files) == ["srlab/weights/crash/epoch=0-step=2.ckpt", "srlab/weights/crash/epoch=1-step=4.ckpt"]
    assert cb.failed == [] and cb.not_uploaded == [] and not cb.active
