"""Export replaces a checkpoint's graphs and manifest as one step: a writer killed at any moment leaves a
folder the next command finishes or undoes (old set or new set, never a mix), concurrent exports do not
crash, and readers during a re-export are never refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from conftest import run_cli, train_tiny
from vaezoo.store.graph_swap import FAULT_POINTS

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    from vaezoo.export import export_checkpoint

    folder = train_tiny("dp-vae-mnist5k", tmp_path_factory.mktemp("swap") / "dp-vae-mnist5k", train={"steps": 2})
    export_checkpoint(folder, exporter="torchscript", opset=18, log=None)
    return folder


def opsets(folder: Path) -> set[int]:
    out = set()
    for path in (folder / "onnx").glob("*.onnx"):
        meta = json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["vaezoo"])
        out.add(meta["opset"])
    return out


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith((".onnx.", ".config.json.")))


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_a_killed_export_is_finished_or_undone_by_the_next_command(exported, tmp_path, point):
    folder = tmp_path / "ck"
    shutil.copytree(exported, folder)
    r = run_cli("export", str(folder), "--force", "--exporter", "torchscript", "--opset", "19", env={"VAEZOO_FAULT": point})
    assert r.returncode == 137, r.stderr
    assert leftovers(folder)  # the writer died mid-swap
    # the next reader recovers: the old set (killed before the new graphs were in place) or the new one
    r = run_cli("sample", str(folder), "-n", "4", "--backend", "onnx", "-o", str(tmp_path / "s.npy"))
    assert r.returncode == 0, r.stderr
    assert leftovers(folder) == []
    want = {19} if point in ("new-moved", "config-moved") else {18}
    assert opsets(folder) == want, point
    from vaezoo.store.checkpoint import read_config, verify_files

    verify_files(folder, sorted(read_config(folder)["files"]))   # everything listed matches
    r = run_cli("export", str(folder), "--force", "--exporter", "torchscript")
    assert r.returncode == 0, r.stderr


def test_concurrent_exports_and_readers(exported, tmp_path):
    folder = tmp_path / "ck"
    shutil.copytree(exported, folder)
    exe = [sys.executable, "-c", "from vaezoo.cli import main; main()"]
    env = {k: v for k, v in os.environ.items() if k != "VAEZOO_FAULT"}
    writers = [subprocess.Popen(exe + ["export", str(folder), "--force", "--exporter", "torchscript", "--opset", str(o)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env) for o in (19, 20)]
    refused = []
    while any(w.poll() is None for w in writers):
        r = run_cli("sample", str(folder), "-n", "2", "--backend", "onnx", "-o", str(tmp_path / "r.npy"), "--force")
        if r.returncode != 0:
            refused.append(r.stderr)
    errs = [w.communicate()[1] for w in writers]
    assert [w.returncode for w in writers] == [0, 0], errs
    assert refused == []
    assert len(opsets(folder)) == 1 and leftovers(folder) == []
    r = run_cli("sample", str(folder), "-n", "2", "--backend", "onnx", "-o", str(tmp_path / "end.npy"))
    assert r.returncode == 0, r.stderr
