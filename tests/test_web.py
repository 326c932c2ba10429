"""`vaezoo export-web`: the page it writes, loaded in headless Chromium from a local server, shows the
numbers `vaezoo sample --seed` writes (the grid's values and its PNG's pixels), and its interpolation and
sliders agree with the pipeline's; bad input is one line before anything is written.

onnxruntime-web comes from npm (the pinned version, `npm pack`ed once into this module's $VAEZOO_HOME),
so these tests skip when chromium or npm is missing; .ci/run installs both.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from web_browser import chromium, live_report, page_numbers, serve

STARTER = "dp-factor-mnist5k"   # bundled with its ONNX graphs
M2 = "m2-mnist5k"               # bundled, conditional: the decoder takes (z, y)
TOL = 1e-4                      # float tolerance between onnxruntime-web (WebAssembly) and onnxruntime


def _need_tools():
    missing = [name for name, found in (("chromium", chromium()), ("npm", shutil.which("npm"))) if not found]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not found (`apt-get install -y chromium nodejs npm`; .ci/run does it)")


def _f32(b64: str, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(b64), "<f4").reshape(shape)


@pytest.fixture(scope="module")
def web_home(tmp_path_factory) -> Path:
    """One $VAEZOO_HOME for the module, so onnxruntime-web is `npm pack`ed once."""
    return tmp_path_factory.mktemp("web_home")


def export_site(model: str, out: Path, home: Path, *extra: str) -> Path:
    res = run_cli("export-web", model, "-o", str(out), "--json", *extra, env={"VAEZOO_HOME": str(home)})
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["model"] == model and summary["ort_web"] == "1.30.0"
    return out


@pytest.fixture(scope="module")
def site(web_home, tmp_path_factory) -> Path:
    _need_tools()
    return export_site(STARTER, tmp_path_factory.mktemp("web") / "site", web_home, "--seeds", "6")


def _sample(model: str, out: Path, *args: str) -> Path:
    res = run_cli("sample", model, "-n", "64", "-o", str(out), "--backend", "onnx", *args)
    assert res.returncode == 0, res.stderr
    return out


# ---------------------------------------------------------------- the page in Chromium
def test_site_holds_the_page_graphs_noise_and_ort_web(site):
    model = json.loads((site / "model.json").read_text())
    assert model["graphs"] == {"prior_inverse": "onnx/prior_inverse.onnx", "decoder": "onnx/decoder.onnx"}
    assert model["postprocess"] == "sigmoid" and model["latent_dim"] == 16
    noise = np.fromfile(site / "noise.bin", "<f4").reshape(6, 64, 16)
    assert np.array_equal(noise[3], np.random.default_rng(3).standard_normal((64, 16)).astype(np.float32))
    for name in ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm", "package.json"):
        assert (site / "ort" / name).stat().st_size > 0, name
    # nothing is fetched from elsewhere: the page names only files of the site
    for page in ("index.html", "app.js"):
        assert "http://" not in (site / page).read_text().replace("http://127", "") and "https://" not in (site / page).read_text()


def test_page_shows_vaezoo_samples_numbers_and_pixels(site, tmp_path):
    from vaezoo.runtime.pipeline import load_pipeline

    with serve(site) as server:
        got = page_numbers(server.url + "index.html?seed=0&test=1", screenshot=tmp_path / "page.png")
    assert got["noise"] == "numpy" and got["count"] == 64 and got["seed"] == 0
    want = np.load(_sample(STARTER, tmp_path / "x.npy", "--seed", "0"))
    images = _f32(got["images"], want.shape)
    assert np.abs(images - want).max() < TOL
    # the grid the page draws is `vaezoo sample -o grid.png`'s, pixel for pixel (a rounding tie may flip one level)
    png = np.asarray(Image.open(_sample(STARTER, tmp_path / "grid.png", "--seed", "0")))
    pixels = np.frombuffer(base64.b64decode(got["pixels"]), np.uint8).reshape(got["pixels_shape"])[..., 0]
    assert pixels.shape == png.shape == (242, 242)
    diff = np.abs(pixels.astype(int) - png)
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    # interpolation from sample 0 to 1, and sample 0 with its eps[0] slider at 2: the pipeline's numbers
    pipe = load_pipeline(STARTER, "onnx")
    eps = pipe.noise(64, 0)
    path = pipe.interpolate(eps[:1], eps[1:2], 10)
    assert np.abs(_f32(got["path"], path.shape) - path).max() < TOL
    moved = eps[:1].copy()
    moved[0, 0] = 2.0
    single = pipe.decode(pipe.from_generation(moved))
    assert np.abs(_f32(got["single"], single.shape) - single).max() < TOL
    shot = Image.open(tmp_path / "page.png")
    assert shot.size == (1000, 1400) and np.asarray(shot.convert("L")).std() > 10   # a rendered page, not a blank one


def test_temperature_and_other_seeds(site):
    from vaezoo.runtime.pipeline import load_pipeline

    with serve(site) as server:
        warm = page_numbers(server.url + "index.html?seed=5&temperature=0.7&test=1")
        other = page_numbers(server.url + "index.html?seed=6&test=1")   # past --seeds 6: the page's own generator
    pipe = load_pipeline(STARTER, "onnx")   # (the CLI's numbers are the pipeline's: the test above runs the CLI)
    want = pipe.sample(64, 5, 0.7)
    assert warm["noise"] == "numpy" and np.abs(_f32(warm["images"], want.shape) - want).max() < TOL
    assert other["noise"] == "browser"
    images = _f32(other["images"], want.shape)
    assert np.isfinite(images).all() and 0 <= images.min() and images.max() <= 1
    assert np.abs(images - pipe.sample(64, 6)).max() > 0.1  # not numpy's draw


def test_conditional_model_cycles_the_classes_as_sample_does(web_home, tmp_path):
    _need_tools()
    site = export_site(M2, tmp_path / "m2", web_home, "--seeds", "1")
    with serve(site) as server:
        got = page_numbers(server.url + "index.html?seed=0&test=1")
    from vaezoo.runtime.pipeline import load_pipeline

    want = load_pipeline(M2, "onnx").sample(64, 0)
    assert np.abs(_f32(got["images"], want.shape) - want).max() < TOL


def test_page_timing_is_reported_in_real_time(site):
    with serve(site) as server:
        got = live_report(server, server.url + "index.html?seed=0&test=1&report=1&repeat=2")
    assert got["noise"] == "numpy" and len(got["repeat_ms"]) == 2 and all(ms > 0 for ms in got["repeat_ms"])


def test_page_without_prior_inverse_decodes_eps(site, tmp_path):
    """A model with no prior_inverse graph (model.json says null): the page decodes z = eps."""
    from vaezoo.runtime.pipeline import load_pipeline

    mine = shutil.copytree(site, tmp_path / "site")
    model = json.loads((mine / "model.json").read_text())
    model["graphs"]["prior_inverse"] = None
    (mine / "model.json").write_text(json.dumps(model))
    (mine / "onnx" / "prior_inverse.onnx").unlink()
    with serve(mine) as server:
        got = page_numbers(server.url + "index.html?seed=1&test=1")
    pipe = load_pipeline(STARTER, "onnx")
    want = pipe.decode(pipe.noise(64, 1))
    assert np.abs(_f32(got["images"], want.shape) - want).max() < TOL
    assert np.abs(want - pipe.sample(64, 1)).max() > 0.1   # (the flow does change the samples)


def test_embed_example_decodes_sample_0(site, tmp_path):
    """examples/embed_web.html, dropped into an exported site, draws `vaezoo sample --seed 0`'s first digit."""
    mine = shutil.copytree(site, tmp_path / "site")
    shutil.copy(Path(__file__).resolve().parent.parent / "examples" / "embed_web.html", mine)
    with serve(mine) as server:
        values = page_numbers(server.url + "embed_web.html", element="values")
    from vaezoo.runtime.pipeline import load_pipeline

    want = load_pipeline(STARTER, "onnx").sample(1, 0)[0]
    assert np.abs(np.asarray(values, dtype=np.float32).reshape(want.shape) - want).max() < TOL


