"""ONNX export: every family's parts export with parity (torch vs ONNX Runtime <= 1e-4 at batch 1 and 64),
single-file graphs at an opset/IR onnxruntime accepts, metadata, Model Zoo-style test data, fp16/int8 variants.

Speed: the default exporter (torch.onnx dynamo) costs about 1.5 s of CPU per graph, so the sweep over
every family uses ``exporter="torchscript"`` (same checks, ~20x faster) and the dynamo path is exercised
on a standard-prior model (through the CLI), a decoupled-prior model (test_onnx_backend.py) and a conv
backbone. ``VAEZOO_TEST_EXPORTER=dynamo`` runs the whole sweep with dynamo (about 70 s more).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, train_tiny, vae_families

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

FAMILIES = vae_families()
SWEEP_EXPORTER = os.environ.get("VAEZOO_TEST_EXPORTER", "torchscript")
FAST = {"train": {"steps": 2, "checkpoint_every": 2}, "prior": {"blocks": 2}}
SMALL_DISC = {"objective": {"disc_hidden": 16, "disc_layers": 2}}


def tiny(model_id: str, out: Path, **extra) -> Path:
    over = {**FAST, **(SMALL_DISC if "factor" in model_id else {}), **extra}
    return train_tiny(model_id, out, **over)


def assert_graph_ok(path: Path, opset: int = 18) -> onnx.ModelProto:
    """Single file, checker-clean, opset/IR onnxruntime 1.31 accepts, dynamic batch, vaezoo metadata."""
    assert not list(path.parent.glob(path.name + ".data")), "external data sidecar written"
    proto = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(proto, full_check=True)
    assert {o.domain for o in proto.opset_import} <= {"", "ai.onnx"}
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [opset]
    assert proto.ir_version <= 13 and proto.ir_version == onnx.helper.find_min_ir_version_for(proto.opset_import)
    for value in list(proto.graph.input) + list(proto.graph.output):
        assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
    props = {p.key: p.value for p in proto.metadata_props}
    meta = json.loads(props["vaezoo"])
    assert meta["format"] == "vaezoo-onnx/1" and props["vaezoo.part"] == meta["part"] == path.name.split(".")[0]
    return proto


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_exports_with_parity(family, tmp_path):
    from vaezoo.runtime.onnx_backend import OnnxBackend
    from vaezoo.runtime.torch_backend import TorchBackend
    from vaezoo.store.checkpoint import read_config
    from vaezoo.export import export_checkpoint
    from vaezoo.runtime.pipeline import Pipeline

    folder = tiny(f"{family}-mnist5k", tmp_path / family)
    report = export_checkpoint(folder, check=True, exporter=SWEEP_EXPORTER, log=None)
    assert report["ok"] and set(report["parts"]) == {"encoder", "decoder", "prior_forward", "prior_inverse"}
    for part, entry in report["parts"].items():
        assert set(entry["parity"]) == {"batch_1", "batch_64"}
        assert max(entry["parity"].values()) <= 1e-4, (part, entry["parity"])
        assert_graph_ok(folder / "onnx" / f"{part}.onnx")
    assert report["flow_roundtrip"]["max_abs_error"] <= 1e-4
    assert report["manifest_updated"] and "onnx/decoder.onnx" in read_config(folder)["files"]

    # the same seed gives the same samples, codes and reconstructions from both backends
    config = read_config(folder)
    p_onnx, p_torch = Pipeline(config, OnnxBackend(folder), folder), Pipeline(config, TorchBackend(folder), folder)
    assert np.abs(p_onnx.sample(64, seed=3) - p_torch.sample(64, seed=3)).max() <= 1e-3
    x = np.random.default_rng(0).random((64, 1, 28, 28), dtype=np.float32)
    for space in ("representation", "generation"):
        assert np.abs(p_onnx.encode(x, space)[0] - p_torch.encode(x, space)[0]).max() <= 1e-4
    assert np.abs(p_onnx.reconstruct(x) - p_torch.reconstruct(x)).max() <= 1e-3


SEMISUP = [("m2-100-mnist5k", {}),
           ("m2-100-mnist5k", {"model": {"classifier_backbone": "conv", "classifier_channels": [4, 8], "classifier_hidden": [16],
                                         "classifier_dropout": 0.5}}),
           ("m1m2-100-mnist5k", {"model": {"classifier_hidden": [16], "m1": {"hidden": [32], "latent": 6}}})]


@pytest.mark.parametrize("model_id,extra", SEMISUP)
def test_semi_supervised_parts_export(model_id, extra, tmp_path):
    """Conditional parts (x, y) / (z, y), classifier.onnx and extra parts (m1_encoder) export with parity."""
    from vaezoo.recipes import list_ids

    if model_id not in list_ids():
        pytest.skip(f"{model_id} is not registered")
    from vaezoo.export import export_checkpoint

    folder = tiny(model_id, tmp_path / model_id, **extra)
    report = export_checkpoint(folder, check=True, exporter=SWEEP_EXPORTER, log=None)
    parts = report["parts"]
    assert "classifier" in parts and [n for n, _ in parts["classifier"]["outputs"]] == ["logits"]
    assert [n for n, _ in parts["decoder"]["inputs"]] == ["z", "y"]
    assert parts["encoder"]["inputs"][1] == ["y", ["batch", 10]]
    for part in parts:
        assert_graph_ok(folder / "onnx" / f"{part}.onnx")
        assert max(parts[part]["parity"].values()) <= 1e-4


@pytest.fixture(scope="module")
def vae_cli_export(tmp_path_factory):
    """A tiny vae-mnist5k exported through the CLI with the default (dynamo) exporter and --check."""
    folder = tiny("vae-mnist5k", tmp_path_factory.mktemp("vae") / "vae-mnist5k")
    r = run_cli("export", str(folder), "--check", "--json")
    assert r.returncode == 0, r.stderr
    return folder, json.loads(r.stdout), r


def test_cli_export_writes_graphs_metadata_and_test_data(vae_cli_export):
    from vaezoo.export.testdata import read_test_data

    folder, report, r = vae_cli_export
    assert report["exporter"] == "dynamo" and report["opset"] == 18 and report["ir_version"] == 8 and report["ok"]
    assert "torch vs onnxruntime" in r.stderr  # progress on stderr, the JSON report alone on stdout
    config = json.loads((folder / "config.json").read_text())
    for part in ("encoder", "decoder", "prior_forward", "prior_inverse"):
        proto = assert_graph_ok(folder / "onnx" / f"{part}.onnx")
        meta = json.loads({p.key: p.value for p in proto.metadata_props}["vaezoo"])
        assert meta["model_id"] == "vae-mnist5k" and meta["latent_dim"] == 4 and meta["prior"] == "standard"
        assert meta["data"] == {"shape": [1, 28, 28], "kind": "image", "pixel_scale": "x/255", "dtype": "float32", "layout": "NCHW"}
        assert meta["decoder_output"] == "logits" and meta["postprocess"] == "sigmoid" and meta["labels"] == [str(i) for i in range(10)]
        assert meta["weights_sha256"] == config["files"]["model.safetensors"]["sha256"]
        assert meta["parity"]["max_diff_vs_torch"]["batch_64"] <= 1e-4
        assert "/work" not in proto.SerializeToString().decode("latin-1")  # no local paths (stack traces) inside
        # ONNX Model Zoo-style test data next to the graph reproduces in ONNX Runtime
        inputs, outputs = read_test_data(folder / "onnx" / "test_data" / part / "test_data_set_0")
        sess = ort.InferenceSession(str(folder / "onnx" / f"{part}.onnx"), providers=["CPUExecutionProvider"])
        assert [n for n, _ in inputs] == [i.name for i in sess.get_inputs()]
        got = sess.run([n for n, _ in outputs], dict(inputs))
        for (name, want), have in zip(outputs, got):
            assert np.abs(want - have).max() <= 1e-4, (part, name)
    meta = json.loads({p.key: p.value for p in onnx.load(str(folder / "onnx" / "decoder.onnx")).metadata_props}["vaezoo"])
    assert [o["name"] for o in meta["outputs"]] == ["logits"] and "sigmoid" in meta["outputs"][0]["meaning"]


def test_cli_export_refuses_to_overwrite_and_checks_options(vae_cli_export, tmp_path):
    folder, _, _ = vae_cli_export
    r = run_cli("export", str(folder))
    assert r.returncode == 2 and "--force" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("export", str(folder), "--opset", "27", "--force")
    assert r.returncode == 2 and "--opset" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("export", str(folder), "--exporter", "nope", "--force")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("export", str(tmp_path / "missing"))
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1


def test_variants_report_their_measured_error(tmp_path):
    """fp16 and int8 copies: smaller files, fp32 I/O, measured error in the report and in their metadata."""
    from vaezoo.runtime.onnx_backend import OnnxBackend
    from vaezoo.export import export_checkpoint

    folder = tiny("dp-vae-mnist5k", tmp_path / "dpv")
    report = export_checkpoint(folder, fp16=True, int8=True, exporter="torchscript", log=None)
    for precision, bound in (("fp16", 1e-2), ("int8", 0.5)):
        var = report["variants"][precision]
        assert "note" in var
        for part in ("encoder", "decoder", "prior_forward", "prior_inverse"):
            entry = var[part]
            assert 0 <= entry["max_abs_diff_vs_torch_fp32"] <= bound, (precision, part, entry)
            path = folder / "onnx" / f"{part}.{precision}.onnx"
            assert path.stat().st_size == entry["bytes"]
            proto = assert_graph_ok(path)
            meta = json.loads({p.key: p.value for p in proto.metadata_props}["vaezoo"])
            assert meta["precision"] == precision and meta["measured_error"]["max_abs_diff_vs_torch_fp32"] == entry["max_abs_diff_vs_torch_fp32"]
            assert all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for i in proto.graph.input)
    assert var["encoder"]["bytes"] < var["encoder"]["fp32_bytes"] / 2  # int8 weights
    # the backend can run a variant set
    eps = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    half, full = OnnxBackend(folder, precision="fp16"), OnnxBackend(folder)
    assert np.abs(half.run("prior_inverse", eps)[0] - full.run("prior_inverse", eps)[0]).max() < 1e-2


@pytest.mark.parametrize("backbone,model_id,exporter", [("conv28", "vae-mnist5k", "dynamo"), ("conv32", "vae-svhn", "torchscript"),
                                                        ("conv64", "dp-vae-celeba", "torchscript")])
def test_conv_backbones_export_with_parity(backbone, model_id, exporter, tmp_path):
    """Conv encoders/decoders (ConvTranspose) export with parity; untrained weights where the data is not bundled."""
    from vaezoo.export import export_checkpoint

    over = {"model": {"backbone": backbone, "hidden": [32]}}
    if model_id.endswith("mnist5k"):
        folder = tiny(model_id, tmp_path / model_id, **over)
    else:  # no dataset download in tests: a freshly initialised checkpoint has the same graphs
        import torch

        from conftest import tiny_recipe
        from vaezoo.models.loading import save_checkpoint
        from vaezoo.store.checkpoint import make_config
        from vaezoo.models import build_model

        torch.manual_seed(0)
        config = make_config(tiny_recipe(model_id, **over, prior={"blocks": 2}))
        folder = tmp_path / model_id
        save_checkpoint(folder, build_model(config), config)
    report = export_checkpoint(folder, check=True, exporter=exporter, test_data=False, log=None)
    assert report["ok"], report
    assert not (folder / "onnx" / "test_data").exists()
    for part, entry in report["parts"].items():
        assert max(entry["parity"].values()) <= 1e-4, (part, entry["parity"])
        assert_graph_ok(folder / "onnx" / f"{part}.onnx")


def test_moons_vector_data_exports(tmp_path):
    from vaezoo.export import export_checkpoint

    folder = tiny("dp-vae-moons", tmp_path / "moons", model={"hidden": [16], "latent": 2})
    report = export_checkpoint(folder, check=True, exporter=SWEEP_EXPORTER, log=None)
    meta = json.loads({p.key: p.value for p in onnx.load(str(folder / "onnx" / "decoder.onnx")).metadata_props}["vaezoo"])
    assert report["ok"] and meta["decoder_output"] == "mean" and meta["postprocess"] == "none" and meta["data"]["layout"] == "ND"


def test_exporting_a_bundled_starter_writes_a_local_copy_not_the_package(tmp_path):
    """The package's starters are read-only data: `vaezoo export ID` copies the starter into the local store."""
    from vaezoo.store.resolution import bundled_dir, local_dir

    before = sorted(p.name for p in (bundled_dir("vae-mnist5k") / "onnx").iterdir())
    res = run_cli("export", "vae-mnist5k", "--check", "--exporter", "torchscript")
    assert res.returncode == 0, res.stderr
    assert "copied the bundled starter" in res.stderr
    assert (local_dir("vae-mnist5k") / "onnx" / "decoder.onnx").is_file()
    assert sorted(p.name for p in (bundled_dir("vae-mnist5k") / "onnx").iterdir()) == before
    listing = run_cli("list", "vae-mnist5k", "--json")
    assert json.loads(listing.stdout)[0]["available"][:2] == ["local", "bundled"]
