"""The binarised-MNIST protocol (vaezoo.data.binarize, the `bin-` variant): dynamic binarisation of the trainer's
batches, one fixed binarisation of the held-out digits shared by training's metrics.json and `vaezoo evaluate`,
the cards saying which protocol their numbers use, and the recipes it cannot apply to refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import run_cli, tiny_recipe, train_tiny
from vaezoo.data import binarize, load_dataset
from vaezoo.errors import UsageError


def test_the_fixed_binarisation_is_a_seeded_bernoulli_draw_of_the_grey_levels():
    x = load_dataset("mnist5k", "val").float_batch(slice(0, 200))
    a, b = binarize.fixed(x), binarize.fixed(x)
    assert np.array_equal(a, b) and set(np.unique(a)) == {0.0, 1.0} and a.dtype == np.float32
    assert abs(a.mean() - x.mean()) < 0.005                      # each pixel on with probability its grey level
    assert not a[x == 0].any() and a[x == 1].all()
    assert not np.array_equal(a, binarize.fixed(x, seed=1))


def test_dynamic_binarisation_draws_each_batch_afresh():
    from vaezoo.train.trainer import binarized

    x = torch.from_numpy(load_dataset("mnist5k", "train").float_batch(slice(0, 64)))
    grey = tiny_recipe("vae-mnist5k")
    assert binarized([x], grey)[0] is x
    recipe = tiny_recipe("bin-vae-mnist5k")
    assert recipe["data"]["binarize"] == "dynamic"
    from vaezoo.recipes import resolve

    assert resolve("bin-vae-mnist5k")["eval"]["nll_samples"] == 5000   # the IWAE paper's K
    first, second = binarized([x], recipe)[0], binarized([x], recipe)[0]
    assert set(first.unique().tolist()) == {0.0, 1.0} and not torch.equal(first, second)
    assert abs(float(first.mean() - x.mean())) < 0.01


def test_training_and_evaluate_score_the_same_binarised_digits(tmp_path):
    """The trainer's NLL and evaluate's (ONNX, other noise) agree, and both are far from the same model's NLL on
    the grey digits: evaluate binarised the validation digits as training did. The card says so."""
    from vaezoo.models.loading import load_model

    folder = train_tiny("bin-vae-mnist5k", tmp_path / "bin", train={"steps": 150, "batch_size": 64},
                        eval={"nll_samples": 50, "max_examples": 100})
    assert run_cli("export", str(folder)).returncode == 0
    recorded = json.loads((folder / "metrics.json").read_text())["validation"]
    r = run_cli("evaluate", str(folder), "--metrics", "nll", "--backend", "onnx", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)["metrics"]["nll"]
    assert "binarised once" in res["protocol"]["data"] and res["protocol"]["K"] == 50
    assert res["value"] == pytest.approx(recorded["nll"], abs=2.0), (res["value"], recorded["nll"])
    # the Bernoulli log-likelihood is linear in x, so grey and binarised digits give close means: compare exactly.
    model, _ = load_model(folder)
    grey = load_dataset("mnist5k", "val").float_batch(slice(0, 100))
    nll_of = lambda x: model.validation_metrics(torch.from_numpy(x), None, 50)["nll"]   # noqa: E731  (the trainer's seed)
    assert nll_of(binarize.fixed(grey)) == pytest.approx(recorded["nll"], abs=1e-4)
    assert abs(nll_of(grey) - recorded["nll"]) > 1e-3
    from vaezoo.evaluation import suite
    from vaezoo.evaluation.likelihood import importance_nll
    from vaezoo.runtime.pipeline import load_pipeline

    pipe = load_pipeline(str(folder), "onnx", "cpu")
    got = suite.run(pipe, ["nll"], suite.Protocol(samples=10, seed=3, k=1, pool=1, classifier=""))["nll"]["value"]
    assert got == pytest.approx(float(importance_nll(pipe, binarize.fixed(grey), 50, 3).mean()), abs=1e-9)
    assert abs(got - float(importance_nll(pipe, grey, 50, 3).mean())) > 1e-3
    card = run_cli("card", str(folder)).stdout
    assert "the binarised-MNIST protocol" in card and "grey levels in [0, 1], not on binarised" not in card


@pytest.mark.parametrize("model_id, over, words", [
    ("cvae-label-mnist5k", {"data": {"binarize": "dynamic"}}, "trains on batches it draws itself"),
    ("m2-mnist5k", {"data": {"binarize": "dynamic"}}, "trains on batches it draws itself"),
    ("vae-mnist5k", {"data": {"binarize": "dynamic"}, "model": {"likelihood": "gaussian", "sigma": 0.1}}, "need a Bernoulli likelihood"),
    ("vae-mnist5k", {"data": {"binarize": "static"}}, "data.binarize must be one of none, dynamic"),
])
def test_recipes_it_cannot_apply_to_are_refused_before_writing(tmp_path, model_id, over, words):
    from vaezoo.train.trainer import train

    with pytest.raises(UsageError, match=words):
        train(tiny_recipe(model_id, **over), tmp_path / "out", device="cpu", progress=False)
    assert not (tmp_path / "out").exists()