# ---------------------------------------------------------------- refusals, atomic replacement
def _one_line_error(res, code: int | None = None) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode != 0 and (code is None or res.returncode == code), (res.returncode, res.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def test_bad_model_and_model_without_graphs(tmp_path, web_home):
    out = tmp_path / "site"
    line = _one_line_error(run_cli("export-web", "no-such-model", "-o", str(out), env={"VAEZOO_HOME": str(web_home)}))
    assert "no-such-model" in line
    bare = tmp_path / "bare"   # a checkpoint folder without its onnx/ (weights only)
    bare.mkdir()
    for name in ("config.json", "model.safetensors", "metrics.json"):
        shutil.copy(Path(__import__("vaezoo").__file__).parent / "starters" / STARTER / name, bare / name)
    line = _one_line_error(run_cli("export-web", str(bare), "-o", str(out), env={"VAEZOO_HOME": str(web_home)}))
    assert "no ONNX graphs" in line and "vaezoo export" in line
    assert not out.exists()


def test_output_folder_rules(tmp_path, web_home):
    _need_tools()
    env = {"VAEZOO_HOME": str(web_home)}
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert "is a file" in _one_line_error(run_cli("export-web", STARTER, "-o", str(afile), env=env), 2)
    assert "does not exist" in _one_line_error(run_cli("export-web", STARTER, "-o", str(tmp_path / "no" / "site"), env=env), 2)
    site = tmp_path / "site"
    site.mkdir()
    (site / "old.txt").write_text("keep me")
    assert "--force" in _one_line_error(run_cli("export-web", STARTER, "-o", str(site), env=env), 2)
    assert (site / "old.txt").read_text() == "keep me" and sorted(os.listdir(site)) == ["old.txt"]
    export_site(STARTER, site, web_home, "--force", "--seeds", "1")
    assert not (site / "old.txt").exists() and (site / "index.html").is_file()
    assert sorted(os.listdir(tmp_path)) == ["afile", "site"], "no temporary folder left beside the site"


def test_ort_web_sources(site, tmp_path, web_home):   # (site: the npm cache is filled)
    _need_tools()
    out = tmp_path / "site"
    line = _one_line_error(run_cli("export-web", STARTER, "-o", str(out), "--ort-web", str(tmp_path / "nowhere")), 2)
    assert "--ort-web" in line and "not a folder" in line
    line = _one_line_error(run_cli("export-web", STARTER, "-o", str(out), "--ort-web", str(tmp_path)), 2)
    assert "ort.wasm.min.js" in line
    # no npm on PATH and nothing cached: one line saying what to do
    line = _one_line_error(run_cli("export-web", STARTER, "-o", str(out), env={"PATH": "/nonexistent",
                                                                                "VAEZOO_HOME": str(tmp_path / "home")}), 2)
    assert "npm is not installed" in line and "--ort-web" in line
    assert not out.exists()
    # the cache npm filled is a valid --ort-web folder
    cached = web_home / "cache" / "onnxruntime-web" / "1.30.0"
    export_site(STARTER, out, tmp_path / "other_home", "--ort-web", str(cached), "--seeds", "1")
    assert json.loads((out / "model.json").read_text())["ort_web"] == "1.30.0"


def test_a_failed_write_keeps_the_old_site_and_leaves_no_temp_folder(tmp_path):
    from vaezoo.errors import UsageError
    from vaezoo.web.site import write_site

    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("the old site")
    files = {"index.html": b"new", "ort/ort.wasm.min.js": tmp_path / "missing.js", "model.json": b"{}"}
    with pytest.raises(UsageError, match="cannot write"):
        write_site(files, site, force=True)
    assert (site / "index.html").read_text() == "the old site" and sorted(os.listdir(tmp_path)) == ["site"]
    write_site({"index.html": b"new", "model.json": b"{}"}, site, force=True)
    assert sorted(os.listdir(site)) == ["index.html", "model.json"] and sorted(os.listdir(tmp_path)) == ["site"]


def test_a_seed_or_temperature_vaezoo_would_refuse_falls_back_to_the_default(site):
    with serve(site) as server:
        got = page_numbers(server.url + "index.html?seed=-3&temperature=nan&test=1")
    assert (got["seed"], got["temperature"], got["noise"]) == (0, 1, "numpy")
