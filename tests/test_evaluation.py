"""The evaluation suite: metrics with known answers (two Gaussians), the FID-LeNet classifier, and
`vaezoo evaluate --metrics ...` / `vaezoo sample --region` run as a user would."""

from __future__ import annotations

import numpy as np
import pytest

from vaezoo.errors import UsageError
from vaezoo.evaluation import metrics as M


def _gauss_kl(mu0, var0, mu1, var1) -> float:
    """KL(N(mu0, diag var0) || N(mu1, diag var1)), closed form."""
    return float(0.5 * np.sum(var0 / var1 + (mu1 - mu0) ** 2 / var1 - 1 + np.log(var1 / var0)))


# ---------------------------------------------------------------- Fréchet distance
def test_frechet_matches_the_closed_form_for_diagonal_gaussians():
    a, b, m = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25]), np.array([1.0, -2.0, 0.5])
    want = m @ m + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)   # 5.25 + 4 + 1 + 0
    assert M.frechet_from_stats(np.zeros(3), np.diag(a), m, np.diag(b)) == pytest.approx(want, abs=1e-9)
    assert M.frechet_from_stats(m, np.diag(a), m, np.diag(a)) == pytest.approx(0.0, abs=1e-9)


def test_frechet_matches_scipy_sqrtm_for_full_covariances():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    c1, c2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    mu1, mu2 = rng.standard_normal(4), rng.standard_normal(4)
    want = (mu1 - mu2) @ (mu1 - mu2) + np.trace(c1 + c2 - 2 * linalg.sqrtm(c1 @ c2).real)
    assert M.frechet_from_stats(mu1, c1, mu2, c2) == pytest.approx(want, rel=1e-7)


def test_frechet_on_samples_converges_and_refuses_too_few():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20000, 3))
    y = rng.standard_normal((20000, 3)) * 2.0 + np.array([1.0, 0.0, 0.0])
    assert M.frechet_distance(x, y) == pytest.approx(1.0 + 3 * (2 - 1) ** 2, rel=0.05)
    with pytest.raises(UsageError, match="more samples than the feature size"):
        M.frechet_distance(x[:5], y[:5, :][:, :3].repeat(4, axis=1))


# ---------------------------------------------------------------- k-NN KL and sKL
def test_knn_kl_matches_the_closed_form_of_two_gaussians():
    rng = np.random.default_rng(2)
    mu1, var1 = np.array([1.0, 0.0]), np.array([2.0, 0.5])
    x = rng.standard_normal((5000, 2))
    y = mu1 + rng.standard_normal((5000, 2)) * np.sqrt(var1)
    kl_pq, kl_qp = _gauss_kl(np.zeros(2), np.ones(2), mu1, var1), _gauss_kl(mu1, var1, np.zeros(2), np.ones(2))
    assert M.knn_kl(x, y) == pytest.approx(kl_pq, abs=0.1)
    assert M.knn_kl(y, x, k=5) == pytest.approx(kl_qp, abs=0.1)
    same = rng.standard_normal((5000, 2))
    assert abs(M.symmetric_kl(x, same)) < 0.1   # the 1-NN estimator's spread at n = 5,000 is a few hundredths


