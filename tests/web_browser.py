"""Headless Chromium on an `vaezoo export-web` site, for tests/test_web.py and benchmarks/bench_web.py.

``serve(folder)`` serves the site on 127.0.0.1 (a free port) with the MIME types a browser insists on
for WebAssembly and JS modules, and keeps what the page POSTs to ``/report``. ``page_numbers`` loads a
page with ``--dump-dom`` under virtual time (the DOM is dumped once the page's work is done) and returns
the JSON the page's test mode writes into ``#result``; ``live_report`` loads it in real time and waits
for its POST (the timings: virtual time stops ``performance.now()``).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

TYPES = {".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript", ".json": "application/json"}
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--disable-extensions",
         "--disable-dev-shm-usage"]


def chromium() -> str | None:
    return next(filter(None, (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome"))), None)


class _Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def log_message(self, format, *args):  # keep pytest's output clean
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.reports.append(json.loads(body))
        self.server.reported.set()
        self.send_response(204)
        self.end_headers()


@contextmanager
def serve(folder: Path):
    """Yield the server (``.url``, ``.reports``, ``.reported``) serving ``folder``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(folder)))
    server.reports, server.reported = [], threading.Event()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def page_numbers(url: str, screenshot: Path | None = None, budget_ms: int = 60000, element: str = "result"):
    """The JSON a page writes into ``<pre id=element>`` (the site page's test mode, ``?test=1``, writes
    #result), from Chromium's --dump-dom."""
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        args = [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}"]
        if screenshot is not None:
            args += [f"--screenshot={screenshot}", "--window-size=1000,1400"]
        res = subprocess.run([*args, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    m = re.search(f'<pre id="{element}">(.*?)</pre>', res.stdout, re.S)
    if res.returncode != 0 or m is None or not m.group(1).strip():
        raise AssertionError(f"chromium gave no result for {url} (exit {res.returncode}): {res.stderr[-2000:]}")
    return json.loads(html.unescape(m.group(1)))


def live_report(server, url: str, timeout: float = 120) -> dict:
    """Load ``url`` (with ``&report=1``) in real time; return what the page POSTed."""
    server.reported.clear()
    # (Chromium's helper processes may still write to the profile as it is removed: cleanup errors are ignored)
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen([chromium(), *FLAGS, f"--user-data-dir={profile}", url], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if not server.reported.wait(timeout):
                raise AssertionError(f"the page at {url} reported nothing within {timeout:g}s")
        finally:
            os.killpg(proc.pid, signal.SIGTERM)   # the browser and its helpers: the group it leads
            proc.wait(30)
    return server.reports[-1]
