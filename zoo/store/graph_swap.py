"""Replacing a checkpoint's graphs and manifest as one step (torch-free, POSIX).

A checkpoint's ONNX graphs (``onnx/``) and the manifest that vouches for them (``config.json``) are two
things on disk, so an exporter that rewrote them in place could be seen half-way: a reader with the old
manifest and a new graph refuses the graph as tampered, and a writer killed between the two leaves a
folder every reader refuses. Here:

* writers (:func:`swap_graphs`) hold an exclusive ``flock`` on ``<folder>/.vaezoo.lock``, build the new
  ``onnx/`` beside the old one (``.onnx.<pid>.staging``), write the new config next to config.json
  (``.config.json.<pid>.pending``: the journal), then rename: onnx -> ``.onnx.<pid>.old``, staging ->
  onnx, pending -> config.json, and remove the old folder;
* readers (:func:`locked_read`) hold a shared lock while they read the config and the graphs, so they
  see the old set or the new set, never a mix;
* whoever comes next finishes or undoes what a killed writer left (:func:`recover`): with the new
  graphs in place it rolls forward to the pending config, otherwise it rolls back to the old graphs.

``VAEZOO_FAULT=<point>`` makes a writer die (``os._exit``) at a named point, for the kill tests.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from vaezoo.io.files import pid_alive, write_bytes
from vaezoo.store.checkpoint import CONFIG, ONNX_DIR

LOCK = ".vaezoo.lock"
FAULT_POINTS = ("staged", "journal", "old-moved", "new-moved", "config-moved")


def _fault(point: str) -> None:
    if os.environ.get("VAEZOO_FAULT") == point:
        os._exit(137)


@contextmanager
def _lock(folder: Path, exclusive: bool):
    fh = open(Path(folder) / LOCK, "a+" if exclusive else "r")   # readers need no write access
    try:
        fcntl.flock(fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        fh.close()   # releases the lock


def _leftovers(folder: Path) -> dict[str, dict[str, Path]]:
    """{pid: {"pending"|"staging"|"old": path}} of swaps whose writer is dead."""
    found: dict[str, dict[str, Path]] = {}
    for entry in Path(folder).iterdir():
        name = entry.name
        for kind, prefix, suffix in (("pending", f".{CONFIG}.", ".pending"), ("staging", f".{ONNX_DIR}.", ".staging"),
                                     ("old", f".{ONNX_DIR}.", ".old")):
            if name.startswith(prefix) and name.endswith(suffix):
                pid = name[len(prefix) : -len(suffix)]
                if pid.isdigit() and not pid_alive(int(pid)):
                    found.setdefault(pid, {})[kind] = entry
    return found


def _undo_or_finish(folder: Path, left: dict[str, Path]) -> None:
    onnx = folder / ONNX_DIR
    staging, pending, old = left.get("staging"), left.get("pending"), left.get("old")
    if pending is not None and staging is None and onnx.exists():
        os.replace(pending, folder / CONFIG)           # the new graphs are in place: finish
    else:
        if old is not None and not onnx.exists():
            os.rename(old, onnx)                        # killed between the two renames: undo
            old = None
        if pending is not None:
            pending.unlink()
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover(folder: Path) -> None:
    """Finish or undo the swaps of writers that died, under the exclusive lock (no-op when none)."""
    folder = Path(folder)
    try:
        if not _leftovers(folder):
            return
    except OSError:
        return
    with _lock(folder, exclusive=True):
        for left in _leftovers(folder).values():
            _undo_or_finish(folder, left)


def locked_read(folder: Path, read):
    """``read()``'s result, read while no swap happens. The lock file exists once a folder has been
    written by :func:`swap_graphs`; readers never create it (a read-only or pristine folder stays as it
    is), and a reader that saw none re-reads under the lock if a writer appeared meanwhile."""
    folder = Path(folder)
    lock = folder / LOCK
    if not lock.exists():
        result = read()
        if not lock.exists():
            return result
    recover(folder)
    with _lock(folder, exclusive=False):
        return read()


def swap_graphs(folder: Path, new_files: dict[str, bytes], remove: list[str], make_config) -> None:
    """Replace graphs in ``folder/onnx`` as one step.

    ``new_files``: {path relative to onnx/: bytes}; ``remove``: paths relative to onnx/ (files or folders)
    of the previous export to drop; every other file in onnx/ is kept. ``make_config(onnx_dir)`` returns
    the config.json text that vouches for the folder once ``onnx_dir`` is its onnx/ (it is called with the
    staging folder, so the manifest is computed from the files that will be in place).
    """
    folder = Path(folder)
    recover(folder)
    with _lock(folder, exclusive=True):
        pid = os.getpid()
        onnx = folder / ONNX_DIR
        staging = folder / f".{ONNX_DIR}.{pid}.staging"
        pending = folder / f".{CONFIG}.{pid}.pending"
        old = folder / f".{ONNX_DIR}.{pid}.old"
        shutil.rmtree(staging, ignore_errors=True)
        if onnx.is_dir():
            shutil.copytree(onnx, staging, copy_function=os.link)   # hard links: the kept files, no copies
            for rel in remove:
                target = staging / rel
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        staging.mkdir(exist_ok=True)
        for rel, data in new_files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)   # a hard link to the old file: never write through it
            path.write_bytes(data)
        _fault("staged")
        write_bytes(pending, make_config(staging).encode())
        _fault("journal")
        if onnx.exists():
            os.rename(onnx, old)
        _fault("old-moved")
        os.rename(staging, onnx)
        _fault("new-moved")
        os.replace(pending, folder / CONFIG)
        _fault("config-moved")
        shutil.rmtree(old, ignore_errors=True)
