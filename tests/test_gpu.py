"""The CUDA path of the ONNX backend (and of torch where it has CUDA). Skips cleanly without a usable GPU.

Needs onnxruntime-gpu (not onnxruntime: they install the same module) and a GPU that a session can use.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli, train_tiny

ort = pytest.importorskip("onnxruntime")


def _cuda_session_works() -> bool:
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    try:
        from onnx import TensorProto, helper

        node = helper.make_node("Relu", ["x"], ["y"])
        graph = helper.make_graph([node], "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
        return sess.get_providers()[0] == "CUDAExecutionProvider"
    except Exception:  # noqa: BLE001 - any failure means: no usable GPU here
        return False


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _cuda_session_works(), reason="no GPU usable by onnxruntime (needs onnxruntime-gpu and CUDA)")]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from vaezoo.export import export_checkpoint

    over = {"train": {"steps": 2, "checkpoint_every": 2}, "prior": {"blocks": 2}, "objective": {"disc_hidden": 16, "disc_layers": 2}}
    folder = train_tiny("dp-factor-mnist5k", tmp_path_factory.mktemp("ck") / "dp-factor-mnist5k", **over)
    export_checkpoint(folder, exporter="torchscript", log=None)
    return folder


def test_cuda_provider_is_really_used_and_matches_cpu(exported):
    from vaezoo.runtime.onnx_backend import IOBIND_MIN_BATCH, OnnxBackend
    from vaezoo.store.checkpoint import read_config
    from vaezoo.runtime.pipeline import Pipeline

    gpu, cpu = OnnxBackend(exported, "cuda"), OnnxBackend(exported, "cpu")
    assert gpu.providers()[0] == "CUDAExecutionProvider"
    cfg = read_config(exported)
    pg, pc = Pipeline(cfg, gpu, exported), Pipeline(cfg, cpu, exported)
    for n in (1, 64, IOBIND_MIN_BATCH * 4):  # the last goes through IO binding
        assert np.abs(pg.sample(n, seed=0) - pc.sample(n, seed=0)).max() <= 1e-3
    x = np.random.default_rng(0).random((IOBIND_MIN_BATCH * 2, 1, 28, 28), dtype=np.float32)
    assert np.abs(pg.encode(x)[0] - pc.encode(x)[0]).max() <= 1e-3


def test_cli_device_cuda_and_auto(exported, tmp_path):
    r = run_cli("sample", str(exported), "-n", "64", "--backend", "onnx", "--device", "cuda", "-o", str(tmp_path / "g.npy"), "--json")
    assert r.returncode == 0, r.stderr
    r2 = run_cli("sample", str(exported), "-n", "64", "--backend", "onnx", "--device", "cpu", "-o", str(tmp_path / "c.npy"))
    assert r2.returncode == 0, r2.stderr
    assert np.abs(np.load(tmp_path / "g.npy") - np.load(tmp_path / "c.npy")).max() <= 1e-3
    r = run_cli("sample", str(exported), "-n", "4", "--backend", "onnx", "--device", "auto", "-o", str(tmp_path / "a.npy"), "--json")
    assert r.returncode == 0 and "running on CPU" not in r.stderr and json.loads(r.stdout)["backend"] == "onnx"


def test_torch_cuda_matches_onnx_cuda(exported):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    from vaezoo import load

    a = load(str(exported), backend="onnx", device="cuda").sample(64, seed=1)
    b = load(str(exported), backend="torch", device="cuda").sample(64, seed=1)
    assert np.abs(a - b).max() <= 1e-3


def test_the_inception_feature_graph_runs_on_cuda_and_matches_the_cpu(tmp_path):
    """FID's Inception graph (here the real FID Inception-v3 network on random weights) on the CUDA provider."""
    import torch

    from vaezoo.evaluation.features import GraphFeatures
    from vaezoo.export.inception import export
    from vaezoo.models.inception import FIDInception

    torch.manual_seed(0)
    net = FIDInception()
    torch.save({k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}, tmp_path / "w.pth")
    export(tmp_path / "w.pth", tmp_path / "inception.onnx")
    x = np.random.default_rng(0).random((60, 3, 32, 32), dtype=np.float32)
    gpu, cpu = GraphFeatures(tmp_path / "inception.onnx", "cuda"), GraphFeatures(tmp_path / "inception.onnx", "cpu")
    assert gpu.session.get_providers()[0] == "CUDAExecutionProvider"
    a, b = gpu.features(x), cpu.features(x)
    assert a.shape == (60, 2048)
    np.testing.assert_allclose(a, b, rtol=1e-2, atol=1e-3 * float(np.abs(b).max()))
