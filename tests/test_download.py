"""srlab.data.download against a real HTTP server on 127.0.0.1 (no internet needed)."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import traceback
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from srlab.data.download import DownloadError, download, extract_zip, redact_url

PAYLOAD = bytes(range(256)) * 40  # 10 240 bytes: several reads, still instant
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
MD5 = hashlib.md5(PAYLOAD).hexdigest()

Handler = Callable[[http.server.BaseHTTPRequestHandler], None]


class LocalServer:
    """ThreadingHTTPServer on an ephemeral 127.0.0.1 port; routes map a path to a handler function.

    ``requests`` records every path asked for, so tests can prove that no request was made.
    ``release`` is set at teardown so handlers that simulate a hung server return promptly.
    """

    def __init__(self, routes: dict[str, Handler]) -> None:
        self.routes = routes
        self.requests: list[str] = []
        self.release = threading.Event()
        outer = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                route = outer.routes.get(self.path.split("?", 1)[0])
                if route is None:
                    self.send_error(404)
                else:
                    route(self)

            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        # a short poll interval makes shutdown() (and so each test) return quickly
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def send_bytes(body: bytes, *, status: int = 200, announced: int | None = None) -> Handler:
    """Handler sending ``body``; ``announced`` fakes a Content-Length (then the connection is closed)."""

    def handle(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Length", str(len(body) if announced is None else announced))
        h.end_headers()
        h.wfile.write(body)
        h.wfile.flush()
        h.close_connection = True

    return handle


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer({"/file.bin": send_bytes(PAYLOAD)}) as s:
        yield s


def assert_nothing_left(dest: Path) -> None:
    """Neither the file nor its .part (nor anything else) is left in the destination folder."""
    assert not dest.exists()
    if dest.parent.exists():
        assert list(dest.parent.iterdir()) == []


def full_report(err: BaseException) -> str:
    """Everything a user would see: the message plus the whole chained traceback."""
    return "".join(traceback.format_exception(err))


def test_download_ok_verifies_and_renames(server: LocalServer, tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "file.bin"
    out = download(f"{server.url}/file.bin", dest, sha256=SHA256, md5=MD5.upper(), size=len(PAYLOAD), progress=True)
    assert out == dest
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.bin"]  # no .part left over


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"sha256": "0" * 64}, f"sha256 mismatch: got {SHA256}"),
        ({"md5": "f" * 32}, f"md5 mismatch: got {MD5}"),
        ({"size": len(PAYLOAD) + 1}, f"server announces {len(PAYLOAD)} bytes, expected {len(PAYLOAD) + 1}"),
    ],
)
def test_verification_failure_leaves_nothing(server: LocalServer, tmp_path: Path, kwargs: dict, expected: str) -> None:
    dest = tmp_path / "dl" / "file.bin"
    with pytest.raises(DownloadError) as info:
        download(f"{server.url}/file.bin", dest, progress=False, **kwargs)
    assert expected in str(info.value)
    assert f"{server.url}/file.bin" in str(info.value)
    assert_nothing_left(dest)


def test_truncated_body(tmp_path: Path) -> None:
    with LocalServer({"/t.bin": send_bytes(b"x" * 1000, announced=2000)}) as s:
        dest = tmp_path / "t.bin"
        with pytest.raises(DownloadError, match="truncated: got 1000 of 2000 bytes"):
            download(f"{s.url}/t.bin", dest, progress=False)
    assert_nothing_left(dest)


def test_size_checked_without_content_length(tmp_path: Path) -> None:
    """A server that sends no Content-Length (HTTP/1.0 style, close-delimited) is still size-checked."""

    def no_length(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.end_headers()
        h.wfile.write(b"y" * 300)
        h.close_connection = True

    with LocalServer({"/n.bin": no_length}) as s:
        dest = tmp_path / "n.bin"
        with pytest.raises(DownloadError, match="size mismatch: got 300 bytes, expected 301"):
            download(f"{s.url}/n.bin", dest, size=301, progress=False)
        assert_nothing_left(dest)
        assert download(f"{s.url}/n.bin", dest, size=300, progress=False).read_bytes() == b"y" * 300


@pytest.mark.parametrize("status", [404, 500])
def test_http_errors(tmp_path: Path, status: int) -> None:
    with LocalServer({"/e": send_bytes(b"error page", status=status)}) as s:
        dest = tmp_path / "e.bin"
        with pytest.raises(DownloadError, match=f"HTTP {status}"):
            download(f"{s.url}/e", dest, progress=False)
    assert_nothing_left(dest)


def test_server_that_hangs_before_answering(tmp_path: Path) -> None:
    with LocalServer({}) as s:
        s.routes["/hang"] = lambda h: s.release.wait(10)
        dest = tmp_path / "h.bin"
        with pytest.raises(DownloadError, match=r"no response within 0.3 s"):
            download(f"{s.url}/hang", dest, timeout=0.3, progress=False)
    assert_nothing_left(dest)


def test_server_that_stalls_mid_body(tmp_path: Path) -> None:
    with LocalServer({}) as s:

        def stall(h: http.server.BaseHTTPRequestHandler) -> None:
            h.send_response(200)
            h.send_header("Content-Length", "5000")
            h.end_headers()
            h.wfile.write(b"z" * 100)
            h.wfile.flush()
            s.release.wait(10)

        s.routes["/stall"] = stall
        dest = tmp_path / "s.bin"
        with pytest.raises(DownloadError, match=r"no data for 0.3 s \(after \d+ bytes\)"):
            download(f"{s.url}/stall", dest, timeout=0.3, progress=False)
    assert_nothing_left(dest)


def test_connection_refused(tmp_path: Path) -> None:
    with LocalServer({}) as s:
        url = s.url
    # the server is closed now, so nothing listens on that port
    secret = "SECRET" + "456"  # built, so the traceback's source line cannot contain it
    dest = tmp_path / "r.bin"
    with pytest.raises(DownloadError, match=r"cannot reach the server \(ConnectionError\)") as info:
        download(f"{url}/x?key={secret}", dest, progress=False, timeout=2)
    assert secret not in full_report(info.value)  # requests' own message would repeat the URL
    assert_nothing_left(dest)


def test_errors_never_show_credentials(tmp_path: Path) -> None:
    with LocalServer({"/file.bin": send_bytes(PAYLOAD)}) as s:
        port = s.httpd.server_address[1]
        url = f"http://alice:hunter2@127.0.0.1:{port}/file.bin?token=SECRET123#frag"
        with pytest.raises(DownloadError) as info:
            download(url, tmp_path / "f.bin", sha256="0" * 64, progress=False)
        assert s.requests == ["/file.bin?token=SECRET123"]  # the token was used for the request...
    report = full_report(info.value)
    assert f"http://127.0.0.1:{port}/file.bin" in report
    for secret in ("SECRET123", "hunter2", "alice", "frag"):
        assert secret not in report  # ...but never shown
    assert redact_url(url) == f"http://127.0.0.1:{port}/file.bin"


def test_existing_dest_reused_without_request(server: LocalServer, tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    dest.write_bytes(PAYLOAD)
    assert download(f"{server.url}/file.bin", dest, sha256=SHA256, size=len(PAYLOAD), progress=False) == dest
    assert download(f"{server.url}/file.bin", dest, progress=False) == dest  # no checksum: trusted as is
    assert server.requests == []


def test_existing_dest_that_does_not_verify_is_replaced(server: LocalServer, tmp_path: Path) -> None:
    dest = tmp_path / "file.bin"
    dest.write_bytes(b"stale")
    (tmp_path / "file.bin.part").write_bytes(b"left by a killed run")
    download(f"{server.url}/file.bin", dest, sha256=SHA256, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert server.requests == ["/file.bin"]
    assert not (tmp_path / "file.bin.part").exists()


# --------------------------------------------------------------------------------------- extract_zip


def make_zip(path: Path, members: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_extract_zip_ok(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "a.zip", {"top/one.txt": b"1", "top/sub/two.txt": b"22"})
    out = extract_zip(archive, tmp_path / "out")
    assert out == tmp_path / "out"
    assert (out / "top" / "one.txt").read_bytes() == b"1"
    assert (out / "top" / "sub" / "two.txt").read_bytes() == b"22"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "out"]  # no temporary sibling left
    with pytest.raises(FileExistsError, match="already exists"):
        extract_zip(archive, out)


def test_extract_zip_crash_leaves_no_trusted_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = make_zip(tmp_path / "a.zip", {f"d/{i}.txt": b"x" * i for i in range(5)})
    real_extract = zipfile.ZipFile.extract
    calls = {"n": 0}

    def crash_on_third(self: zipfile.ZipFile, member: zipfile.ZipInfo, path: object = None, pwd: object = None) -> str:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # the user presses Ctrl-C mid-extraction
        return real_extract(self, member, path, pwd)

    monkeypatch.setattr(zipfile.ZipFile, "extract", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        extract_zip(archive, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip"]  # no out/, no half-extracted sibling

    # A hard kill (no cleanup at all) leaves a hidden .partial sibling: it is never trusted, and the
    # next extraction removes it.
    monkeypatch.setattr(zipfile.ZipFile, "extract", real_extract)
    stale = tmp_path / ".out.partial-killed"
    (stale / "d").mkdir(parents=True)
    (stale / "d" / "0.txt").write_bytes(b"")
    out = extract_zip(archive, tmp_path / "out")
    assert sorted(p.name for p in (out / "d").iterdir()) == [f"{i}.txt" for i in range(5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "out"]


def test_extract_zip_not_a_zip_is_deleted(tmp_path: Path) -> None:
    archive = tmp_path / "bad.zip"
    archive.write_bytes(b"<html>mirror error page</html>")
    with pytest.raises(DownloadError, match=r"corrupt zip archive .*bad\.zip.*deleted.*download it afresh"):
        extract_zip(archive, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_extract_zip_crc_error_is_deleted(tmp_path: Path) -> None:
    data = b"pixels" * 100
    archive = make_zip(tmp_path / "c.zip", {"img/0001.png": data}, compression=zipfile.ZIP_STORED)
    raw = bytearray(archive.read_bytes())
    at = raw.index(data)
    raw[at : at + 6] = b"PIXELS"  # same length, so the directory stays valid; only the CRC fails
    archive.write_bytes(bytes(raw))
    with pytest.raises(DownloadError, match="corrupt zip archive"):
        extract_zip(archive, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("evil", ["../evil.txt", "/abs/evil.txt", "ok/../../evil.txt", "C:/evil.txt", "..\\evil.txt"])
def test_extract_zip_rejects_path_traversal(tmp_path: Path, evil: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = make_zip(work / "evil.zip", {"fine.txt": b"ok", evil: b"pwned"})
    with pytest.raises(DownloadError, match="unsafe member path"):
        extract_zip(archive, work / "out")
    assert sorted(p.name for p in work.iterdir()) == ["evil.zip"]  # kept (unsafe, not corrupt)
    assert not list(tmp_path.rglob("evil.txt"))
    assert not (tmp_path / "abs").exists()


def test_extract_zip_missing_archive(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="does not exist"):
        extract_zip(tmp_path / "nope.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_zip_served_then_extracted(server: LocalServer, tmp_path: Path) -> None:
    """The two halves together, as the dataset modules use them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("set/a.png", b"A")
    blob = buf.getvalue()
    server.routes["/set.zip"] = send_bytes(blob)
    archive = download(
        f"{server.url}/set.zip", tmp_path / "set.zip", sha256=hashlib.sha256(blob).hexdigest(), progress=False
    )
    assert (extract_zip(archive, tmp_path / "x") / "set" / "a.png").read_bytes() == b"A"