def test_knn_kl_refuses_bad_shapes_and_k():
    with pytest.raises(UsageError):
        M.knn_kl(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(UsageError):
        M.knn_kl(np.zeros((10, 2)), np.zeros((10, 2)), k=10)


# ---------------------------------------------------------------- aggregate posterior and leakage
def test_mixture_log_density_is_the_gaussian_mixture():
    rng = np.random.default_rng(3)
    z = rng.standard_normal((7, 3))
    mu, logvar = rng.standard_normal((2, 3)), rng.standard_normal((2, 3)) * 0.3

    def logpdf(m, lv):
        return -0.5 * np.sum((z - m) ** 2 / np.exp(lv) + lv + np.log(2 * np.pi), axis=1)

    want = np.log(0.5 * np.exp(logpdf(mu[0], logvar[0])) + 0.5 * np.exp(logpdf(mu[1], logvar[1])))
    np.testing.assert_allclose(M.mixture_log_density(z, mu, logvar), want, rtol=1e-10)
    np.testing.assert_allclose(M.mixture_log_density(z, mu[:1], logvar[:1]), logpdf(mu[0], logvar[0]), rtol=1e-10)


def test_leakage_is_the_level_when_the_posterior_is_the_prior_and_more_when_it_leaks():
    rng = np.random.default_rng(4)
    prior = M.std_normal_log_density(rng.standard_normal((20000, 2)))
    same = M.std_normal_log_density(rng.standard_normal((20000, 2)))
    wide = M.std_normal_log_density(3 * rng.standard_normal((20000, 2)))
    levels = [0.05, 0.25, 0.5]
    for row, a in zip(M.leakage_curve(prior, same, levels), levels):
        assert row["leakage"] == pytest.approx(a, abs=0.02)
    # N(0, 9 I) puts exp(-r^2 / 18) of its mass beyond the prior's radius r with exp(-r^2 / 2) = a
    for row, a in zip(M.leakage_curve(prior, wide, levels), levels):
        assert row["leakage"] == pytest.approx(a ** (1 / 9), abs=0.02)


# ---------------------------------------------------------------- the FID-LeNet classifier
import json  # noqa: E402  (the CLI half of the file)
from pathlib import Path  # noqa: E402

from tests.conftest import run_cli, train_tiny  # noqa: E402
from tests.fake_hub import fake_hub, tiny_ckpt  # noqa: E402,F401 (fixtures)


def _export(folder: Path) -> Path:
    r = run_cli("export", str(folder), "--exporter", "torchscript")
    assert r.returncode == 0, r.stderr
    return folder


@pytest.fixture(scope="module")
def tiny_lenet(tmp_path_factory) -> Path:
    return _export(train_tiny("lenet-mnist5k", tmp_path_factory.mktemp("lenet") / "lenet"))


@pytest.fixture(scope="module")
def tiny_vae(tmp_path_factory) -> Path:
    return _export(train_tiny("dp-vae-mnist5k", tmp_path_factory.mktemp("vae") / "dp-vae"))


def test_lenet_graph_gives_the_logits_and_features_the_trainer_scored(tiny_lenet):
    """The exported features graph (ONNX Runtime, no torch) reproduces the accuracy the trainer recorded."""
    from vaezoo.data import load_dataset
    from vaezoo.evaluation.features import FeatureNet

    recorded = json.loads((tiny_lenet / "metrics.json").read_text())["validation"]
    net = FeatureNet(tiny_lenet)
    val = load_dataset("mnist5k", "val")
    logits, feats = net.run(val.float_batch(slice(0, recorded["examples"])))
    assert logits.shape == (recorded["examples"], 10) and feats.shape == (recorded["examples"], 4)  # TINY: latent 4
    assert (feats >= 0).all()   # after the ReLU
    err = float((logits.argmax(1) != val.y[: recorded["examples"]]).mean())
    assert err == pytest.approx(recorded["error_rate"])


def test_a_model_that_is_not_a_fid_classifier_is_refused(tiny_vae):
    from vaezoo.evaluation.features import FeatureNet

    with pytest.raises(UsageError, match="not an exported FID classifier"):
        FeatureNet(tiny_vae)


# ---------------------------------------------------------------- vaezoo evaluate --metrics
def test_evaluate_measures_and_records_every_sample_metric(tiny_vae, tiny_lenet):
    from vaezoo.store.checkpoint import verify_files

    before = json.loads((tiny_vae / "metrics.json").read_text())
    r = run_cli("evaluate", str(tiny_vae), "--metrics", "fid,fid-lp,skl,leakage", "--samples", "60", "--pool", "3",
                "--classifier", str(tiny_lenet), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    m = out["metrics"]
    assert out["backend"] == "onnx" and set(m) == {"fid", "fid-lp", "skl", "leakage"}
    assert m["fid"]["value"] >= 0 and m["fid-lp"]["value"] >= 0 and np.isfinite(m["skl"]["value"])
    assert m["fid"]["protocol"]["real"] == "mnist5k:train (4500 examples)" and m["fid"]["protocol"]["generated"] == 60
    assert m["fid-lp"]["protocol"]["pool"] == 3 and m["skl"]["protocol"]["k"] == 1
    assert [row["level"] for row in m["leakage"]["value"]] == [0.01, 0.05, 0.1, 0.25, 0.5]
    stored = json.loads((tiny_vae / "metrics.json").read_text())
    assert stored["validation"] == before["validation"]           # the training metrics stay
    assert stored["evaluation"]["skl"]["value"] == m["skl"]["value"]
    verify_files(tiny_vae, ["metrics.json"])                       # the manifest lists the new file
    card = run_cli("card", str(tiny_vae))
    assert card.returncode == 0 and "Measured by vaezoo.evaluation (`vaezoo evaluate`" in card.stdout, card.stderr
    assert "| skl | " in card.stdout and "k-NN KL" in card.stdout
    # the same seed gives the same numbers; the text form prints the protocol beside each
    r2 = run_cli("evaluate", str(tiny_vae), "--metrics", "skl", "--samples", "60")
    assert r2.returncode == 0, r2.stderr
    assert f"skl      {m['skl']['value']:.4g}" in r2.stdout and "k-NN KL" in r2.stdout


def test_nll_through_the_graphs_agrees_with_the_trainers(tiny_vae):
    """The numpy/ONNX estimator against the torch one the trainer recorded (same K and digits, other noise)."""
    recorded = json.loads((tiny_vae / "metrics.json").read_text())["validation"]
    r = run_cli("evaluate", str(tiny_vae), "--metrics", "nll", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["metrics"]["nll"]
    assert res["protocol"]["K"] == recorded["nll_samples"] and res["protocol"]["examples"] == recorded["examples"]
    assert res["value"] == pytest.approx(recorded["nll"], abs=2.0), (res["value"], recorded["nll"])   # ~545 nats, untrained


def test_every_sample_metric_runs_without_torch(tmp_path, tiny_vae, tiny_lenet):
    """fid, fid-lp, skl, leakage, nll and sample --region through ONNX where importing torch fails."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('torch is blocked in this test')\n")
    env = {"PYTHONPATH": str(tmp_path)}
    r = run_cli("evaluate", str(tiny_vae), "--metrics", "fid,fid-lp,skl,leakage,nll", "--samples", "20", "--pool", "2",
                "--classifier", str(tiny_lenet), "--backend", "onnx", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)["metrics"]) == {"fid", "fid-lp", "skl", "leakage", "nll"}
    r = run_cli("evaluate", str(tiny_vae), "--samples", "20", "--pool", "2", "--classifier", str(tiny_lenet), "--json", env=env)
    assert r.returncode == 0, r.stderr   # no --metrics: the default set that applies to a digit VAE
    assert list(json.loads(r.stdout)["metrics"]) == ["fid", "fid-lp", "skl", "nll"]
    r = run_cli("sample", str(tiny_vae), "--region", "hp", "-n", "4", "-o", str(tmp_path / "hp.npy"), env=env)
    assert r.returncode == 0 and np.load(tmp_path / "hp.npy").shape == (4, 1, 28, 28), r.stderr


@pytest.mark.parametrize("args, message", [
    (["m2-mnist5k", "--metrics", "skl"], "needs an unconditional model"),
    (["vae-mnist5k", "--metrics", "error"], "error needs a model with a classifier"),
    (["vae-mnist5k", "--metrics", "fid,bogus"], "unknown metric(s) bogus"),
    (["vae-mnist5k", "--labels", "y.idx"], "--labels names the labels of IDX or .npy images given in --data"),
    (["m2-mnist5k", "--metrics", "nll"], "needs an unconditional model"),
    (["vae-mnist5k", "--metrics", "skl", "--samples", "5", "--k", "5"], "--k 5 must be below --samples 5"),
    (["vae-mnist5k", "--metrics", "skl", "--data", "mnist5k:val"], "add error to --metrics"),
])
def test_metrics_that_do_not_apply_are_one_line_errors(args, message):
    r = run_cli("evaluate", *args)
    assert r.returncode != 0 and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_fid_is_refused_for_non_images_and_too_few_samples(tmp_path, tiny_lenet):
    moons = train_tiny("vae-moons", tmp_path / "moons")
    r = run_cli("evaluate", str(moons), "--metrics", "fid", "--backend", "torch")
    assert r.returncode != 0 and "fid needs a model of images" in r.stderr
    r = run_cli("evaluate", "vae-mnist5k", "--metrics", "fid", "--samples", "4", "--classifier", str(tiny_lenet))
    assert r.returncode != 0 and "more samples than the classifier's 4 features" in r.stderr


def test_a_bundled_starter_is_evaluated_but_not_written_to():
    from vaezoo.store.resolution import bundled_dir

    before = (bundled_dir("vae-mnist5k") / "metrics.json").read_bytes()
    r = run_cli("evaluate", "vae-mnist5k", "--metrics", "skl,leakage", "--samples", "200", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["recorded"] is None
    assert (bundled_dir("vae-mnist5k") / "metrics.json").read_bytes() == before


def test_a_hub_cached_checkpoint_is_evaluated_but_not_written_to(fake_hub, tiny_ckpt):
    fake_hub.add_folder("org/evald", tiny_ckpt)
    r = run_cli("pull", "hf-hub:org/evald", "--json")
    assert r.returncode == 0, r.stderr
    snapshot = Path(json.loads(r.stdout)["path"])
    before = (snapshot / "metrics.json").read_bytes()
    r = run_cli("evaluate", "hf-hub:org/evald", "--metrics", "skl", "--samples", "200", "--backend", "torch", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["recorded"] is None and (snapshot / "metrics.json").read_bytes() == before


def test_the_classifier_error_rate_is_a_metric_too():
    r = run_cli("evaluate", "m2-mnist5k", "--metrics", "error", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["metrics"]["error"]
    old = json.loads(run_cli("evaluate", "m2-mnist5k", "--data", "mnist5k:val", "--json").stdout)
    assert res["value"] == old["error_rate"] and res["protocol"]["examples"] == 500


# ---------------------------------------------------------------- LP / HP samples
def test_lp_and_hp_keep_the_lowest_density_draws():
    from vaezoo.data import load_dataset
    from vaezoo.evaluation.regions import encode_all, log_prior, region_latents
    from vaezoo.runtime.pipeline import load_pipeline

    pipe = load_pipeline("dp-vae-mnist5k", "onnx")
    mu, logvar = encode_all(pipe, load_dataset("mnist5k", "train").float_batch(slice(0, 1000)))
    z, info = region_latents(pipe, "lp", 50, 0, 10, mu, logvar)
    assert z.shape == (50, pipe.latent_dim) and info["drawn"] == 500
    # the kept draws are the tail: every one is below the median density of all draws, and below plain samples'
    assert info["score_max_kept"] < info["score_median_all"]
    plain = M.mixture_log_density(pipe.from_generation(pipe.noise(50, 0)), mu, logvar)
    assert M.mixture_log_density(z, mu, logvar).max() <= np.sort(plain)[len(plain) // 2]
    zh, infoh = region_latents(pipe, "hp", 50, 0, 10, mu, logvar)
    assert infoh["score_max_kept"] < infoh["score_median_all"]
    assert log_prior(pipe, zh).max() == pytest.approx(infoh["score_max_kept"], rel=1e-5)


def test_sample_region_writes_a_grid_and_refuses_what_does_not_apply(tmp_path):
    out = tmp_path / "lp.png"
    r = run_cli("sample", "dp-vae-mnist5k", "--region", "lp", "-n", "16", "--pool", "4", "-o", str(out))
    assert r.returncode == 0 and out.is_file() and "wrote 16 LP samples" in r.stdout, r.stderr
    r = run_cli("sample", "dp-vae-mnist5k", "--region", "hp", "-n", "16", "-o", str(out))
    assert r.returncode != 0 and "--force" in r.stderr                      # never overwritten without --force
    r = run_cli("sample", "m2-mnist5k", "--region", "hp", "-n", "4", "-o", str(tmp_path / "m2.png"))
    assert r.returncode != 0 and "unconditional" in r.stderr and not (tmp_path / "m2.png").exists()
    r = run_cli("sample", "dp-vae-mnist5k", "--region", "middle", "-o", str(tmp_path / "x.png"))
    assert r.returncode == 2 and not (tmp_path / "x.png").exists()


def test_the_dpvae_table_script_measures_the_bundled_starters(tiny_lenet, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("dpvae_table", Path(__file__).resolve().parent.parent / "scripts" / "dpvae_table.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.main(["--samples", "60", "--classifier", str(tiny_lenet)])
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| ") and "FID" not in line]
    assert [r.split(" | ")[0] for r in rows] == ["| vae", "| dp-vae", "| factor", "| dp-factor"]
    assert rows[0].endswith("| 137.4 / 165.0 / 1.26 |")   # the paper's VAE beside ours
    from vaezoo.store.resolution import bundled_dir

    for r in rows:
        fid, fid_lp, skl, nll = (float(v) for v in r.split(" | ")[1:5])
        assert fid >= 0 and fid_lp >= 0 and np.isfinite(skl), r
        recorded = json.loads((bundled_dir(r.split(" | ")[0][2:] + "-mnist5k") / "metrics.json").read_text())
        assert nll == pytest.approx(recorded["validation"]["nll"], abs=0.006)   # training's NLL, to the printed digits
    assert "skl: the decoupled prior lower in" in out and "of 2 pairs" in out


def test_the_default_metrics_are_those_that_apply():
    """evaluate without --metrics: FID-LeNet only for digits, the aggregate-posterior metrics and the NLL only
    for unconditional models, the error rate for classifiers, the factor metrics on datasets with factors."""
    from vaezoo.evaluation.suite import default_metrics
    from vaezoo.runtime.pipeline import load_pipeline

    assert default_metrics(load_pipeline("dp-factor-mnist5k", "onnx", "cpu")) == ["fid", "fid-lp", "skl", "nll"]
    assert default_metrics(load_pipeline("m2-mnist5k", "onnx", "cpu")) == ["fid", "error"]
