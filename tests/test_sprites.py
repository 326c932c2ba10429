"""The sprites datasets (generated and the real dSprites file) and the disentanglement metrics of `evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import run_cli
from vaezoo.data import DataError, load_dataset
from vaezoo.data import sprites as S
from vaezoo.errors import UsageError
from vaezoo.evaluation import disentanglement as D


@pytest.fixture(scope="module")
def val():
    return load_dataset("sprites", "val")


# ---------------------------------------------------------------- the generated dataset
def test_the_same_seed_gives_the_same_bytes_and_the_splits_are_disjoint(val):
    first = val.x.tobytes()
    S._generated.cache_clear()
    again = load_dataset("sprites", "val")
    assert again.x.tobytes() == first and np.array_equal(again.factors, val.factors)
    assert again.x is not val.x   # drawn afresh, not the cached array
    n = int(np.prod(S.SIZES))
    rows = {s: set(S.split_rows(n, s, S.SPLIT_SIZES).tolist()) for s in S.SPLIT_SIZES}
    assert [len(r) for r in rows.values()] == [50_000, 10_000, 10_000]
    assert not (rows["train"] & rows["val"]) and not (rows["val"] & rows["test"]) and not (rows["train"] & rows["test"])
    assert val.x.shape == (10_000, 1, 32, 32) and set(np.unique(val.x)) == {0, 255}
    assert np.allclose(val.factor_values, S.values_of(val.factors))
    assert [len(np.unique(val.factors[:, k])) for k in range(5)] == list(S.SIZES)   # every value occurs


def test_the_images_follow_their_factors(val):
    assert np.array_equal(S.render(val.factors[:200]), val.x[:200])
    img = val.x[:, 0].astype(np.float64)
    mass = img.sum((1, 2))
    col = (img.sum(1) * np.arange(32)).sum(1) / mass
    row = (img.sum(2) * np.arange(32)).sum(1) / mass
    assert np.corrcoef(col, val.factor_values[:, 3])[0, 1] > 0.98    # pos_x moves the centroid along the columns
    assert np.corrcoef(row, val.factor_values[:, 4])[0, 1] > 0.98    # pos_y down the rows
    assert abs(np.corrcoef(col, val.factor_values[:, 4])[0, 1]) < 0.1
    # one sprite, only the scale changing: more pixels at each step; the three shapes differ
    base = np.tile([0, 0, 5, 16, 16], (6, 1))
    base[:, 1] = np.arange(6)
    areas = S.render(base).sum((1, 2, 3))
    assert np.all(np.diff(areas) > 0)
    shapes = S.render(np.array([[k, 5, 3, 16, 16] for k in range(3)]))
    assert len({s.tobytes() for s in shapes}) == 3


# ---------------------------------------------------------------- the real file's loader
def _write_dsprites(path, n=64, with_pickle=True):
    rng = np.random.default_rng(1)
    classes = S.classes_of(rng.choice(int(np.prod(S.SIZES)), n, replace=False))
    imgs = S.render(classes, 64)[:, 0] // 255
    arrays = {"imgs": imgs, "latents_classes": np.concatenate([np.zeros((n, 1), np.int64), classes], 1),
              "latents_values": np.concatenate([np.ones((n, 1)), S.values_of(classes)], 1)}
    if with_pickle:   # the real file's metadata is a pickled dict: it must never be unpickled
        arrays["metadata"] = np.array({"title": "dSprites"}, dtype=object)
    np.savez(path, **arrays)
    return classes


def test_the_real_dsprites_file_is_read_without_unpickling(tmp_path):
    (tmp_path / "dsprites").mkdir()
    classes = _write_dsprites(tmp_path / "dsprites" / S.REAL_FILE)
    parts = {s: load_dataset("dsprites", s, data_dir=tmp_path) for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [32, 16, 16]
    seen = np.concatenate([parts[s].factors for s in parts])
    assert sorted(map(tuple, seen)) == sorted(map(tuple, classes))     # every row once, colour dropped
    for ds in parts.values():
        assert ds.x.shape[1:] == (1, 64, 64) and ds.x.dtype == np.uint8 and set(np.unique(ds.x)) <= {0, 255}
        assert np.array_equal(S.render(ds.factors, 64), ds.x)          # each image beside its own factors
        assert np.allclose(ds.factor_values, S.values_of(ds.factors))
    with pytest.raises(DataError, match="never downloaded"):
        load_dataset("dsprites", "train", data_dir=tmp_path / "dsprites" / "elsewhere")
    np.savez(tmp_path / S.REAL_FILE, imgs=np.zeros((4, 64, 64), np.uint8))
    with pytest.raises(DataError, match="no latents_values, latents_classes"):
        S.read_npz(tmp_path / S.REAL_FILE)


# ---------------------------------------------------------------- the metrics
def test_mutual_information_of_a_copy_is_its_entropy():
    a = np.repeat(np.arange(4), 24)
    assert D.mutual_info(a, a) == pytest.approx(np.log(4))
    assert D.mutual_info(a, np.tile([0, 1], 48)) == pytest.approx(0.0, abs=1e-12)


def test_metrics_are_high_on_the_factors_and_low_on_a_rotation_or_noise(val):
    n = 4000
    f = val.factors[:n]
    rng = np.random.default_rng(0)
    good = np.concatenate([val.factor_values[:n] + 0.01 * rng.standard_normal((n, 5)), rng.standard_normal((n, 5))], 1)
    good = (good - good.mean(0)) / good.std(0)
    rotated = good @ np.linalg.qr(rng.standard_normal((10, 10)))[0]
    noise = rng.standard_normal((n, 10))
    m = {name: (D.mig(c, f)["value"], D.factor_score(c, f, seed=0)["value"], D.dci(c, f)["value"])
         for name, c in (("good", good), ("rotated", rotated), ("noise", noise))}
    assert m["good"][0] > 0.8 and m["good"][1] > 0.99                 # 40 orientations in 20 bins cap MIG below 1
    assert m["good"][2]["disentanglement"] > 0.95 and m["good"][2]["completeness"] > 0.95
    assert m["rotated"][0] < 0.1 and m["rotated"][2]["disentanglement"] < 0.5
    assert m["noise"][0] < 0.02 and m["noise"][1] < 0.4 and m["noise"][2]["disentanglement"] < 0.1
    assert m["noise"][2]["informativeness"] < m["rotated"][2]["informativeness"] < m["good"][2]["informativeness"]


def test_mig_leaves_out_a_factor_that_never_varies(val):
    f = val.factors[:2000].copy()
    f[:, 1] = 0
    codes = np.concatenate([val.factor_values[:2000], np.random.default_rng(0).standard_normal((2000, 1))], 1)
    res = D.mig(codes, f)
    assert res["per_factor"][1] is None and res["per_factor"][0] == pytest.approx(1.0, abs=0.05)
    assert res["value"] == pytest.approx(np.mean([g for g in res["per_factor"] if g is not None]))


def test_factor_score_refuses_too_few_examples_per_value(val):
    with pytest.raises(UsageError, match="each vote needs 64"):
        D.factor_score(np.zeros((500, 3)), val.factors[:500])


# ---------------------------------------------------------------- through the CLI
def test_train_a_sprites_model_and_evaluate_its_disentanglement_through_onnx(tmp_path):
    recipe = tmp_path / "tiny-vae-sprites.toml"
    recipe.write_text('family = "vae"\ndataset = "sprites"\n[model]\nchannels = [8, 16]\nhidden = [16]\n'
                      "[train]\nsteps = 100\nbatch_size = 16\n[eval]\nnll_samples = 4\nmax_examples = 8\n")
    out = tmp_path / "run"
    r = run_cli("train", str(recipe), "--steps", "5", "--out", str(out), "--threads", "1", "-q")
    assert r.returncode == 0, r.stderr
    assert run_cli("export", str(out)).returncode == 0
    r = run_cli("evaluate", str(out), "--metrics", "mig,factor-score,dci", "--backend", "onnx", "--samples", "5000", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["backend"] == "onnx" and set(res["metrics"]) == {"mig", "factor-score", "dci"}
    mig = res["metrics"]["mig"]
    assert 0 <= mig["value"] <= 1 and set(mig["per_factor"]) == set(S.FACTORS)
    assert mig["protocol"]["data"] == "sprites:val, the first 5000 of 10000 examples" and "20 " in mig["protocol"]["bins"]
    assert res["metrics"]["factor-score"]["protocol"]["L"] == 64 and res["metrics"]["factor-score"]["protocol"]["seed"] == 0
    assert set(res["metrics"]["dci"]["value"]) == {"disentanglement", "completeness", "informativeness"}
    recorded = json.loads((out / "metrics.json").read_text())["evaluation"]
    assert recorded["mig"]["value"] == mig["value"]
    text = run_cli("evaluate", str(out), "--metrics", "mig", "--backend", "onnx", "--samples", "500").stdout
    assert text.splitlines()[1].startswith("mig ") and "bins 20 equal-width bins" in text
    card = run_cli("card", str(out)).stdout
    assert "| dci | disentanglement " in card and "| factor-score | " in card


def test_disentanglement_metrics_on_a_dataset_without_factors_are_one_line_errors():
    r = run_cli("evaluate", "vae-mnist5k", "--metrics", "skl,mig")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().count("\n") == 0 and "mig needs a dataset with ground-truth factors" in r.stderr
    assert "mnist5k" in r.stderr
    from vaezoo.evaluation.suite import check_applies
    from vaezoo.runtime.pipeline import load_pipeline

    pipe = load_pipeline("vae-mnist5k", "onnx", "cpu")
    for metric in ("factor-score", "dci"):
        with pytest.raises(UsageError, match=f"{metric} needs a dataset with ground-truth factors"):
            check_applies(pipe, [metric])


def test_evaluate_reads_the_real_dsprites_file_from_data_dir(tmp_path):
    """A model trained on a local dSprites file: evaluate finds its validation part with --data-dir (as train
    did), and without it says in one line where it looked; sample --data-dir without --region is refused."""
    (tmp_path / "data" / "dsprites").mkdir(parents=True)
    _write_dsprites(tmp_path / "data" / "dsprites" / S.REAL_FILE, n=96)
    recipe = tmp_path / "tiny-vae-dsprites.toml"
    recipe.write_text('family = "vae"\ndataset = "dsprites"\n[model]\nhidden = [16]\nlatent = 3\n'
                      "[train]\nbatch_size = 8\n[eval]\nnll_samples = 2\nmax_examples = 4\n")
    out, data = tmp_path / "run", str(tmp_path / "data")
    r = run_cli("train", str(recipe), "--steps", "2", "--out", str(out), "--threads", "1", "-q", "--data-dir", data)
    assert r.returncode == 0, r.stderr
    r = run_cli("evaluate", str(out), "--metrics", "mig", "--backend", "torch", "--samples", "24", "--json", "--data-dir", data)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["metrics"]["mig"]["protocol"]["data"] == "dsprites:val, the first 24 of 24 examples"
    r = run_cli("evaluate", str(out), "--metrics", "mig", "--backend", "torch", "--samples", "24",
                env={"VAEZOO_DATA": str(tmp_path / "empty")})
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0 and "never downloaded" in r.stderr, r.stderr
    r = run_cli("evaluate", str(out), "--metrics", "mig", "--data-dir", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "is not a folder" in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr
    r = run_cli("sample", str(out), "-n", "2", "--data-dir", data, "-o", str(tmp_path / "s.png"))
    assert r.returncode == 2 and "--data-dir is where --region reads" in r.stderr and not (tmp_path / "s.png").exists()
