"""The inference path never imports torch (tests/test_layout.py checks every torch-free module): --help, list, info, and sample/encode/decode/reconstruct/
traverse/interpolate through ONNX run where importing torch fails; a plain onnxruntime script (no vaezoo,
no torch) decodes samples from decoder.onnx and prior_inverse.onnx using only their metadata."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_cli, train_tiny

pytest.importorskip("onnxruntime")

@pytest.fixture(scope="module")
def no_torch(tmp_path_factory) -> dict:
    """Environment whose `import torch` fails, and leaves a marker file when anything tries."""
    root = tmp_path_factory.mktemp("no_torch")
    marker = root / "torch_was_imported"
    (root / "torch").mkdir()
    (root / "torch" / "__init__.py").write_text(
        f"open({str(marker)!r}, 'a').write('import torch\\n')\n"
        "raise ImportError('torch is blocked in this test: the inference path must not import it')\n")
    path = os.pathsep.join(p for p in [str(root), os.environ.get("PYTHONPATH", "")] if p)
    return {"env": {"PYTHONPATH": path}, "marker": marker}


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    from vaezoo.export import export_checkpoint

    over = {"train": {"steps": 2, "checkpoint_every": 2}, "prior": {"blocks": 2}, "objective": {"disc_hidden": 16, "disc_layers": 2}}
    folder = train_tiny("dp-factor-mnist5k", tmp_path_factory.mktemp("ck") / "dp-factor-mnist5k", **over)
    export_checkpoint(folder, exporter="torchscript", log=None)
    return folder


def run_torch_free(no_torch, *args):
    r = run_cli(*args, env=no_torch["env"])
    assert not no_torch["marker"].exists(), f"`vaezoo {' '.join(args)}` imported torch"
    return r


def test_help_list_info_without_torch(no_torch, exported):
    for args in (["--help"], ["list"], ["list", "dp-*", "--json"], ["info", "dp-factor-mnist5k"], ["info", str(exported), "--json"],
                 ["sample", "--help"], ["export", "--help"]):
        r = run_torch_free(no_torch, *args)
        assert r.returncode == 0, (args, r.stderr)


def test_onnx_inference_without_torch(no_torch, exported, tmp_path):
    from vaezoo import load

    x = np.random.default_rng(0).random((6, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    commands = [
        ["sample", str(exported), "-n", "16", "--seed", "0", "-o", str(tmp_path / "s.npy")],
        ["sample", str(exported), "-n", "16", "-o", str(tmp_path / "s.png")],
        ["encode", str(exported), str(tmp_path / "x.npy"), "-o", str(tmp_path / "z.npy")],
        ["encode", str(exported), str(tmp_path / "x.npy"), "--space", "generation"],
        ["decode", str(exported), str(tmp_path / "z.npy"), "-o", str(tmp_path / "d.png")],
        ["reconstruct", str(exported), str(tmp_path / "x.npy"), "-o", str(tmp_path / "r.png")],
        ["traverse", str(exported), "--steps", "4", "-o", str(tmp_path / "t.png")],
        ["interpolate", str(exported), "--pairs", "2", "-o", str(tmp_path / "i.png")],
    ]
    for args in commands:
        for backend in (["--backend", "onnx"], []):  # explicit, and auto (graphs exist -> onnx)
            if not backend and args[0] not in ("sample", "encode"):
                continue
            r = run_torch_free(no_torch, *args, *backend, "--force")
            assert r.returncode == 0, (args, backend, r.stderr)
    # and the torch-free samples are torch's samples
    want = load(str(exported), backend="torch").sample(16, seed=0)
    assert np.abs(np.load(tmp_path / "s.npy") - want).max() <= 1e-3


def test_clear_errors_without_torch(no_torch, exported, tmp_path):
    """What needs torch says so in one line (these commands do try to import it)."""
    r = run_cli("sample", str(exported), "-n", "4", "--backend", "torch", "-o", str(tmp_path / "a.npy"), env=no_torch["env"])
    assert r.returncode != 0 and "torch" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("export", str(exported), "--force", env=no_torch["env"])
    assert r.returncode == 2 and "vaezoo[torch]" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    no_torch["marker"].unlink(missing_ok=True)


def test_plain_onnxruntime_example(no_torch, exported, tmp_path):
    """examples/plain_onnxruntime.py needs only numpy + onnxruntime and the graphs' metadata."""
    from vaezoo import load

    script = REPO / "examples" / "plain_onnxruntime.py"
    env = {**os.environ, **no_torch["env"]}
    # vaezoo must not be needed either: run it from a folder where a broken `vaezoo` shadows the real one
    shadow = tmp_path / "shadow"
    (shadow / "vaezoo").mkdir(parents=True)
    (shadow / "vaezoo" / "__init__.py").write_text("raise ImportError('the plain example must not import vaezoo')\n")
    env["PYTHONPATH"] = os.pathsep.join([str(shadow), env["PYTHONPATH"]])
    r = subprocess.run([sys.executable, str(script), str(exported / "onnx"), "-n", "9", "--seed", "4", "-o", str(tmp_path / "plain.png")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert not no_torch["marker"].exists()
    from PIL import Image

    with Image.open(tmp_path / "plain.png") as im:
        assert im.size == (3 * 30 + 2, 3 * 30 + 2) and im.mode == "L"
    sys.path.insert(0, str(script.parent))
    try:
        import plain_onnxruntime
    finally:
        sys.path.remove(str(script.parent))
    out, meta = plain_onnxruntime.sample(exported / "onnx", 9, seed=4)
    assert meta["model_id"] == "dp-factor-mnist5k"
    assert np.abs(out - load(str(exported), backend="torch").sample(9, seed=4)).max() <= 1e-3
    assert json.loads(json.dumps(meta))["sampling"].startswith("eps")
