"""A small threaded HTTP file server for the data tests (127.0.0.1, a free port).

It serves the files under ``root``; the first path segment picks a behaviour:

* ``/files/<name>``    honours ``Range: bytes=N-`` (206 + Content-Range, 416 past the end)
* ``/norange/<name>``  ignores Range and always answers 200 with the whole file
* ``/cut<K>/<name>``   honours Range, announces the full Content-Length, sends only K bytes, closes
* ``/missing/<name>``  always 404

Every request is logged as ``(path, range_header_or_None, status)`` in ``server.log``.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, format, *args):  # keep pytest output clean
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str], send: int | None = None) -> None:
        self.server.log.append((self.path, self.headers.get("Range"), status))
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body if send is None else body[:send])
        self.wfile.flush()
        self.close_connection = True

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        mode, _, name = self.path.lstrip("/").partition("/")
        path = self.server.root / name
        if mode == "missing" or not name or "/" in name or ".." in name or not path.is_file():
            return self._reply(404, b"not found", {})
        data = path.read_bytes()
        cut = int(mode[3:]) if re.fullmatch(r"cut\d+", mode) else None
        rng = self.headers.get("Range") if mode != "norange" else None
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-", rng.strip())
            start = int(m.group(1)) if m else 0
            if start >= len(data):
                return self._reply(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            body = data[start:]
            headers = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}", "Accept-Ranges": "bytes"}
            return self._reply(206, body, headers, send=cut)
        return self._reply(200, data, {"Accept-Ranges": "bytes"}, send=cut)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = Path(root)
        self.log: list[tuple[str, str | None, int]] = []


class DataServer:
    """``with DataServer(folder) as srv: srv.url("files", "a.bin")``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._srv = _Server(self.root)
        self._thread = threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._srv.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, mode: str, name: str = "") -> str:
        return f"{self.base}/{mode}/{name}"

    @property
    def log(self) -> list[tuple[str, str | None, int]]:
        return self._srv.log

    def __enter__(self) -> "DataServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(timeout=5)
