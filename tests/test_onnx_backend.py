"""The ONNX Runtime backend: same seed, same images as torch; sessions reused; devices; one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, train_tiny

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
HAS_CUDA_EP = "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A tiny dp-factor-mnist5k (small discriminator, two flow blocks: fast to train and export), no graphs."""
    over = {"train": {"steps": 3, "checkpoint_every": 3}, "prior": {"blocks": 2}, "objective": {"disc_hidden": 16, "disc_layers": 2}}
    return train_tiny("dp-factor-mnist5k", tmp_path_factory.mktemp("ck") / "dp-factor-mnist5k", **over)


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> Path:
    """A copy of ``trained`` with graphs from the default (dynamo) exporter."""
    from vaezoo.export import export_checkpoint

    folder = tmp_path_factory.mktemp("onnx") / "dp-factor-mnist5k"
    shutil.copytree(trained, folder)
    report = export_checkpoint(folder, check=True, log=None)
    assert report["exporter"] == "dynamo" and report["ok"]
    return folder


def variant(exported: Path, tmp_path: Path) -> Path:
    """A scratch copy to damage."""
    folder = tmp_path / "ck"
    shutil.copytree(exported, folder)
    return folder


def rehash(folder: Path) -> None:
    """List the damaged files in the manifest as they are now, so that the ONNX backend's own checks
    (not the checksums) are what must catch the damage."""
    from vaezoo.store.checkpoint import write_manifest

    write_manifest(folder)


def one_line_error(r, code: int | None = None) -> str:
    assert r.returncode != 0, r.stdout
    if code is not None:
        assert r.returncode == code, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    return lines[0]


# ------------------------------------------------------------------ same results as torch
def test_cli_sample_same_grid_from_both_backends(exported, tmp_path):
    outs = {}
    for backend in ("onnx", "torch"):
        r = run_cli("sample", str(exported), "-n", "64", "--seed", "0", "--backend", backend, "-o", str(tmp_path / f"{backend}.npy"), "--json")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["backend"] == backend
        outs[backend] = np.load(tmp_path / f"{backend}.npy")
    assert outs["onnx"].shape == (64, 1, 28, 28)
    assert np.abs(outs["onnx"] - outs["torch"]).max() <= 1e-3
    r = run_cli("sample", str(exported), "-n", "64", "--seed", "0", "--backend", "onnx", "-o", str(tmp_path / "grid.png"))
    assert r.returncode == 0 and (tmp_path / "grid.png").stat().st_size > 0


def test_every_operation_matches_torch(exported):
    from vaezoo.runtime.onnx_backend import OnnxBackend
    from vaezoo.runtime.torch_backend import TorchBackend
    from vaezoo.store.checkpoint import read_config
    from vaezoo.runtime.pipeline import Pipeline

    cfg = read_config(exported)
    po, pt = Pipeline(cfg, OnnxBackend(exported), exported), Pipeline(cfg, TorchBackend(exported), exported)
    x = np.random.default_rng(1).random((64, 1, 28, 28), dtype=np.float32)
    z = np.random.default_rng(2).standard_normal((64, 4)).astype(np.float32)
    close = lambda a, b, tol=1e-3: np.abs(a - b).max() <= tol  # noqa: E731
    assert close(po.sample(1, seed=5), pt.sample(1, seed=5))
    assert close(po.encode(x, "generation")[0], pt.encode(x, "generation")[0], 1e-4)
    assert close(po.encode(x)[1], pt.encode(x)[1], 1e-4)
    assert close(po.decode(z), pt.decode(z))
    assert close(po.reconstruct(x), pt.reconstruct(x))
    assert close(po.traverse(None, seed=1, steps=5), pt.traverse(None, seed=1, steps=5))
    assert close(po.traverse(x, steps=3), pt.traverse(x, steps=3))
    assert close(po.interpolate(z[:3], z[3:6], steps=4), pt.interpolate(z[:3], z[3:6], steps=4))
    assert close(po.from_generation(z), pt.from_generation(z), 1e-4)


