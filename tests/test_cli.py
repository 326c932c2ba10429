"""The CLI driven as a user would: real files in, real files out, one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli
from vaezoo.data import load_dataset


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    """Eight real validation digits written as PNG files."""
    folder = tmp_path_factory.mktemp("digits")
    ds = load_dataset("mnist5k", "val")
    for i in range(8):
        Image.fromarray(ds.x[i * 50, 0]).save(folder / f"d{i}.png")
    return folder


def _one_line_error(res, code=None, contains=""):
    assert res.returncode != 0, res.stdout
    if code is not None:
        assert res.returncode == code, (res.returncode, res.stderr)
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    assert contains in lines[-1], lines[-1]


def test_list_dp_shows_every_dp_family_on_its_datasets():
    from vaezoo.families import published

    res = run_cli("list", "dp-*", "--json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    fams = {r["family"] for r in rows}
    assert fams == {name for name, pub in published().items() if pub.variant is not None and pub.variant.name == "dp"}
    assert fams >= {"dp-vae", "dp-beta-h", "dp-beta-b", "dp-tc", "dp-factor", "dp-info"}
    for fam in ("dp-vae", "dp-beta-h", "dp-beta-b", "dp-tc", "dp-factor", "dp-info"):
        assert {r["dataset"] for r in rows if r["family"] == fam} >= {"mnist", "mnist5k", "svhn", "celeba", "cifar10", "moons"}
    for fam in fams:
        assert {r["dataset"] for r in rows if r["family"] == fam} == set(published()[fam].datasets)
    text = run_cli("list", "dp-factor-*")
    assert "dp-factor-celeba" in text.stdout and "vae-mnist " not in text.stdout


def test_info_prints_the_resolved_recipe():
    res = run_cli("info", "dp-factor-celeba", "--json")
    assert res.returncode == 0, res.stderr
    rec = json.loads(res.stdout)["recipe"]
    assert rec["prior"]["kind"] == "flow" and rec["objective"]["name"] == "factor"
    assert rec["model"]["backbone"] == "conv64" and rec["data"]["name"] == "celeba"
    toml = run_cli("info", "beta-b-mnist")
    assert "capacity_steps = 75000" in toml.stdout


def test_sample_same_seed_same_file(tiny_dp_factor, tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for out, seed in ((a, "0"), (b, "0"), (c, "1")):
        res = run_cli("sample", str(tiny_dp_factor), "-n", "64", "--seed", seed, "-o", str(out), "--backend", "torch")
        assert res.returncode == 0, res.stderr
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    im = Image.open(a)
    assert im.size == (8 * 30 + 2, 8 * 30 + 2)  # 8x8 grid of 28px digits with 2px padding
    npy = tmp_path / "s.npy"
    assert run_cli("sample", str(tiny_dp_factor), "-n", "5", "-o", str(npy), "--backend", "torch").returncode == 0
    arr = np.load(npy)
    assert arr.shape == (5, 1, 28, 28) and 0 <= arr.min() and arr.max() <= 1


def test_encode_decode_reconstruct_traverse_interpolate(tiny_dp_factor, digits, tmp_path):
    m = str(tiny_dp_factor)
    lat = tmp_path / "lat.npy"
    res = run_cli("encode", m, str(digits), "-o", str(lat), "--backend", "torch", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["count"] == 8 and np.load(lat).shape == (8, 4)
    csv = run_cli("encode", m, str(digits / "d0.png"), "--backend", "torch")
    assert csv.stdout.splitlines()[0] == "source,z0,z1,z2,z3" and "d0.png" in csv.stdout
    dec = tmp_path / "dec.png"
    assert run_cli("decode", m, str(lat), "-o", str(dec), "--backend", "torch").returncode == 0
    rec = tmp_path / "rec.npy"
    assert run_cli("reconstruct", m, str(digits), "-o", str(rec), "--backend", "torch").returncode == 0
    assert np.load(rec).shape == (8, 1, 28, 28)
    trav = tmp_path / "trav.npy"
    res = run_cli("traverse", m, "--dims", "0,2", "--steps", "5", "-o", str(trav), "--backend", "torch")
    assert res.returncode == 0, res.stderr
    assert np.load(trav).shape == (10, 1, 28, 28)
    inter = tmp_path / "inter.png"
    res = run_cli("interpolate", m, str(digits / "d0.png"), str(digits / "d1.png"), "--steps", "6", "-o", str(inter), "--backend", "torch")
    assert res.returncode == 0, res.stderr
    assert Image.open(inter).size == (6 * 30 + 2, 30 + 2)


def test_bad_inputs_get_one_line_errors(tiny_dp_factor, digits, tmp_path):
    m = str(tiny_dp_factor)
    _one_line_error(run_cli("sample", "dp-factro-mnist5k", "-o", str(tmp_path / "x.png")), 2, "did you mean dp-factor-mnist5k")
    _one_line_error(run_cli("sample", "dp-tc-svhn", "-o", str(tmp_path / "x.png")), 1, "vaezoo train dp-tc-svhn")
    big = tmp_path / "big.png"
    Image.new("L", (32, 32)).save(big)
    _one_line_error(run_cli("encode", m, str(big), "--backend", "torch"), 2, "expects 28x28")
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(run_cli("encode", m, str(empty), "--backend", "torch"), 2, "no images")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes((digits / "d0.png").read_bytes()[:40])
    _one_line_error(run_cli("encode", m, str(corrupt), "--backend", "torch"), 2, "cannot read image")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    _one_line_error(run_cli("encode", m, str(text), "--backend", "torch"), 2, "not an image")
    out = tmp_path / "keep.png"
    out.write_bytes(b"precious")
    _one_line_error(run_cli("sample", m, "-o", str(out), "--backend", "torch"), 2, "--force")
    assert out.read_bytes() == b"precious"
    assert run_cli("sample", m, "-n", "4", "-o", str(out), "--force", "--backend", "torch").returncode == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    _one_line_error(run_cli("sample", m, "-o", str(tmp_path / "nope" / "x.png"), "--backend", "torch"), 2, "does not exist")
    _one_line_error(run_cli("sample", m, "-o", str(tmp_path / "x.gif"), "--backend", "torch"), 2, "use .png or .npy")
    _one_line_error(run_cli("sample", str(tmp_path), "-o", str(tmp_path / "x.png")), 1, "not a vaezoo checkpoint")
    bad_lat = tmp_path / "bad.npy"
    np.save(bad_lat, np.zeros((3, 7), np.float32))
    _one_line_error(run_cli("decode", m, str(bad_lat), "-o", str(tmp_path / "d.png"), "--backend", "torch"), 2, "N x 4")
    assert not list(tmp_path.glob(".*.tmp")), "no half-written temp files are left behind"


def test_train_sample_moons_end_to_end(tmp_path):
    out = tmp_path / "moons"
    res = run_cli("train", "dp-vae-moons", "--steps", "200", "--nll-samples", "32", "--out", str(out), "-q")
    assert res.returncode == 0, res.stderr
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    pts = tmp_path / "pts.npy"
    assert run_cli("sample", str(out), "-n", "300", "-o", str(pts), "--backend", "torch").returncode == 0
    arr = np.load(pts)
    assert arr.shape == (300, 2) and np.isfinite(arr).all()
    assert run_cli("sample", str(out), "-n", "300", "-o", str(tmp_path / "pts.png"), "--backend", "torch").returncode == 0


def test_help_and_version():
    res = run_cli("--help")
    assert res.returncode == 0 and "sample" in res.stdout and "train" in res.stdout
    assert run_cli("--version").stdout.startswith("vaezoo ")
    assert run_cli("sample").returncode == 2
