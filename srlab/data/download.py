"""Verified, atomic downloads and zip extraction.

Two promises the rest of ``srlab.data`` relies on:

* a file at ``dest`` is complete: ``download`` streams into ``<dest>.part`` and only renames it to
  ``dest`` (``os.replace``, atomic on one file system) after status, length, size and hash checks pass;
  on any failure the ``.part`` file is removed, so nothing half-written is ever trusted;
* a folder made by ``extract_zip`` is complete: members go into a hidden temporary sibling that is
  renamed into place only after every member was extracted and CRC-checked.

Resuming an interrupted download is NOT supported: a failed transfer is deleted and the next call
starts over (the archives used here are at most a few GB, and a resume would need the server's Range
support plus a way to trust a partial file across runs).

Error messages name the URL without its query string, fragment or user:password part, because
signed/mirror URLs often carry tokens there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from tqdm import tqdm

__all__ = ["DownloadError", "download", "extract_zip", "redact_url"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20  # 1 MiB: large enough for throughput, small enough for a smooth progress bar


class DownloadError(RuntimeError):
    """A download or extraction failed; nothing partial was left where a later run would trust it."""


def redact_url(url: str) -> str:
    """``url`` without credentials: drops ``user:password@``, the query string and the fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, *, sha256: str | None, md5: str | None, size: int | None) -> str | None:
    """``None`` when ``path`` matches every expectation given, else a sentence saying what differs."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"size mismatch: got {actual_size} bytes, expected {size}"
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected is None:
            continue
        actual = _file_digest(path, algorithm)
        if actual != expected.lower():
            return f"{algorithm} mismatch: got {actual}, expected {expected.lower()}"
    return None


def _is_timeout(err: requests.exceptions.RequestException) -> bool:
    return isinstance(err, requests.exceptions.Timeout) or any(
        isinstance(arg, urllib3.exceptions.TimeoutError) for arg in err.args
    )


def _raw_bytes_read(response: requests.Response) -> int:
    """Bytes urllib3 pulled off the socket so far (0 if the response object cannot tell)."""
    try:
        return int(response.raw.tell())
    except Exception:  # any failure here only loses detail in an error message
        return 0


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    size: int | None = None,
    progress: bool = True,
    timeout: float = 60,
) -> Path:
    """Download ``url`` to ``dest`` and return ``dest``.

    If ``dest`` already exists and matches ``size``/``sha256``/``md5`` (those given), it is reused
    without any request; an existing file that does not match is replaced by a fresh download.
    ``timeout`` bounds the connection and each wait for data (``requests`` semantics), not the whole
    transfer. Raises :class:`DownloadError` naming the (redacted) URL and what went wrong; on error
    neither ``dest`` (if it did not verify before) nor ``<dest>.part`` is left behind.
    """
    dest = Path(dest)
    safe_url = redact_url(url)
    if dest.is_file():
        problem = _verify(dest, sha256=sha256, md5=md5, size=size)
        if problem is None:
            log.debug("reusing %s", dest)
            return dest
        log.warning("%s exists but does not verify (%s); downloading it again", dest, problem)

    part = dest.with_suffix(dest.suffix + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A .part left by a killed process is never resumed (see module docstring): start over.
        _unlink_quietly(part)
        _fetch(url, safe_url, part, sha256=sha256, md5=md5, size=size, progress=progress, timeout=timeout)
        os.replace(part, dest)
    except BaseException:
        # BaseException too: Ctrl-C in the middle of a multi-GB transfer must not leave a .part behind.
        _unlink_quietly(part)
        raise
    return dest


def _fetch(
    url: str,
    safe_url: str,
    part: Path,
    *,
    sha256: str | None,
    md5: str | None,
    size: int | None,
    progress: bool,
    timeout: float,
) -> None:
    expected_digests = {name: want.lower() for name, want in (("sha256", sha256), ("md5", md5)) if want}
    hashers = {name: hashlib.new(name) for name in expected_digests}
    received = 0
    try:
        # identity encoding: we count and hash the bytes exactly as the server stores them, so
        # Content-Length and the published checksums refer to the same bytes we write.
        with requests.get(url, stream=True, timeout=timeout, headers={"Accept-Encoding": "identity"}) as r:
            if r.status_code != 200:
                raise DownloadError(f"download of {safe_url} failed: HTTP {r.status_code} {r.reason or ''}".rstrip())
            length_header = r.headers.get("Content-Length")
            encoded = r.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
            expected_length = int(length_header) if length_header and length_header.isdigit() and not encoded else None
            if size is not None and expected_length is not None and expected_length != size:
                raise DownloadError(
                    f"download of {safe_url} failed: server announces {expected_length} bytes, expected {size}"
                )
            with (
                part.open("wb") as f,
                tqdm(
                    total=expected_length or size,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=part.name.removesuffix(".part"),
                    disable=not progress,
                    leave=False,
                ) as bar,
            ):
                try:
                    for chunk in r.iter_content(_CHUNK):
                        f.write(chunk)
                        received += len(chunk)
                        for h in hashers.values():
                            h.update(chunk)
                        bar.update(len(chunk))
                except requests.exceptions.RequestException as err:
                    # requests reports a stall mid-body as ConnectionError(ReadTimeoutError) and a peer
                    # that closes early as ChunkedEncodingError(IncompleteRead); say which, and how
                    # much arrived, which is what a user needs to judge a flaky mirror. `got` includes
                    # a partial last read that iter_content dropped.
                    got = max(received, _raw_bytes_read(r))
                    if _is_timeout(err):
                        raise DownloadError(
                            f"download of {safe_url} failed: no data for {timeout:g} s (after {got} bytes)"
                        ) from None
                    if expected_length is not None and got < expected_length:
                        raise DownloadError(
                            f"download of {safe_url} failed: truncated: got {got} of {expected_length} bytes"
                        ) from None
                    raise DownloadError(
                        f"download of {safe_url} failed after {got} bytes: connection broken ({type(err).__name__})"
                    ) from None
                f.flush()
                os.fsync(f.fileno())
    except requests.exceptions.RequestException as err:
        if _is_timeout(err):
            raise DownloadError(f"download of {safe_url} failed: no response within {timeout:g} s") from None
        # `from None` and only the exception type: requests' messages repeat the full URL,
        # query token included.
        what = "cannot reach the server" if isinstance(err, requests.exceptions.ConnectionError) else "request error"
        raise DownloadError(f"download of {safe_url} failed: {what} ({type(err).__name__})") from None
    except OSError as err:
        raise DownloadError(f"download of {safe_url} failed: cannot write {part}: {err.strerror or err}") from None

    if expected_length is not None and received < expected_length:
        raise DownloadError(f"download of {safe_url} failed: truncated: got {received} of {expected_length} bytes")
    if expected_length is not None and received > expected_length:
        raise DownloadError(
            f"download of {safe_url} failed: got {received} bytes, more than the {expected_length} announced"
        )
    if size is not None and received != size:
        raise DownloadError(f"download of {safe_url} failed: size mismatch: got {received} bytes, expected {size}")
    for name, h in hashers.items():
        want = expected_digests[name]
        if h.hexdigest() != want:
            raise DownloadError(f"download of {safe_url} failed: {name} mismatch: got {h.hexdigest()}, expected {want}")


def _safe_member_path(name: str) -> PurePosixPath:
    """The member's relative path, or DownloadError for names that would escape the target folder.

    ``zipfile`` would silently rewrite such names; we refuse the archive instead, since a
    legitimate dataset archive never contains them.
    """
    normalized = name.replace("\\", "/")
    p = PurePosixPath(normalized)
    if not normalized or p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise DownloadError(f"unsafe member path in zip archive: {name!r}")
    return p


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def extract_zip(archive: Path, dest_dir: Path) -> Path:
    """Extract ``archive`` so that its members end up under ``dest_dir``; return ``dest_dir``.

    ``dest_dir`` must not exist yet (FileExistsError otherwise): the members are extracted into a
    hidden temporary sibling (``.<name>.partial-*``) that is renamed to ``dest_dir`` only once all of
    them were written and CRC-checked, so an existing ``dest_dir`` is always complete. Stale
    ``.partial`` siblings from a crashed run are removed first (extracting into the same
    ``dest_dir`` from two processes at once is not supported).

    A corrupt archive raises DownloadError and is DELETED, so the next run downloads it again.
    An archive with absolute or ``..`` member names raises DownloadError and is kept (it is not
    corrupt, just unsafe, and a user may want to inspect it).
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    if dest_dir.exists():
        raise FileExistsError(f"cannot extract {archive.name}: {dest_dir} already exists")
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{dest_dir.name}.partial-"
    for stale in dest_dir.parent.glob(prefix + "*"):
        _remove_tree(stale)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=dest_dir.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the final folder should be as readable as any other
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:  # check every member before writing anything
                _safe_member_path(info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    # zipfile would write the link target as a file's content; refuse rather than guess.
                    raise DownloadError(f"zip archive {archive} contains a symbolic link: {info.filename!r}")
            for info in tqdm(members, desc=f"extracting {archive.name}", unit="file", leave=False):
                # ZipFile.extract reads the member to its end, which checks its CRC-32.
                zf.extract(info, tmp)
        os.replace(tmp, dest_dir)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        _remove_tree(tmp)
        _unlink_quietly(archive)
        raise DownloadError(
            f"corrupt zip archive {archive} ({err}); it has been deleted, run again to download it afresh"
        ) from None
    except FileNotFoundError as err:
        _remove_tree(tmp)
        if not archive.exists():
            raise DownloadError(f"zip archive {archive} does not exist") from None
        raise DownloadError(f"extracting {archive} failed: {err}") from err
    except BaseException:
        _remove_tree(tmp)
        raise
    return dest_dir
