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


# ---------------------------------------------------------------- the torch API (timm / diffusers shape)
def test_create_model_gives_the_module_whose_decoder_matches_the_onnx_graph():
    import onnxruntime as ort
    import torch

    from vaezoo.store.resolution import bundled_dir

    model = vaezoo.create_model("dp-factor-mnist5k", pretrained=True)
    assert isinstance(model, torch.nn.Module) and not model.training
    z = np.random.default_rng(0).standard_normal((8, model.latent)).astype(np.float32)
    with torch.no_grad():
        ours = model.parts()["decoder"].module(torch.from_numpy(z)).numpy()
    graph = ort.InferenceSession(str(bundled_dir("dp-factor-mnist5k") / "onnx" / "decoder.onnx"), providers=["CPUExecutionProvider"])
    (onnx_out,) = graph.run(None, {graph.get_inputs()[0].name: z})
    np.testing.assert_allclose(ours, onnx_out, atol=1e-4)
    fresh = vaezoo.create_model("dp-factor-mnist5k", pretrained=False)   # the recipe's nets, initialised
    assert {k: v.shape for k, v in fresh.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert not all(torch.equal(fresh.state_dict()[k], v) for k, v in model.state_dict().items())


def test_save_pretrained_and_from_pretrained_round_trip_and_refuse_what_they_should(tmp_path):
    import shutil

    from vaezoo.models.semisup import M2
    from vaezoo.models.vae import VAE
    from vaezoo.store.resolution import bundled_dir

    model = VAE.from_pretrained("dp-factor-mnist5k")
    out = model.save_pretrained(tmp_path / "mine")
    again = VAE.from_pretrained(str(out))
    assert all(np.array_equal(v.numpy(), again.state_dict()[k].numpy()) for k, v in model.state_dict().items())
    np.testing.assert_array_equal(vaezoo.load(str(out), backend="torch").sample(4, seed=2),
                                  vaezoo.load("dp-factor-mnist5k", backend="torch").sample(4, seed=2))
    with pytest.raises(UsageError, match="overwrite=True"):
        model.save_pretrained(out)
    model.save_pretrained(out, overwrite=True)
    with pytest.raises(UsageError, match="is a VAE, not a M2"):
        M2.from_pretrained("dp-factor-mnist5k")
    assert isinstance(M2.from_pretrained("m2-mnist5k"), M2)
    # weights that do not match the manifest are refused, as vaezoo.load refuses them
    bad = tmp_path / "bad"
    shutil.copytree(bundled_dir("dp-factor-mnist5k"), bad)
    data = bytearray((bad / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (bad / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(VaezooError, match="SHA-256|manifest|changed"):
        vaezoo.create_model(str(bad))


def test_list_models_pretrained_keeps_the_ids_with_weights():
    with_weights = vaezoo.list_models("*-mnist5k", pretrained=True)
    assert {"vae-mnist5k", "dp-vae-mnist5k", "dp-factor-mnist5k", "m2-mnist5k"} <= set(with_weights)
    assert set(with_weights) < set(vaezoo.list_models("*-mnist5k"))   # untrained ids are left out


def test_every_model_kind_has_the_pretrained_methods():
    from vaezoo.models import MODEL_KINDS
    from vaezoo.models.loading import Pretrained

    assert all(issubclass(cls, Pretrained) for cls in MODEL_KINDS.values()), MODEL_KINDS
