"""Inception FID for the non-digit models: the FID Inception network made from a local weights file, exported as a
feature graph, and `vaezoo evaluate` using that graph (the default location, or --classifier FILE.onnx)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from tests import data_formats as fmt
from tests.conftest import TINY, run_cli
from vaezoo.evaluation import metrics as M
from vaezoo.evaluation.features import inception_path
from vaezoo.models.inception import FIDInception


def _weights_file(path, extra: dict | None = None):
    """A state dict with pytorch-fid's key names (no num_batches_tracked, plus the 1008-class head), random values
    of a scale that keeps the activations O(1) through 94 layers."""
    torch.manual_seed(0)
    net = FIDInception()
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    state.update({"fc.weight": torch.randn(1008, 2048), "fc.bias": torch.zeros(1008)}, **(extra or {}))
    torch.save(state, path)
    return net.eval()


def _export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vaezoo.export.inception", *args], capture_output=True, text=True, timeout=600)


def test_the_weights_load_by_torchvision_names_and_the_graph_gives_torchs_features(tmp_path):
    net = _weights_file(tmp_path / "w.pth")
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    # spot checks against the Inception-v3 layer table (torchvision's names, pytorch-fid's FID blocks)
    assert shapes["Conv2d_4a_3x3.conv.weight"] == (192, 80, 3, 3)
    assert shapes["Mixed_6b.branch7x7_2.conv.weight"] == (128, 128, 1, 7)
    assert shapes["Mixed_6e.branch7x7dbl_5.conv.weight"] == (192, 192, 1, 7)
    assert shapes["Mixed_7a.branch7x7x3_4.conv.weight"] == (192, 192, 3, 3)
    assert shapes["Mixed_7b.branch3x3dbl_1.conv.weight"] == (448, 1280, 1, 1)
    assert shapes["Mixed_7c.branch_pool.conv.weight"] == (192, 2048, 1, 1)

    res = _export(str(tmp_path / "w.pth"), "-o", str(tmp_path / "inception.onnx"))
    assert res.returncode == 0, res.stderr
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "inception.onnx")).metadata_props}
    import hashlib

    assert meta["vaezoo.weights_sha256"] == hashlib.sha256((tmp_path / "w.pth").read_bytes()).hexdigest()
    session = ort.InferenceSession(str(tmp_path / "inception.onnx"), providers=["CPUExecutionProvider"])
    for side in (32, 64):   # any input size: the graph resizes to 299 itself
        x = np.random.default_rng(side).random((2, 3, side, side), dtype=np.float32)
        got = session.run(None, {"images": x})[0]
        with torch.no_grad():
            want = net(torch.from_numpy(x)).numpy()
        assert got.shape == (2, 2048) and float(np.abs(want).mean()) > 0.05
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4 * float(np.abs(want).max()))


def test_a_file_that_is_not_the_inception_weights_is_one_line_and_writes_nothing(tmp_path):
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pth")
    (tmp_path / "text.pth").write_text("not a torch file")
    for name in ("other.pth", "text.pth", "absent.pth"):
        res = _export(str(tmp_path / name), "-o", str(tmp_path / "g.onnx"))
        assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert not (tmp_path / "g.onnx").exists()
    assert "not the FID Inception-v3 weights" in _export(str(tmp_path / "other.pth"), "-o", str(tmp_path / "g.onnx")).stderr
    (tmp_path / "g.onnx").write_bytes(b"keep")
    _weights_file(tmp_path / "w.pth")
    res = _export(str(tmp_path / "w.pth"), "-o", str(tmp_path / "g.onnx"))
    assert res.returncode == 1 and "--force" in res.stderr and (tmp_path / "g.onnx").read_bytes() == b"keep"


class _SmallFeatures(nn.Module):
    """A stand-in feature graph with the Inception graph's contract (images N x 3 x H x W in [0, 1] -> N x F)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.fc = nn.Linear(12, 8)

    def forward(self, x):
        flat = x.flatten(2)
        stats = torch.cat([flat.mean(2), flat.std(2), flat.amax(2), flat.amin(2)], 1)
        return torch.tanh(self.fc(stats * 4 - 2))


def _write_graph(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(_SmallFeatures().eval(), (torch.rand(2, 3, 32, 32),), str(path), input_names=["images"],
                      output_names=["features"], opset_version=18, dynamo=False,
                      dynamic_axes={"images": {0: "n", 2: "h", 3: "w"}, "features": {0: "n"}})


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory):
    """A tiny VAE trained by the real trainer on a CIFAR-10 binary archive written here (90 training images)."""
    from vaezoo.recipes import merge, resolve
    from vaezoo.train.trainer import train

    root = tmp_path_factory.mktemp("cifar_data")
    fmt.write_cifar10(root / "cifar10", np.random.default_rng(4))
    out = tmp_path_factory.mktemp("cifar_model") / "vae-cifar10"
    recipe = resolve("vae-cifar10", merge(TINY, {"model": {"channels": [8, 8, 8]}, "eval": {"nll_samples": 4}}))
    train(recipe, out, device="cpu", progress=False, data_dir=root)
    return out, root


def test_evaluate_uses_the_local_inception_graph_for_rgb_models_and_says_where_it_goes_otherwise(tiny_cifar):
    model, data = tiny_cifar
    args = ("evaluate", str(model), "--data-dir", str(data), "--samples", "30", "--backend", "torch")
    res = run_cli(*args, "--metrics", "fid")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert str(inception_path()) in res.stderr and "python -m vaezoo.export.inception" in res.stderr
    default = run_cli(*args, "--json")   # without the graph the default set leaves FID out
    assert default.returncode == 0, default.stderr
    assert "fid" not in json.loads(default.stdout)["metrics"]

    _write_graph(inception_path())
    res = run_cli(*args, "--metrics", "fid,fid-lp", "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)["metrics"]
    proto = out["fid"]["protocol"]
    assert proto["features"] == 8 and inception_path().name in proto["classifier"] and proto["real"].startswith("cifar10:train")

    # the same number by hand: the stand-in network in torch on the training images and the pipeline's samples
    from vaezoo.data import load_dataset
    from vaezoo.runtime.pipeline import load_pipeline

    pipe = load_pipeline(str(model), "torch", "cpu")
    fake = np.concatenate(list(pipe.sample_batches(30, 0)))
    real = load_dataset("cifar10", "train", data_dir=data).float_batch(slice(None))
    with torch.no_grad():
        net = _SmallFeatures().eval()
        want = M.frechet_distance(net(torch.from_numpy(real)).numpy(), net(torch.from_numpy(fake)).numpy())
    assert out["fid"]["value"] == pytest.approx(want, rel=1e-3)
    assert np.isfinite(out["fid-lp"]["value"])
    default = run_cli(*args, "--json")
    assert {"fid", "fid-lp"} <= set(json.loads(default.stdout)["metrics"])   # with the graph: in the default set


def test_a_digit_model_takes_a_feature_graph_by_file_and_a_broken_one_is_one_line(tiny_dp_factor, tmp_path):
    _write_graph(tmp_path / "feat.onnx")
    args = ("evaluate", str(tiny_dp_factor), "--metrics", "fid", "--samples", "20", "--json")
    res = run_cli(*args, "--classifier", str(tmp_path / "feat.onnx"))
    assert res.returncode == 0, res.stderr   # grey digits repeated to three channels
    assert json.loads(res.stdout)["metrics"]["fid"]["protocol"]["features"] == 8
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x01 not a graph")
    for bad in ("broken.onnx", "absent.onnx"):
        res = run_cli(*args, "--classifier", str(tmp_path / bad))
        assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1, res.stderr