def test_cli_codec_commands_through_onnx(exported, tmp_path):
    from vaezoo import load

    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    r = run_cli("encode", str(exported), str(tmp_path / "x.npy"), "--backend", "onnx", "-o", str(tmp_path / "z_onnx.npy"))
    assert r.returncode == 0, r.stderr
    assert np.abs(np.load(tmp_path / "z_onnx.npy") - load(str(exported), backend="torch").encode(x)[0]).max() <= 1e-4
    for args in (["decode", str(exported), str(tmp_path / "z_onnx.npy")], ["reconstruct", str(exported), str(tmp_path / "x.npy")],
                 ["traverse", str(exported), "--dims", "0,1"], ["interpolate", str(exported), "--pairs", "2"]):
        r = run_cli(*args, "--backend", "onnx", "-o", str(tmp_path / f"{args[0]}.png"))
        assert r.returncode == 0, (args, r.stderr)


def test_auto_picks_onnx_when_graphs_exist(exported, trained, tmp_path):
    from vaezoo.runtime.backends import make_backend

    r = run_cli("sample", str(exported), "-n", "4", "--backend", "auto", "-o", str(tmp_path / "a.npy"), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["backend"] == "onnx", r.stderr
    assert make_backend(exported, "auto").name == "onnx"
    assert make_backend(trained, "auto").name == "torch"


# ------------------------------------------------------------------ sessions, threads, devices
def test_sessions_created_once_and_reused(exported):
    from vaezoo.runtime.onnx_backend import OnnxBackend, physical_cores

    a, b = OnnxBackend(exported), OnnxBackend(exported)
    z = np.zeros((3, 4), np.float32)
    a.run("decoder", z)
    a.run("decoder", z)
    assert a.session("decoder") is b.session("decoder")
    opts = a.session("decoder").get_session_options()
    assert opts.intra_op_num_threads == physical_cores() and 1 <= physical_cores() <= (__import__("os").cpu_count() or 1)
    assert opts.inter_op_num_threads == 1
    assert a.providers() == ["CPUExecutionProvider"]
    assert a.metadata("decoder")["part"] == "decoder"


def test_vaezoo_threads_overrides(monkeypatch):
    from vaezoo.runtime.onnx_backend import physical_cores
    from vaezoo.errors import UsageError

    monkeypatch.setenv("VAEZOO_THREADS", "3")
    assert physical_cores() == 3
    monkeypatch.setenv("VAEZOO_THREADS", "many")
    with pytest.raises(UsageError):
        physical_cores()


@pytest.mark.skipif(HAS_CUDA_EP, reason="this onnxruntime has a CUDA provider (see test_gpu.py)")
def test_device_cuda_without_gpu_is_a_clear_error(exported, tmp_path):
    r = run_cli("sample", str(exported), "-n", "4", "--backend", "onnx", "--device", "cuda", "-o", str(tmp_path / "a.npy"))
    assert "CUDA" in one_line_error(r, 1)
    r = run_cli("sample", str(exported), "-n", "4", "--backend", "onnx", "--device", "auto", "-o", str(tmp_path / "a.npy"))
    assert r.returncode == 0 and "running on CPU" in r.stderr, r.stderr
    r = run_cli("sample", str(exported), "-n", "4", "--backend", "onnx", "--device", "tpu", "-o", str(tmp_path / "a.npy"))
    one_line_error(r, 2)


# ------------------------------------------------------------------ bad input: one line, non-zero exit
def test_missing_graphs_say_run_export(trained, tmp_path):
    r = run_cli("sample", str(trained), "-n", "4", "--backend", "onnx", "-o", str(tmp_path / "a.npy"))
    assert "vaezoo export" in one_line_error(r, 1)


def test_missing_one_graph(exported, tmp_path):
    folder = variant(exported, tmp_path)
    (folder / "onnx" / "prior_inverse.onnx").unlink()
    rehash(folder)
    r = run_cli("sample", str(folder), "-n", "4", "--backend", "onnx", "-o", str(tmp_path / "a.npy"))
    line = one_line_error(r, 1)
    assert "prior_inverse.onnx" in line and "vaezoo export" in line


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_graph(exported, tmp_path, damage):
    for manifest in (True, False):  # the checksum catches it first; re-hashed, onnxruntime does
        folder = variant(exported, tmp_path / str(manifest))
        path = folder / "onnx" / "decoder.onnx"
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"\x08\x07not an onnx model" * 50)
        if not manifest:
            rehash(folder)
        r = run_cli("sample", str(folder), "-n", "4", "--backend", "onnx", "-o", str(tmp_path / "a.npy"))
        line = one_line_error(r, 1)
        assert "decoder.onnx" in line
        if not manifest:
            assert "corrupt or truncated" in line


