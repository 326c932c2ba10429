"""Resumable, verified downloads with the standard library only (urllib, no ``requests``).

:func:`fetch` streams a URL into ``<dest>.part``, resumes an existing ``.part`` with an HTTP
``Range`` request, checks the sha256 / md5 digest and only then renames the file to ``dest``
(atomically, with :func:`os.replace`). Progress goes to stderr; nothing is printed to stdout.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from vaezoo.data.base import DataError

TIMEOUT_S = 30.0  # per socket operation (connect, each read), not for the whole file
CHUNK = 1 << 20
LOCK_NAME = ".vaezoo-download.lock"
USER_AGENT = "vaezoo-data/0.1 (+https://pypi.org/project/vaezoo/)"

__all__ = ["fetch", "file_digest", "verify_file", "TIMEOUT_S"]


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _expected(sha256: str | None, md5: str | None) -> tuple[str, str] | None:
    if sha256:
        return "sha256", sha256.lower()
    if md5:
        return "md5", md5.lower()
    return None


def verify_file(path: Path, sha256: str | None = None, md5: str | None = None, label: str | None = None) -> None:
    """Raise :class:`DataError` unless ``path`` has the given digest (sha256 preferred over md5)."""
    exp = _expected(sha256, md5)
    if exp is None:
        return
    algo, want = exp
    got = file_digest(path, algo)
    if got != want:
        raise DataError(
            f"checksum mismatch for {label or Path(path).name}: expected {algo} {want}, got {got}; "
            "the file is corrupt or not the expected version"
        )


class _Progress:
    def __init__(self, label: str, total: int | None, start: int, enabled: bool) -> None:
        self.label, self.total, self.done = label, total, start
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self.last = 0.0
        self.last_pct = -1

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if self.tty:
            if now - self.last < 0.2:
                return
            self.last = now
            sys.stderr.write("\r" + self._line())
            sys.stderr.flush()
        elif self.total:
            pct = int(100 * self.done / self.total) // 25 * 25
            if pct > self.last_pct:
                self.last_pct = pct
                sys.stderr.write(self._line() + "\n")

    def _line(self) -> str:
        mb = self.done / 1e6
        if self.total:
            return f"  {self.label}: {mb:.1f}/{self.total / 1e6:.1f} MB ({100 * self.done / self.total:.0f}%)"
        return f"  {self.label}: {mb:.1f} MB"

    def close(self) -> None:
        if self.tty:
            sys.stderr.write("\r" + self._line() + "\n")
            sys.stderr.flush()


class _Truncated(Exception):
    pass


def _download_once(url: str, part: Path, label: str, progress: bool, timeout: float) -> None:
    """Bring ``part`` up to the complete content of ``url`` (resuming when possible)."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            # Range not satisfiable: the part file is already complete (or longer than the file).
            # The checksum decides; a bad part is deleted by the caller and downloaded again.
            return
        raise
    with resp:
        status = getattr(resp, "status", None) or resp.getcode()
        length = resp.headers.get("Content-Length")
        length = int(length) if length is not None and length.strip().isdigit() else None
        mode = "wb"
        start = 0
        if have and status == 206:
            m = re.match(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", resp.headers.get("Content-Range", ""))
            if m is None or int(m.group(1)) != have:
                # A server that answers with another range than we asked for: start over.
                resp.close()
                part.unlink(missing_ok=True)
                return _download_once(url, part, label, progress, timeout)
            mode, start = "ab", have
        elif have:
            # 200 instead of 206: the server ignored the Range header and sends the whole file.
            if progress:
                sys.stderr.write(f"  {label}: the server ignored the Range request; restarting from 0\n")
        total = start + length if length is not None else None
        bar = _Progress(label, total, start, progress)
        received = 0
        try:
            with open(part, mode) as fh:
                while True:
                    try:
                        block = resp.read(CHUNK)
                    except http.client.IncompleteRead as e:
                        fh.write(e.partial)
                        received += len(e.partial)
                        break
                    if not block:
                        break
                    fh.write(block)
                    received += len(block)
                    bar.update(len(block))
        finally:
            bar.close()
        if length is not None and received < length:
            raise _Truncated(f"received {start + received} of {total} bytes")


def fetch(
    url_or_urls: str | Sequence[str],
    dest: str | Path,
    sha256: str | None = None,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Download ``url_or_urls`` (tried in order) to ``dest`` and verify it; return ``dest``.

    * Data streams into ``dest + '.part'``; an existing ``.part`` is resumed with a ``Range``
      request. A server that answers 200 instead of 206 is handled by starting over.
    * A transfer that ends before ``Content-Length`` raises :class:`DataError` and keeps the
      ``.part`` file, so the next call resumes it.
    * A wrong checksum deletes the ``.part`` file and raises :class:`DataError` naming the file,
      the expected and the actual digest (after trying the remaining URLs).
    * Only a verified file is renamed (atomically) to ``dest``. When ``dest`` already exists and
      matches the checksum nothing is downloaded.
    """
    urls = [url_or_urls] if isinstance(url_or_urls, str) else list(url_or_urls)
    if not urls:
        raise DataError(f"no URL to download {Path(dest).name} from")
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create folder {dest.parent} for {dest.name}: {e.strerror}") from e
    with _lock(dest):  # two processes fetching the same file: the second waits, then finds it done
        return _fetch_locked(urls, dest, sha256, md5, progress, timeout)


@contextlib.contextmanager
def _lock(dest: Path):
    """An exclusive advisory lock on ``.vaezoo-download.lock`` in ``dest``'s folder.

    POSIX ``flock``: released by the OS if the process dies, so a stale lock cannot block anyone.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    lock_path = dest.parent / LOCK_NAME
    with open(lock_path, "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _fetch_locked(urls: list[str], dest: Path, sha256, md5, progress: bool, timeout: float) -> Path:
    label = dest.name
    if dest.exists():
        try:
            verify_file(dest, sha256, md5, label)
            return dest
        except DataError:
            sys.stderr.write(f"  {label}: existing file fails its checksum; downloading it again\n")
            dest.unlink()
    part = dest.with_suffix(dest.suffix + ".part")
    errors: list[str] = []
    for url in urls:
        if progress:
            sys.stderr.write(f"downloading {url}\n")
        try:
            _download_once(url, part, label, progress, timeout)
        except _Truncated as e:
            errors.append(f"{url}: transfer truncated ({e}); run again to resume")
            continue
        except urllib.error.HTTPError as e:
            errors.append(f"{url}: HTTP {e.code} {e.reason}")
            continue
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", None) or e
            kept = " (partial data kept; run again to resume)" if part.exists() and part.stat().st_size else ""
            errors.append(f"{url}: {type(e).__name__}: {reason}{kept}")
            continue
        except ValueError as e:  # malformed URL
            errors.append(f"{url}: {e}")
            continue
        if not part.exists():
            errors.append(f"{url}: nothing received")
            continue
        try:
            verify_file(part, sha256, md5, label)
        except DataError as e:
            part.unlink(missing_ok=True)
            errors.append(f"{e} (from {url})")
            continue
        os.replace(part, dest)
        return dest
    if len(errors) == 1:
        raise DataError(f"could not download {label}: {errors[0]}")
    raise DataError(f"could not download {label} from any of {len(urls)} URLs: " + " | ".join(errors))
