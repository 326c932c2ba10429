"""DRAW (issue #14): a tiny draw-mnist5k trained by the real trainer, exported with parity, sampled from the
CLI on both backends (the same canvas from one seed), through ONNX with torch blocked, the per-step canvas
grid, the encoder graph, and bad recipes refused in one line before anything is written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli, tiny_recipe, train_tiny

pytest.importorskip("onnxruntime")

T, LATENT = 3, 4
SMALL = {"model": {"time_steps": T, "latent": LATENT, "enc_hidden": 16, "dec_hidden": 16}}


@pytest.fixture(scope="module")
def draw_ckpt(tmp_path_factory) -> Path:
    """A tiny trained draw-mnist5k, exported through the CLI with --check (parity <= 1e-4 or it fails)."""
    folder = train_tiny("draw-mnist5k", tmp_path_factory.mktemp("draw") / "draw-mnist5k", **SMALL)
    r = run_cli("export", str(folder), "--exporter", "torchscript", "--check", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert set(report["parts"]) == {"encoder", "decoder", "canvases", "prior_forward", "prior_inverse"}
    assert report["parts"]["decoder"]["inputs"] == [["z", ["batch", T, LATENT]]]
    assert report["parts"]["canvases"]["outputs"][0] == ["canvases", ["batch", T, 1, 28, 28]]
    return folder


def test_training_reports_held_out_metrics_over_the_steps(draw_ckpt):
    val = json.loads((draw_ckpt / "metrics.json").read_text())["validation"]
    assert val["time_steps"] == T and val["nll_samples"] == 8
    assert np.isfinite(val["nll"]) and val["kl"] > 0
    assert abs(val["neg_elbo"] - (val["kl"] + val["recon"])) < 1e-3 * val["neg_elbo"]


def test_cli_samples_agree_across_backends_and_follow_the_numpy_noise(draw_ckpt, tmp_path):
    from vaezoo import load
    from vaezoo.runtime.pipeline import sigmoid

    outs = {}
    for backend in ("torch", "onnx"):
        path = tmp_path / f"{backend}.npy"
        r = run_cli("sample", str(draw_ckpt), "-n", "5", "--seed", "3", "--backend", backend, "-o", str(path))
        assert r.returncode == 0, r.stderr
        outs[backend] = np.load(path)
    assert outs["torch"].shape == (5, 1, 28, 28)
    assert np.abs(outs["torch"] - outs["onnx"]).max() <= 1e-4
    # all T noise vectors are ONE numpy draw of shape (n, T, latent), fed to the one generation graph
    pipe = load(str(draw_ckpt), backend="onnx")
    eps = np.random.default_rng(3).standard_normal((5, T, LATENT)).astype(np.float32)
    (logits,) = pipe.backend.run("decoder", eps)
    assert np.abs(sigmoid(logits) - outs["onnx"]).max() <= 1e-6


def test_canvas_steps_grid_one_row_per_sample(draw_ckpt, tmp_path):
    png, npy, final = tmp_path / "steps.png", tmp_path / "steps.npy", tmp_path / "final.npy"
    for out, extra in ((png, ["--canvas-steps"]), (npy, ["--canvas-steps"]), (final, [])):
        r = run_cli("sample", str(draw_ckpt), "-n", "4", "--backend", "onnx", "-o", str(out), *extra)
        assert r.returncode == 0, r.stderr
    w, h = Image.open(png).size
    assert (w, h) == (T * 30 + 2, 4 * 30 + 2)     # T columns, 4 rows of 28-pixel images with 2-pixel gaps
    steps = np.load(npy).reshape(4, T, 1, 28, 28)
    assert np.abs(steps[:, -1] - np.load(final)).max() <= 1e-6   # the last column is the sample itself
    assert np.abs(steps[:, 0] - steps[:, -1]).max() > 0           # the canvas changes over the steps


def test_encoder_graph_codes_redraw_the_encoders_canvas(draw_ckpt, tmp_path):
    import torch

    from vaezoo import load
    from vaezoo.models.loading import load_model

    x = np.random.default_rng(0).random((3, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = run_cli("encode", str(draw_ckpt), str(tmp_path / "x.npy"), "--backend", "onnx", "-o", str(tmp_path / "mu.npy"))
    assert r.returncode == 0, r.stderr
    mu = np.load(tmp_path / "mu.npy")
    assert mu.shape == (3, T, LATENT)
    model, _ = load_model(draw_ckpt, "cpu")
    with torch.no_grad():
        mu_t, _, _, canvas = model.infer(torch.from_numpy(x), sample=False)
    assert np.abs(mu_t.numpy() - mu).max() <= 1e-4
    recon = load(str(draw_ckpt), backend="onnx").reconstruct(x)
    assert np.abs(recon - torch.sigmoid(canvas).numpy()).max() <= 1e-4


def test_sample_through_onnx_with_torch_not_importable(draw_ckpt, tmp_path):
    root = tmp_path / "no_torch"
    (root / "torch").mkdir(parents=True)
    marker = root / "imported"
    (root / "torch" / "__init__.py").write_text(f"open({str(marker)!r}, 'a').write('x')\nraise ImportError('torch blocked')\n")
    env = {"PYTHONPATH": os.pathsep.join(p for p in [str(root), os.environ.get("PYTHONPATH", "")] if p)}
    for extra in ([], ["--canvas-steps"]):
        out = tmp_path / f"d{len(extra)}.png"
        r = run_cli("sample", str(draw_ckpt), "-n", "16", "--backend", "onnx", "-o", str(out), *extra, env=env)
        assert r.returncode == 0, r.stderr
        assert out.is_file() and not marker.exists()


def test_evaluate_measures_a_draw_model_whose_code_has_a_time_axis(draw_ckpt, tmp_path):
    """T x latent codes through every metric that reads latents (flattened where a metric sees points)."""
    r = run_cli("evaluate", str(draw_ckpt), "--metrics", "fid-lp,skl,leakage,nll", "--samples", "200", "--json",
                "--backend", "onnx")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["metrics"]
    assert np.isfinite(res["fid-lp"]["value"]) and res["fid-lp"]["value"] > 0
    assert np.isfinite(res["skl"]["value"]) and len(res["leakage"]["value"]) > 1
    assert 0 < res["nll"]["value"] < 784 * np.log(2) * 2 and "not the sequential posterior" in res["nll"]["protocol"]["estimator"]


def test_canvas_steps_on_a_model_without_steps_is_one_line(tmp_path):
    out = tmp_path / "s.png"
    r = run_cli("sample", "vae-mnist5k", "-n", "2", "--canvas-steps", "-o", str(out), "--backend", "torch")
    assert r.returncode != 0 and "does not draw in steps" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_window_that_does_not_fit_is_one_line_before_anything_is_written(tmp_path):
    from vaezoo.recipes import to_toml

    recipe = tmp_path / "bad.toml"
    recipe.write_text(to_toml({"family": "draw", "dataset": "mnist5k", "model": {"read_size": 40}}))
    out = tmp_path / "out"
    r = run_cli("train", str(recipe), "--out", str(out), "--steps", "1", "--quiet")
    assert r.returncode != 0 and "an attention window of 40 x 40 filters does not fit a 28 x 28 image" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not out.exists()


@pytest.mark.parametrize("model, words", [
    ({"write_size": 1}, "model.write_size = 1: an attention window of 1 x 1 filters does not fit"),
    ({"time_steps": 0}, "time_steps (T) must be at least 1"),
    ({"attention": "yes"}, "model.attention must be true or false"),
    ({"window_init": "middle"}, "model.window_init must be one of centre, zero, not 'middle'"),
])
def test_other_bad_settings_are_refused_before_training_writes(tmp_path, model, words):
    from vaezoo.errors import UsageError
    from vaezoo.train.trainer import train

    out = tmp_path / "out"
    with pytest.raises(UsageError, match=words.replace("(", r"\(").replace(")", r"\)")):
        train(tiny_recipe("draw-mnist5k", model=model), out, device="cpu", progress=False)
    assert not out.exists()


def test_the_centre_window_init_reads_ink_where_the_zero_init_reads_blank_corners():
    """Why "centre" is the default: at the start (h_dec = 0) a 2 x 2 read with the zero bias looks at the corner
    pixels, blank in MNIST, so the glimpse is 0 and the posterior has nothing to code."""
    import numpy as np
    import torch

    from vaezoo.data import load_dataset
    from vaezoo.models.draw import FilterBank

    digits = torch.from_numpy(load_dataset("mnist5k", "train").float_batch(np.arange(200)))
    glimpses = {}
    for init in ("centre", "zero"):
        fy, fx, gamma = FilterBank(8, 2, 28, 28, init)(torch.zeros(1, 8))
        centres = (fy[0] * torch.arange(1, 29.0)).sum(1)
        assert (init == "zero") == bool((centres < 3).any() and (centres > 26).any()), (init, centres)
        glimpses[init] = float((fy[:, None] @ digits @ fx[:, None].transpose(2, 3)).mean())
    assert glimpses["zero"] < 1e-3 < 0.05 < glimpses["centre"], glimpses


def test_no_attention_variant_reads_and_writes_whole_images():
    import torch

    from vaezoo.models import build_model
    from vaezoo.store.checkpoint import make_config

    with_att = build_model(make_config(tiny_recipe("draw-mnist5k", **SMALL)))
    without = build_model(make_config(tiny_recipe("noattn-draw-mnist5k", **SMALL)))
    assert with_att.attention and not without.attention
    assert without.enc.linear.in_features == 2 * 784 + 16 + 16 and with_att.enc.linear.in_features == 2 * 5 * 5 + 16 + 16  # reads (5 x 5 glimpses), h_dec, h_enc
    fwd = without.forward_pass(torch.rand(2, 1, 28, 28))
    assert fwd.mu.shape == (2, T, LATENT) and fwd.kl.shape == (2,)


def test_filters_are_normalised_gaussians_centred_where_asked():
    import torch

    from vaezoo.models.draw import FilterBank

    bank = FilterBank(hidden=1, n=3, height=28, width=28)
    with torch.no_grad():   # centre (0, 0) -> pixel 14.5, stride exp(0) * 27 / 2, variance exp(0)
        bank.params.weight.zero_()
        bank.params.bias.zero_()
        fy, fx, gamma = bank(torch.zeros(1, 1))
    assert torch.allclose(fx.sum(2), torch.ones(1, 3)) and torch.allclose(gamma, torch.ones(1))
    centres = (fx[0] * torch.arange(1, 29.0)).sum(1)
    assert torch.allclose(centres, torch.tensor([14.5 - 13.5, 14.5, 14.5 + 13.5]), atol=0.6)  # edge filters clipped
    assert torch.allclose(fx, fy)


def test_cdraw_samples_the_requested_class(tmp_path):
    """cdraw: the label goes into the generation graph; --label picks it, on both backends alike."""
    from vaezoo import load
    from vaezoo.export import export_checkpoint
    from vaezoo.runtime.pipeline import sigmoid

    folder = train_tiny("cdraw-mnist5k", tmp_path / "cdraw", **SMALL)
    report = export_checkpoint(folder, exporter="torchscript", check=True, log=None)
    assert [n for n, _ in report["parts"]["canvases"]["inputs"]] == ["z", "y"]
    out = tmp_path / "three.npy"
    r = run_cli("sample", str(folder), "-n", "4", "--label", "3", "--seed", "5", "--backend", "onnx", "-o", str(out))
    assert r.returncode == 0, r.stderr
    pipe = load(str(folder), backend="torch")
    eps = np.random.default_rng(5).standard_normal((4, T, LATENT)).astype(np.float32)
    (logits,) = pipe.backend.run("decoder", eps, pipe.onehot([3] * 4))
    assert np.abs(sigmoid(logits) - np.load(out)).max() <= 1e-4
    assert np.abs(pipe.sample(4, seed=5, label="7") - np.load(out)).max() > 1e-4   # another class, another image
    # encode / reconstruct: cdraw has no classifier, so the class comes from --label (one line without it)
    x = np.random.default_rng(0).random((3, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = run_cli("encode", str(folder), str(tmp_path / "x.npy"), "-o", str(tmp_path / "mu.npy"))
    assert r.returncode == 2 and "pass --label" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "mu.npy").exists()
    r = run_cli("encode", str(folder), str(tmp_path / "x.npy"), "--label", "12", "-o", str(tmp_path / "mu.npy"))
    assert r.returncode == 2 and "--label '12' is not a class" in r.stderr
    r = run_cli("encode", str(folder), str(tmp_path / "x.npy"), "--label", "4", "--backend", "onnx", "-o", str(tmp_path / "mu.npy"))
    assert r.returncode == 0, r.stderr
    (mu, _) = pipe.backend.run("encoder", x, pipe.onehot([4] * 3))
    assert np.abs(np.load(tmp_path / "mu.npy") - mu).max() <= 1e-4
    r = run_cli("reconstruct", str(folder), str(tmp_path / "x.npy"), "--label", "4", "-o", str(tmp_path / "r.npy"))
    assert r.returncode == 0, r.stderr
    assert np.abs(np.load(tmp_path / "r.npy") - sigmoid(pipe.backend.run("decoder", mu, pipe.onehot([4] * 3))[0])).max() <= 1e-4


def test_encode_csv_has_a_column_per_step_and_latent(draw_ckpt, tmp_path):
    """DRAW's code is T x latent: the CSV gives each input one row, its columns z<t>_<i> in the .npy's order."""
    x = np.random.default_rng(1).random((2, 1, 28, 28)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    for out in ("mu.npy", "mu.csv"):
        r = run_cli("encode", str(draw_ckpt), str(tmp_path / "x.npy"), "-o", str(tmp_path / out))
        assert r.returncode == 0, r.stderr
    assert f"{T} x {LATENT} dims" in r.stdout + r.stderr
    rows = (tmp_path / "mu.csv").read_text().splitlines()
    header = rows[0].split(",")
    assert header[:3] == ["source", "z0_0", "z0_1"] and header[-1] == f"z{T - 1}_{LATENT - 1}" and len(rows) == 3
    values = np.array([[float(v) for v in row.split(",")[1:]] for row in rows[1:]])
    assert np.abs(values - np.load(tmp_path / "mu.npy").reshape(2, -1)).max() <= 1e-5
    r = run_cli("encode", str(draw_ckpt), str(tmp_path / "x.npy"), "--label", "3", "-o", str(tmp_path / "l.npy"))
    assert r.returncode == 2 and "--label is for conditional models" in r.stderr and not (tmp_path / "l.npy").exists()


def test_cdraw_kl_warmup_and_free_bits_change_only_the_training_term():
    """kl_warmup scales the KL term by step / W; free bits put a floor of lambda nats under each step's
    batch-mean KL_t, so with a floor above every KL_t the encoder's gradient is the reconstruction's alone.
    The recorded kl stays the ELBO's sum_t KL_t."""
    import torch

    from vaezoo.data import load_dataset
    from vaezoo.models import build_model
    from vaezoo.store.checkpoint import make_config
    from vaezoo.train.objectives import build_objective

    def run(step, no_kl=False, **objective):
        recipe = tiny_recipe("cdraw-mnist5k", objective=objective, **SMALL)
        torch.manual_seed(0)
        model, obj = build_model(make_config(recipe)), build_objective(recipe, 4500)
        obj.attach(load_dataset("mnist5k", "train"), torch.device("cpu"))
        if no_kl:   # the reference: the reconstruction term alone, from the same weights and draws
            obj.kl_term = lambda fwd, step: 0.0
        torch.manual_seed(1)
        loss, stats = obj(model, [], step)
        enc = [p for n, p in model.named_parameters() if n.startswith(("enc.", "q."))]
        return loss, stats, torch.autograd.grad(loss, enc)

    plain, s, g_plain = run(5)
    assert torch.allclose(plain, s["recon"] + s["kl"])
    warm, s2, _ = run(5, kl_warmup=10)
    assert torch.allclose(warm, s["recon"] + 0.5 * s["kl"]) and torch.equal(s2["kl"], s["kl"])
    floored, s3, g_floored = run(5, free_bits=1e3)
    assert torch.allclose(floored, s["recon"] + T * 1e3) and torch.equal(s3["kl"], s["kl"])
    _, _, g_rec = run(5, no_kl=True)
    assert all(torch.allclose(a, b) for a, b in zip(g_floored, g_rec))
    assert not all(torch.allclose(a, b) for a, b in zip(g_plain, g_rec))   # the KL does move the encoder
    with pytest.raises(Exception, match="objective.kl_warmup"):
        run(0, free_bits=-1.0)


