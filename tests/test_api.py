"""The Python API: vaezoo.load(...) returns the pipeline the CLI uses; vaezoo.list_models(pattern)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import vaezoo
from fake_hub import fake_hub, tiny_ckpt, tiny_onnx_ckpt  # noqa: F401 (fixtures)
from vaezoo.errors import UsageError, VaezooError
from vaezoo.runtime.pipeline import Pipeline


def test_list_models():
    dp = vaezoo.list_models("dp-*")
    assert dp and all(m.startswith("dp-") for m in dp)
    assert "dp-factor-mnist5k" in dp and "vae-mnist5k" not in dp
    assert vaezoo.list_models("*-mnist5k") == [m for m in vaezoo.list_models() if m.endswith("-mnist5k")]
    assert vaezoo.list_models("no-such-*") == []


def test_load_folder_and_the_four_operations(tiny_ckpt):
    pipe = vaezoo.load(str(tiny_ckpt), backend="torch")
    assert isinstance(pipe, Pipeline) and pipe.id == "dp-vae-mnist5k" and pipe.backend.name == "torch"
    x = pipe.sample(8, seed=3)
    assert x.shape == (8, 1, 28, 28) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_array_equal(x, pipe.sample(8, seed=3))
    mu, logvar = pipe.encode(x)
    assert mu.shape == logvar.shape == (8, pipe.latent_dim)
    assert pipe.decode(mu).shape == x.shape
    assert pipe.reconstruct(x).shape == x.shape
    with pytest.raises(UsageError):
        pipe.classify(x)  # not a semi-supervised model
    with pytest.raises(UsageError):
        pipe.encode(np.zeros((2, 3), np.float32))


def test_load_from_the_hub_and_offline(tiny_ckpt, fake_hub):
    fake_hub.add_folder("org/api", tiny_ckpt)
    with pytest.raises(VaezooError, match="vaezoo pull hf-hub:org/api"):
        vaezoo.load("hf-hub:org/api", backend="torch", offline=True)
    online = vaezoo.load("hf-hub:org/api", backend="torch")
    fake_hub.requests.clear()
    offline = vaezoo.load("hf-hub:org/api", backend="torch", offline=True)
    assert fake_hub.requests == []
    np.testing.assert_array_equal(online.sample(4), offline.sample(4))
    with pytest.raises(VaezooError, match="not found"):
        vaezoo.load("hf-hub:org/absent")


def test_onnx_and_torch_agree_through_the_api(tiny_onnx_ckpt):
    onnx = vaezoo.load(str(tiny_onnx_ckpt), backend="onnx")
    torch_ = vaezoo.load(str(tiny_onnx_ckpt), backend="torch")
    assert onnx.backend.name == "onnx"
    np.testing.assert_allclose(onnx.sample(4, seed=1), torch_.sample(4, seed=1), atol=1e-4)


def test_errors_are_one_liners():
    with pytest.raises(UsageError, match="unknown model id"):
        vaezoo.load("no-such-model")
    with pytest.raises(VaezooError, match="does not exist"):
        vaezoo.load("./no/such/folder")
    with pytest.raises(UsageError, match="--backend"):
        vaezoo.load("./x", backend="tensorflow")


def test_importing_the_package_and_the_hub_code_imports_neither_torch_nor_huggingface_hub():
    code = ("import sys, vaezoo, vaezoo.store.hub, vaezoo.store.resolution, vaezoo.store.checkpoint, vaezoo.store.cards, vaezoo.cli; "
            "print(sorted(m for m in ('torch', 'huggingface_hub') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
