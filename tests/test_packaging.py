"""The built wheel, installed as a user would: a fresh virtualenv (no system packages), only the base
dependencies, then the `cpu` extra. Run with the oldest Python the package supports when this machine
has it (requires-python says 3.10), so the floor is tested, not assumed."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, run_cli

pytestmark = pytest.mark.slow

STARTER = "dp-factor-mnist5k"


def _oldest_python() -> str:
    """python3.10 when it is on PATH or in pyenv (a pyenv shim on PATH may not run), else the running one."""
    candidates = [shutil.which("python3.10"), *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10.*/bin/python3.10")))]
    for found in filter(None, candidates):
        if subprocess.run([found, "-c", "import venv, ensurepip"], capture_output=True).returncode == 0:
            return found
    return sys.executable


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "VAEZOO_DEBUG")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env={**env, **kw.pop("env", {})},
                          timeout=900, **kw)


def test_wheel_in_a_fresh_venv_names_the_cpu_extra_then_samples_like_the_repo(tmp_path):
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist", REPO])
    assert r.returncode == 0, r.stderr
    (wheel,) = (tmp_path / "dist").glob("vaezoo-*.whl")
    venv = tmp_path / "venv"
    python = _oldest_python()
    assert _run([python, "-m", "venv", venv]).returncode == 0
    print("venv python:", _run([venv / "bin" / "python", "--version"]).stdout.strip())
    pip, vaezoo = venv / "bin" / "pip", venv / "bin" / "vaezoo"

    r = _run([pip, "install", "-q", wheel])                     # the bare install: no ONNX Runtime, no torch
    assert r.returncode == 0, r.stderr
    assert _run([venv / "bin" / "python", "-c", "import torch"]).returncode != 0
    home = {"VAEZOO_HOME": str(tmp_path / "home")}
    r = _run([vaezoo, "sample", STARTER, "-n", "4", "-o", tmp_path / "bare.png"], env=home)
    assert r.returncode != 0 and "vaezoo[cpu]" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "bare.png").exists()
    r = _run([vaezoo, "list", "--json"], env=home)             # torch-free commands work on the bare install
    assert r.returncode == 0 and STARTER in r.stdout, r.stderr
    r = _run([venv / "bin" / "python", "-c", f"import vaezoo; vaezoo.create_model({STARTER!r})"], env=home)
    assert r.returncode != 0 and "UsageError: create_model needs PyTorch: pip install 'vaezoo[torch]'" in r.stderr, r.stderr

    r = _run([pip, "install", "-q", f"{wheel}[cpu]"])
    assert r.returncode == 0, r.stderr
    r = _run([vaezoo, "sample", STARTER, "-n", "16", "--seed", "3", "-o", tmp_path / "wheel.npy"], env=home)
    assert r.returncode == 0, r.stderr
    r = run_cli("sample", STARTER, "-n", "16", "--seed", "3", "--backend", "onnx", "-o", str(tmp_path / "repo.npy"))
    assert r.returncode == 0, r.stderr
    # the same graphs and the same numpy noise; only the ONNX Runtime builds may differ
    np.testing.assert_allclose(np.load(tmp_path / "wheel.npy"), np.load(tmp_path / "repo.npy"), atol=1e-5)
