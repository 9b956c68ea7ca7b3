"""Upload every new best checkpoint of a training run to Yandex Disk, off the training thread.

The OAuth token is read from an environment variable (``YADISK_TOKEN`` by default) and only
ever lives inside the worker thread and the ``yadisk`` client it builds: it is never a
constructor argument (so it can't end up in a Hydra config), never an attribute of the
callback (so not in its repr or in a checkpoint), and it is scrubbed from every error message
this module records or logs.
"""

from __future__ import annotations

import logging
import math
import os
import posixpath
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import yadisk
from pytorch_lightning.callbacks import Callback
from yadisk.exceptions import PathExistsError, RequestError, RetriableYaDiskError
from yadisk.sessions.requests_session import RequestsSession

log = logging.getLogger(__name__)

_REDACTED = "<redacted>"

ClientFactory = Callable[[str], yadisk.Client]


class RebasedRequestsSession(RequestsSession):
    """yadisk's requests session, but REST calls go to ``api_base_url`` instead of Yandex.

    yadisk builds REST URLs from the module-global ``yadisk.settings.BASE_API_URL``;
    rewriting the prefix per session keeps that global untouched (other clients in the
    process are unaffected). Useful for an API gateway/proxy, and it is how the tests point
    the real client at a local server. Upload links returned by the API are used as given.
    """

    def __init__(self, api_base_url: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._from = yadisk.settings.BASE_API_URL.rstrip("/")
        self._to = api_base_url.rstrip("/")

    def send_request(self, method: Any, url: str, **kwargs: Any) -> Any:  # type: ignore[override]
        if url == self._from or url.startswith(self._from + "/"):
            url = self._to + url[len(self._from):]
        return super().send_request(method, url, **kwargs)


def make_client(token: str, api_base_url: str | None = None) -> yadisk.Client:
    """The default client: real yadisk over requests, optionally rebased to ``api_base_url``."""
    session = RebasedRequestsSession(api_base_url) if api_base_url else None
    return yadisk.Client(token=token, session=session)


def run_name_from_trainer(trainer: pl.Trainer) -> str:
    """``name/version_N`` of the trainer's logger (mirrors its local log dir), else a timestamp."""
    logger = trainer.logger
    if logger is not None:
        version = logger.version
        version_str = version if isinstance(version, str) else f"version_{version}"
        return f"{logger.name}/{version_str}".strip("/")
    return time.strftime("run-%Y%m%d-%H%M%S")


def _redact(text: str, token: str) -> str:
    return text.replace(token, _REDACTED) if token else text


def _describe(exc: BaseException, token: str) -> str:
    # Server error bodies (and proxies) may echo request headers back; never trust them.
    return _redact(f"{type(exc).__name__}: {exc}", token)


class _RedactingFilter(logging.Filter):
    """Scrubs the token from yadisk's own log records (it logs exception text at INFO)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if self._token:
            message = record.getMessage()
            if self._token in message:
                record.msg, record.args = _redact(message, self._token), None
        return True


@dataclass(frozen=True)
class _Job:
    seq: int
    local_path: str  # the checkpoint as Lightning wrote it (reported, never touched)
    staged_path: Path  # our private copy, deleted once the job is over
    remote_path: str


class YandexDiskUpload(Callback):
    """Uploads each new best checkpoint (per ModelCheckpoint) to ``{remote_dir}/{run_name}/``.

    Off (one info line) unless ``os.environ[token_env]`` is set on global rank 0. Uploads
    run on one daemon thread; failures are retried with exponential backoff
    (``backoff_s * 2**i``, at most ``retries`` retries for retriable errors) and then recorded
    in ``failed`` as ``(local_path, message)``; they never raise into training. At fit end the
    callback waits up to ``wait_on_end_s`` for the queue; what is still pending is listed in
    ``not_uploaded``. Local checkpoints are never modified or deleted.
    """

    def __init__(
        self,
        remote_dir: str = "srlab/weights",
        token_env: str = "YADISK_TOKEN",
        retries: int = 5,
        backoff_s: float = 2.0,
        timeout_s: float = 60.0,
        wait_on_end_s: float = 300.0,
        client_factory: ClientFactory | None = None,
        run_name: str | None = None,
        api_base_url: str | None = None,
        staging_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.remote_dir = remote_dir.strip("/")
        self.token_env = token_env
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.wait_on_end_s = wait_on_end_s
        self.run_name = run_name
        self.api_base_url = api_base_url
        self.staging_dir = staging_dir
        self._client_factory: ClientFactory = client_factory or (
            lambda token: make_client(token, api_base_url)
        )

        self.uploaded: list[str] = []  # remote paths
        self.failed: list[tuple[str, str]] = []  # (local_path, redacted error message)
        self.not_uploaded: list[str] = []  # local paths still pending when we stopped waiting

        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._pending: dict[int, _Job] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._seq = 0
        self._remote_run_dir = ""
        self._stage_root: Path | None = None
        self._seen: dict[str, tuple[str, float | None, int]] = {}
        self._armed = False
        self._said_off = False

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(remote_dir={self.remote_dir!r}, token_env={self.token_env!r}, "
            f"retries={self.retries}, active={self.active})"
        )

    @property
    def active(self) -> bool:
        return self._worker is not None

    # ---------------------------------------------------------------- programmatic API
    def start(self, run_name: str, staging_dir: str | os.PathLike[str]) -> bool:
        """Start the upload worker; returns False (and logs why, once) if there is no token."""
        if self._worker is not None:
            return True
        if not os.environ.get(self.token_env):
            if not self._said_off:
                log.info("Yandex Disk upload is off: environment variable %s is not set", self.token_env)
                self._said_off = True
            return False
        self._remote_run_dir = posixpath.join(self.remote_dir, run_name.strip("/"))
        Path(staging_dir).mkdir(parents=True, exist_ok=True)
        # A fresh private folder per run: concurrent runs may share the same staging_dir.
        self._stage_root = Path(tempfile.mkdtemp(prefix="run-", dir=staging_dir))
        # Fresh queue/event per worker: a worker abandoned by an earlier finish() may still be
        # blocked in a request and must keep seeing *its* stop flag, not a new run's.
        self._stop = threading.Event()
        self._queue = queue.Queue()
        # daemon: a stuck upload must never keep the process alive after training.
        self._worker = threading.Thread(
            target=self._work, args=(self._queue, self._stop), name="srlab-yadisk-upload", daemon=True
        )
        self._worker.start()
        log.info("Yandex Disk upload is on: best checkpoints go to %s", self._remote_run_dir)
        return True

    def submit(self, local_path: str | os.PathLike[str]) -> bool:
        """Stage a private copy of ``local_path`` now and queue its upload; never raises."""
        if self._worker is None or self._stage_root is None:
            return False
        src = Path(local_path)
        self._seq += 1
        staged = self._stage_root / f"{self._seq:04d}-{src.name}"
        try:
            # A copy, not a hard link: ModelCheckpoint may delete this file (top-k rotation) or
            # rewrite the same name before the upload runs, and fsspec's local "atomic" save
            # falls back to copying INTO the existing inode when its temp file is on another
            # filesystem (e.g. tmpfs /tmp), which would change a hard-linked file under us.
            shutil.copyfile(src, staged)
        except OSError as exc:
            staged.unlink(missing_ok=True)  # e.g. a partial copy on a full disk
            log.warning("Yandex Disk: could not stage %s for upload: %s", src, exc)
            self.failed.append((str(src), f"staging failed: {type(exc).__name__}: {exc}"))
            return False
        job = _Job(self._seq, str(src), staged, posixpath.join(self._remote_run_dir, src.name))
        with self._cond:
            self._pending[self._seq] = job
        self._queue.put(job)
        log.info("Yandex Disk: queued %s -> %s", src.name, job.remote_path)
        return True

    def finish(self, wait_s: float | None = None) -> list[str]:
        """Wait up to ``wait_s`` (default ``wait_on_end_s``) for the queue, then stop the worker.

        Returns (and appends to ``not_uploaded``) the local paths that were not done in time.
        """
        worker = self._worker
        if worker is None:
            return []
        timeout = self.wait_on_end_s if wait_s is None else wait_s
        with self._cond:
            self._cond.wait_for(lambda: not self._pending, timeout=timeout)
            left = [job.local_path for job in self._pending.values()]
            self._pending.clear()  # the abandoned worker discards them; a later run starts clean
        self._stop.set()  # the worker drops queued jobs and stops retrying
        self._queue.put(None)
        self._worker = None
        if left:
            self.not_uploaded.extend(left)
            log.warning(
                "Yandex Disk: %d checkpoint(s) not uploaded after waiting %.0f s (kept locally): %s",
                len(left), timeout, ", ".join(left),
            )
        else:
            worker.join(timeout=5.0)
            if self._stage_root is not None:
                # rmdir only removes empty folders: the shared parent stays if others use it.
                for folder in (self._stage_root, self._stage_root.parent):
                    try:
                        folder.rmdir()
                    except OSError:
                        break
        return left

    # ---------------------------------------------------------------- Lightning hooks
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or not trainer.is_global_zero:
            return  # only rank 0 uploads; best paths are synced across ranks
        self._armed = False
        self._seen = {}
        staging = self.staging_dir or os.path.join(trainer.default_root_dir, ".yadisk_staging")
        self.start(self.run_name or run_name_from_trainer(trainer), staging)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Baseline after any checkpoint restore (which may happen before or after on_fit_start,
        # depending on the strategy): a resumed run's old best is not a new best of this run.
        self._scan(trainer, enqueue=False)
        self._armed = True

    # ModelCheckpoint runs after all other callbacks in the same hook, so a save made in
    # on_train_batch_end / on_validation_end / on_train_epoch_end is seen at the next of these.
    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        self._scan(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._scan(trainer)

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._scan(trainer)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._scan(trainer)
        self.finish()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.finish()  # no-op after on_fit_end

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._scan(trainer)
        # On Ctrl+C Lightning ignores further SIGINTs while shutting down, so a long wait here
        # could not be cut short by the user: report what is pending instead of waiting.
        self.finish(0.0 if isinstance(exception, KeyboardInterrupt) else None)

    # ---------------------------------------------------------------- internals
    def _scan(self, trainer: pl.Trainer, enqueue: bool = True) -> None:
        if self._worker is None or (enqueue and not self._armed):
            return
        for ckpt in trainer.checkpoint_callbacks:
            path = getattr(ckpt, "best_model_path", "")
            if not path:
                continue
            score = getattr(ckpt, "best_model_score", None)
            score_f = None if score is None else float(score)
            if score_f is not None and math.isnan(score_f):
                score_f = None
            try:
                # mtime catches a fixed filename rewritten with a new best (same path, and the
                # score is None without a monitor).
                sig = (path, score_f, os.stat(path).st_mtime_ns)
            except OSError:
                continue
            key = ckpt.state_key
            if self._seen.get(key) != sig:
                self._seen[key] = sig
                if enqueue:
                    self.submit(path)

    def _work(self, jobs: queue.Queue[_Job | None], stop: threading.Event) -> None:
        # The token is read here and stays in this thread's frame and the client object.
        token = os.environ.get(self.token_env, "")
        redactor = _RedactingFilter(token)
        yadisk_logger = logging.getLogger("yadisk")
        yadisk_logger.addFilter(redactor)
        client: yadisk.Client | None = None
        made_dirs: set[str] = set()
        try:
            while True:
                job = jobs.get()
                if job is None:
                    return
                try:
                    if not stop.is_set():
                        client = self._run_job(job, client, made_dirs, token, stop)
                finally:
                    job.staged_path.unlink(missing_ok=True)
                    with self._cond:
                        self._pending.pop(job.seq, None)
                        self._cond.notify_all()
        finally:
            if client is not None:
                try:
                    client.close()
                except Exception as exc:  # noqa: BLE001 - a broken session must not kill the thread
                    log.debug("Yandex Disk: closing the client failed: %s", _describe(exc, token))
            yadisk_logger.removeFilter(redactor)

    def _run_job(
        self,
        job: _Job,
        client: yadisk.Client | None,
        made_dirs: set[str],
        token: str,
        stop: threading.Event,
    ) -> yadisk.Client | None:
        remote_dir = posixpath.dirname(job.remote_path)
        # yadisk's own retries are disabled (n_retries=0) so `retries`/`backoff_s` is the one policy.
        call_kwargs: dict[str, Any] = {"n_retries": 0, "timeout": self.timeout_s}
        for attempt in range(self.retries + 1):
            try:
                if client is None:
                    client = self._client_factory(token)
                if remote_dir not in made_dirs:
                    try:
                        client.makedirs(remote_dir, **call_kwargs)
                    except PathExistsError:
                        pass  # already there (e.g. an earlier run or another process)
                    made_dirs.add(remote_dir)
                client.upload(str(job.staged_path), job.remote_path, overwrite=True, **call_kwargs)
                self.uploaded.append(job.remote_path)
                log.info("Yandex Disk: uploaded %s -> %s", job.local_path, job.remote_path)
                return client
            except Exception as exc:  # noqa: BLE001 - nothing may escape into training
                message = _describe(exc, token)
                made_dirs.discard(remote_dir)  # the folder may be why it failed; re-check next time
                retriable = isinstance(exc, (RequestError, RetriableYaDiskError)) and not getattr(
                    exc, "disable_retry", False
                )
                if stop.is_set():
                    return client  # fit end gave up on us; already reported in not_uploaded
                if not retriable or attempt == self.retries:
                    log.warning("Yandex Disk: giving up on %s after %d attempt(s): %s",
                                job.local_path, attempt + 1, message)
                    self.failed.append((job.local_path, message))
                    return client
                delay = self.backoff_s * 2**attempt
                log.info("Yandex Disk: upload of %s failed (%s), retry in %.1f s",
                         job.local_path, message, delay)
                if stop.wait(delay):
                    return client
        return client
