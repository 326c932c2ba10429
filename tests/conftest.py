"""Shared fixtures: tiny models trained by the real trainer into temporary folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# One torch (OpenMP) thread for the test process and the commands it starts, unless the caller set one: the
# models here are tiny, and two threads on a two-core machine whose other core is busy spin-wait, measured at
# 27 s against 0.4 s for 40 steps of a tiny dp-vae. Commands that choose their threads (train's --threads
# and its auto rule) still set their own.
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "torch" in sys.modules:   # imported before this file (a plugin): the variable came too late for it
    sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

# Tiny settings that keep every test model fast on 2 CPU cores.
TINY = {
    "model": {"hidden": [32], "latent": 4},
    "prior": {"hidden": 16},
    "train": {"steps": 6, "batch_size": 16, "checkpoint_every": 3},
    "eval": {"nll_samples": 8, "max_examples": 16},
}


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own empty $VAEZOO_HOME, so nothing leaks between tests or from the user."""
    home = tmp_path_factory.mktemp("vaezoo_home")
    monkeypatch.setenv("VAEZOO_HOME", str(home))
    yield home


def vae_families() -> list[str]:
    """Published families trained on the plain VAE's networks (the regularisers and their dp variants),
    from the registry, so a new regulariser family is swept by the model and export tests."""
    from vaezoo.families import published

    return [name for name, pub in published().items()
            if pub.budget is None and pub.family.settings.get("model", {}).get("kind", "vae") == "vae"]


def tiny_recipe(model_id: str, **extra) -> dict:
    from vaezoo.recipes import merge, resolve

    return resolve(model_id, merge(TINY, extra))


def train_tiny(model_id: str, out: Path, **extra) -> Path:
    from vaezoo.train.trainer import train

    train(tiny_recipe(model_id, **extra), out, device="cpu", progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_dp_factor(tmp_path_factory) -> Path:
    """A tiny trained dp-factor-mnist5k checkpoint folder (read-only for tests)."""
    return train_tiny("dp-factor-mnist5k", tmp_path_factory.mktemp("ckpt") / "dp-factor-mnist5k")


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, input: str | None = None) -> subprocess.CompletedProcess:
    """Run the installed `vaezoo` console script as a user would."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("VAEZOO_DEBUG", None)
    exe = Path(sys.executable).parent / "vaezoo"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "from vaezoo.cli import main; main()"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=full_env, cwd=cwd, input=input, timeout=600)