def test_the_profile_splits_a_training_step_into_parts_that_add_up():
    import re
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, str(repo / "benchmarks" / "bench_draw.py"), "--profile", "--models", "draw-mnist5k"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    shares = {k: int(v) for k, v in re.findall(r"([a-z ]+?) (\d+) %", r.stdout.split("(", 1)[1].replace(", ", ";"))}
    assert set(shares) == {"read", "enc", "q", "dec", "write", "forward rest", "backward"}, r.stdout
    assert 95 <= sum(shares.values()) <= 105 and shares["backward"] > 0 and shares["enc"] > 0, shares


def test_the_plain_onnxruntime_example_samples_a_draw_model_as_vaezoo_does(draw_ckpt, tmp_path):
    """examples/plain_onnxruntime.py reads the code's T x latent shape from the graphs' metadata: the same seed
    gives the same canvases as `vaezoo sample` (whose noise is drawn the same way)."""
    import subprocess
    import sys

    from vaezoo import load

    script = Path(__file__).resolve().parent.parent / "examples" / "plain_onnxruntime.py"
    r = subprocess.run([sys.executable, str(script), str(draw_ckpt / "onnx"), "-n", "4", "--seed", "3", "-o", str(tmp_path / "p.png")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    sys.path.insert(0, str(script.parent))
    try:
        import plain_onnxruntime
    finally:
        sys.path.remove(str(script.parent))
    out, meta = plain_onnxruntime.sample(draw_ckpt / "onnx", 4, seed=3)
    assert out.shape == (4, 1, 28, 28) and meta["family"] == "draw"
    assert np.abs(out - load(str(draw_ckpt), backend="onnx").sample(4, seed=3)).max() <= 1e-5
