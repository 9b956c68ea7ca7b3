"""A static file server on 127.0.0.1 for download tests: it records every request path and stops
when the test's fixture closes it."""

from __future__ import annotations

import http.server
import threading
from urllib.parse import unquote


class StaticServer:
    """Serves ``files[name]`` at ``{prefix}{url-quoted name}``; anything else is a 404."""

    def __init__(self, files: dict[str, bytes], prefix: str = "/") -> None:
        self.files = files
        self.requests: list[str] = []
        outer = self

        class _Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                path = unquote(self.path)
                body = outer.files.get(path.removeprefix(prefix)) if path.startswith(prefix) else None
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
