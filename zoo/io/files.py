"""Atomic writes: a temp file in the target folder, then rename, so a killed process never
leaves a half-written output, and existing outputs are kept unless the caller forces."""

from __future__ import annotations

import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path

from vaezoo.errors import UsageError


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def safe_text(s: str) -> str:
    """``s`` as text that can be written as UTF-8: bytes of a file name that are not valid UTF-8
    (which Python keeps as surrogate escapes) are written backslash-escaped, as ``bad\\xff.png``."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        pass
    try:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:   # a lone surrogate that did not come from a file name
        return s.encode("utf-8", "backslashreplace").decode("utf-8")


def check_writable(path: Path, force: bool) -> None:
    """Refuse, in one line, an output that would overwrite a file without --force, replace a folder,
    or go into a folder that does not exist (or is a file)."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"output {path} is a folder; give a file name")
    if (path.exists() or path.is_symlink()) and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    parent = path.parent
    if not parent.exists():
        raise UsageError(f"output folder {parent} does not exist")
    if not parent.is_dir():
        raise UsageError(f"cannot write {path}: {parent} is a file, not a folder")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def clean_stale_temps(path: Path) -> None:
    """Remove the temp files that killed writers of ``path`` left (``.<name>.<pid>.<random>.tmp`` whose
    process is gone); a live writer's temp file is left alone."""
    prefix = f".{path.name}."
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            entry.unlink(missing_ok=True)


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temp path next to ``path``; on success it is renamed onto ``path``. The temp file's name
    carries this process's id, so the next writer of ``path`` can remove what a killed one left."""
    path = Path(path)
    clean_stale_temps(path)
    # The name is chosen before the file exists (not by mkstemp), so a signal that lands while the file
    # is being created still finds it in the cleanup below: mkstemp can be interrupted after creating
    # its file but before returning the name. Only this process writes names carrying its pid.
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
    try:
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
        yield tmp
        # the temp file (and writers that replace it, like safetensors) has 0600; give the usual permissions
        os.chmod(tmp, 0o666 & ~_UMASK)
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | Path, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: str | Path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