def _set_meta(path: Path, **changes) -> None:
    from vaezoo.export.metadata import set_metadata

    proto = onnx.load(str(path))
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["vaezoo"])
    meta.update(changes)
    set_metadata(proto, meta)
    onnx.save(proto, str(path))


@pytest.mark.parametrize("change,expect", [({"model_id": "vae-mnist5k"}, "model_id"), ({"latent_dim": 16}, "latent_dim"),
                                           ({"part": "encoder"}, "part"), ({"weights_sha256": "0" * 64}, "other weights")])
def test_metadata_mismatch_is_refused(exported, tmp_path, change, expect):
    folder = variant(exported, tmp_path)
    _set_meta(folder / "onnx" / "decoder.onnx", **change)
    rehash(folder)  # weights_sha256: a stale graph of a retrained model; the manifest knows the weights' hash
    r = run_cli("sample", str(folder), "-n", "4", "--backend", "onnx", "-o", str(tmp_path / "a.npy"))
    line = one_line_error(r, 1)
    assert expect in line and "vaezoo export" in line


def test_foreign_graph_without_metadata(exported, tmp_path):
    folder = variant(exported, tmp_path)
    path = folder / "onnx" / "decoder.onnx"
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    onnx.save(proto, str(path))
    rehash(folder)
    r = run_cli("sample", str(folder), "-n", "4", "--backend", "onnx", "-o", str(tmp_path / "a.npy"))
    assert "not a vaezoo graph" in one_line_error(r, 1)


def test_wrong_input_shape_or_dtype(exported, tmp_path):
    from vaezoo.runtime.onnx_backend import OnnxBackend
    from vaezoo.errors import UsageError

    np.save(tmp_path / "bad.npy", np.zeros((3, 5), np.float32))
    r = run_cli("encode", str(exported), str(tmp_path / "bad.npy"), "--backend", "onnx", "-o", str(tmp_path / "z.npy"))
    assert "shape" in one_line_error(r, 2)
    np.save(tmp_path / "zint.npy", np.zeros((3, 4), np.int64))
    r = run_cli("decode", str(exported), str(tmp_path / "zint.npy"), "--backend", "onnx", "-o", str(tmp_path / "d.npy"))
    one_line_error(r, 2)
    np.save(tmp_path / "zwide.npy", np.zeros((3, 7), np.float32))
    r = run_cli("decode", str(exported), str(tmp_path / "zwide.npy"), "--backend", "onnx", "-o", str(tmp_path / "d.npy"))
    one_line_error(r, 2)

    backend = OnnxBackend(exported)
    with pytest.raises(UsageError, match="shape N x 4"):
        backend.run("decoder", np.zeros((2, 5), np.float32))
    with pytest.raises(UsageError, match="float32"):
        backend.run("decoder", np.zeros((2, 4), np.int32))
    with pytest.raises(UsageError, match="input"):
        backend.run("decoder")
    out = backend.run("decoder", np.zeros((2, 4), np.float64))  # other float widths are converted
    assert out[0].dtype == np.float32 and out[0].shape == (2, 1, 28, 28)


def test_integrity_checks_cannot_be_switched_off(exported, tmp_path):
    """Deleting the manifest, or one entry of it, refuses the folder instead of skipping the checks."""
    for what in ("manifest", "entry"):
        folder = variant(exported, tmp_path / what)
        cfg = json.loads((folder / "config.json").read_text())
        if what == "manifest":
            del cfg["files"]
        else:
            del cfg["files"]["onnx/decoder.onnx"]
        (folder / "config.json").write_text(json.dumps(cfg))
        for backend in ("onnx", "torch"):
            if what == "entry" and backend == "torch":
                continue  # the torch backend reads the weights, still listed
            r = run_cli("sample", str(folder), "-n", "4", "--backend", backend, "-o", str(tmp_path / f"{what}.npy"))
            line = one_line_error(r, 1)
            assert ("no 'files' manifest" if what == "manifest" else "not listed in the manifest") in line, line
            assert not (tmp_path / f"{what}.npy").exists()
