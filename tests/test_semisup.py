"""Semi-supervised models: M2's bounds, balanced labels, tiny training runs, parts and generation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from conftest import run_cli, tiny_recipe, train_tiny

M1_TINY = {"model": {"classifier_hidden": [16], "m1": {"hidden": [32], "latent": 6}}}
SMALL = {"model": {"classifier_hidden": [16]}}


def test_balanced_labels_fixed_by_seed():
    from vaezoo.data import load_dataset
    from vaezoo.train.objectives.semisup import balanced_labels

    y = load_dataset("mnist5k", "train").y
    for n in (100, 600, 1000, 3000):
        idx = balanced_labels(y, n, seed=0)
        assert len(idx) == n == len(set(idx))
        assert np.all(np.bincount(y[idx], minlength=10) == n // 10)
    assert np.array_equal(balanced_labels(y, 100, 0), balanced_labels(y, 100, 0))
    assert not np.array_equal(balanced_labels(y, 100, 0), balanced_labels(y, 100, 1))
    five = balanced_labels(y, 100, 0, classes=[0, 1, 2, 3, 4])
    assert set(y[five]) == {0, 1, 2, 3, 4} and np.all(np.bincount(y[five])[:5] == 20)


def _m2(model_id="m2-mnist5k", **extra):
    from vaezoo.store.checkpoint import make_config
    from vaezoo.models import build_model

    rec = tiny_recipe(model_id, **extra)
    return rec, build_model(make_config(rec))


def test_unlabelled_bound_enumerates_y():
    """U(x) = sum_y q(y|x) L(x,y) + H(q): with a certain classifier it is L(x, that class)."""
    _, model = _m2()
    core = model.core
    x = torch.rand(5, 1, 28, 28)
    logits = torch.full((5, 10), -1e4)
    logits[:, 3] = 1e4
    torch.manual_seed(0)
    u, _ = core.unlabelled_bound(x, logits)
    # with the noise turned off (logvar -> -inf), L(x, y) is deterministic and comparable
    core.encoder.head.bias.data[core.latent:] = -60.0
    core.encoder.head.weight.data[core.latent:] = 0.0
    u, _ = core.unlabelled_bound(x, logits)
    lxy, _, _ = core.labelled_bound(x, torch.full((5,), 3))
    assert torch.allclose(u, lxy, atol=1e-3)
    # a uniform classifier averages the K bounds and adds log K
    u2, _ = core.unlabelled_bound(x, torch.zeros(5, 10))
    all_l = torch.stack([core.labelled_bound(x, torch.full((5,), c))[0] for c in range(10)], 1)
    assert torch.allclose(u2, all_l.mean(1) + math.log(10), atol=1e-3)


def test_m2_objective_has_labels_in_every_batch_and_alpha():
    from vaezoo.data import load_dataset
    from vaezoo.train.objectives import build_objective

    rec, model = _m2("m2-100-mnist5k")
    ds = load_dataset("mnist5k", "train")
    obj = build_objective(rec, len(ds))
    obj.attach(ds, "cpu")
    assert len(obj.labelled) == 100
    assert obj.alpha_eff() == pytest.approx(0.1 * 4500 / 100)
    xl, yl = obj.labelled.batch(7, 100)
    xl2, yl2 = obj.labelled.batch(7, 100)
    assert torch.equal(yl, yl2) and len(set(yl.tolist())) == 10
    loss, stats = obj(model, [torch.from_numpy(ds.float_batch(slice(0, 16)))], 0)
    assert torch.isfinite(loss) and "ce" in stats and "kl" in stats
    loss.backward()
    first = next(model.core.classifier.parameters())   # the conv q(y|x)'s first layer (mnist5k recipe)
    assert first.grad is not None and first.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def tiny_m2(tmp_path_factory):
    return train_tiny("m2-100-mnist5k", tmp_path_factory.mktemp("ck") / "m2-100-mnist5k", **SMALL)


def test_m2_trains_and_records_labels(tiny_m2):
    metrics = json.loads((tiny_m2 / "metrics.json").read_text())
    assert metrics["labels"]["labelled"] == 100 and metrics["labels"]["per_class"] == [10] * 10
    val = metrics["validation"]
    assert 0 <= val["error_rate"] <= 1 and val["cross_entropy"] > 0 and "protocol" in val
    cfg = json.loads((tiny_m2 / "config.json").read_text())
    assert cfg["conditional"] is True and cfg["label_budget"] == 100


def test_m2_parts_plain_tensors(tiny_m2):
    from vaezoo.models.loading import load_model

    model, _ = load_model(tiny_m2)
    parts = model.parts()
    x, y = torch.rand(3, 1, 28, 28), torch.eye(10)[:3]
    mu, logvar = parts["encoder"].module(x, y)
    assert mu.shape == logvar.shape == (3, 4)
    assert parts["decoder"].module(mu, y).shape == (3, 1, 28, 28)
    assert parts["classifier"].module(x).shape == (3, 10)


def test_pipeline_label_sampling_and_analogies(tiny_m2):
    from vaezoo.runtime.torch_backend import TorchBackend
    from vaezoo.store.checkpoint import read_config
    from vaezoo.errors import UsageError
    from vaezoo.runtime.pipeline import Pipeline

    pipe = Pipeline(read_config(tiny_m2), TorchBackend(tiny_m2), tiny_m2)
    s3 = pipe.sample(4, seed=1, label=3)
    s5 = pipe.sample(4, seed=1, label="5")
    assert s3.shape == (4, 1, 28, 28) and not np.allclose(s3, s5)
    assert np.allclose(s3, pipe.sample(4, seed=1, label=3))
    grid = pipe.analogies(rows=2, seed=0)
    assert grid.shape == (20, 1, 28, 28)
    assert np.allclose(grid[3], pipe.decode(pipe.noise(2, 0)[:1], [3])[0])
    with pytest.raises(UsageError):
        pipe.sample(2, label=12)
    probs = pipe.classify(np.random.rand(3, 1, 28, 28).astype(np.float32))
    assert probs.shape == (3, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_cli_sample_label_and_analogies(tiny_m2, tmp_path):
    r = run_cli("sample", str(tiny_m2), "--label", "3", "-n", "4", "-o", str(tmp_path / "s.npy"), "--backend", "torch")
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "s.npy").shape == (4, 1, 28, 28)
    r = run_cli("analogies", str(tiny_m2), "--rows", "3", "-o", str(tmp_path / "a.png"), "--backend", "torch")
    assert r.returncode == 0, r.stderr
    from PIL import Image

    assert Image.open(tmp_path / "a.png").size[0] > Image.open(tmp_path / "a.png").size[1]


@pytest.mark.parametrize("model_id,extra", [("m1-100-mnist5k", M1_TINY), ("m1m2-100-mnist5k", M1_TINY),
                                             ("untapped-mnist5k", SMALL)])
def test_other_models_train_and_export_parts(model_id, extra, tmp_path):
    from vaezoo.models.loading import load_model

    out = train_tiny(model_id, tmp_path / model_id, **extra)
    metrics = json.loads((out / "metrics.json").read_text())
    assert "error_rate" in metrics["validation"] and metrics["labels"]["labelled"] > 0
    model, cfg = load_model(out)
    parts = model.parts()
    x = torch.rand(2, 1, 28, 28)
    assert parts["classifier"].module(x).shape == (2, 10)
    if cfg["conditional"]:
        mu, _ = parts["encoder"].module(x, torch.eye(10)[:2])
        assert parts["decoder"].module(mu, torch.eye(10)[:2]).shape == (2, 1, 28, 28)
    if model_id.startswith("m1m2"):
        assert parts["m1_encoder"].module(x)[0].shape == (2, 6)


def test_untapped_relaxed_draw_is_sharp_and_differentiable():
    """inverse_sample = "relaxed" (the mnist5k recipe's): x~ is a random draw pushed towards 0/1 that
    gradients pass through; "mean" (the objective's default) is the decoder's mean."""
    from vaezoo.recipes import resolve
    from vaezoo.train.objectives.semisup import UntappedObjective

    logits = torch.zeros(64, 784, requires_grad=True)
    mean = UntappedObjective(resolve("untapped-mnist"), 100).draw(logits)
    assert torch.equal(mean, torch.full_like(mean, 0.5))
    relaxed = UntappedObjective(resolve("untapped-mnist5k"), 100)
    assert relaxed.cfg["inverse_sample"] == "relaxed"
    torch.manual_seed(0)
    x = relaxed.draw(logits)
    sharp = ((x < 0.1) | (x > 0.9)).float().mean()
    assert 0.4 < float(sharp) < 0.6          # temperature 0.5 at logit 0: P(|noise| > ln 3) = 1/2
    assert not torch.equal(x, relaxed.draw(logits))
    x.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_m1_two_stages_freeze_the_vae():
    """Stage 2 of M1 trains only the head on latent means; the encoder gets no gradient."""
    from vaezoo.data import load_dataset
    from vaezoo.train.objectives import build_objective

    rec, model = _m2("m1-100-mnist5k", **M1_TINY)
    ds = load_dataset("mnist5k", "train")
    obj = build_objective(rec, len(ds))
    obj.attach(ds, "cpu")
    x = torch.from_numpy(ds.float_batch(slice(0, 8)))
    loss, st = obj(model, [x], obj.vae_steps())
    loss.backward()
    assert float(st["stage"]) == 2.0
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.head.net[0].weight.grad is not None


def test_recipes_exist_for_budgets():
    from vaezoo.recipes import list_ids, resolve

    ids = set(list_ids())
    for fam in ("m2", "m1", "m1m2"):
        for n in (100, 600, 1000, 3000):
            for ds in ("mnist", "mnist5k"):
                rec = resolve(f"{fam}-{n}-{ds}")
                assert rec["data"]["labels"] == n
    assert "m1m2-svhn" in ids and "untapped-mnist5k" in ids and "m2-mnist5k" in ids


def test_m1m2_svhn_trains_on_real_format_files_and_exports(tmp_path):
    """M1+M2 on SVHN (conv M1 on 3x32x32 colour digits): trained on .mat files in SVHN's published layout."""
    import data_formats as fmt

    from vaezoo.export import export_checkpoint
    from vaezoo.train.trainer import train

    fmt.write_svhn(tmp_path / "data" / "svhn", np.random.default_rng(3), n_train=80)
    rec = tiny_recipe("m1m2-svhn", data={"labels": 10}, train={"batch_size": 8},
                      model={"classifier_hidden": [16], "m1": {"hidden": [32], "latent": 6}})
    assert rec["model"]["backbone"] == "conv32" and rec["model"]["likelihood"] == "gaussian"
    out = tmp_path / "m1m2-svhn"
    train(rec, out, device="cpu", progress=False, data_dir=str(tmp_path / "data"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labels"]["labelled"] == 10 and 0.0 <= metrics["validation"]["error_rate"] <= 1.0
    report = export_checkpoint(out, check=True, exporter="torchscript", log=None)  # the fast exporter; dynamo is swept in test_export
    assert report["parts"]["classifier"]["inputs"][0] == ["x", ["batch", 3, 32, 32]]
    assert max(report["parts"]["decoder"]["parity"].values()) <= 1e-4


def test_per_dataset_family_settings_and_random_shift():
    """m2's mnist5k entry (conv q(y|x), shifts) applies to every mnist5k budget and to no other dataset."""
    from vaezoo.recipes import resolve
    from vaezoo.train.objectives.semisup import random_shift

    for mid in ("m2-mnist5k", "m2-100-mnist5k"):
        rec = resolve(mid)
        assert rec["model"]["classifier_backbone"] == "conv" and rec["objective"]["shift"] == 2
    paper = resolve("m2-mnist")
    assert paper["model"]["classifier_backbone"] == "mlp" and paper["objective"]["shift"] == 0
    # a conv q(y|x) named without its channels gets the default stack, written into the recipe
    assert resolve("m2-mnist", {"model": {"classifier_backbone": "conv"}})["model"]["classifier_channels"] == [32, 64]
    x = torch.zeros(64, 1, 9, 9)
    x[:, 0, 4, 4] = 1.0
    torch.manual_seed(0)
    moved = random_shift(x, 2)
    pos = moved[:, 0].flatten(1).argmax(1)
    rows, cols = pos // 9, pos % 9
    assert moved.sum() == 64 and rows.min() >= 2 and rows.max() <= 6 and cols.min() >= 2 and cols.max() <= 6
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10   # offsets differ per image


def _recipe_file(path, **tables) -> str:
    lines = ['family = "m2"', 'dataset = "mnist5k"']
    base = {"train": {"steps": 4, "batch_size": 16}, "eval": {"nll_samples": 0, "max_examples": 16},
            "model": {"classifier_channels": [4, 8], "classifier_hidden": [16]}}
    for name, table in {**base, **{k: {**base.get(k, {}), **v} for k, v in tables.items()}}.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_cli_recipe_options_shift_cosine_and_bad_recipes(tmp_path):
    """A user's recipe file with the new options trains through the CLI and its card says so; recipes
    that cannot run fail in one line before anything is written, and --force keeps the old model then."""
    good = _recipe_file(tmp_path / "mine.toml", train={"lr_schedule": "cosine"}, objective={"shift": 1})
    out = tmp_path / "run"
    r = run_cli("train", good, "--out", str(out), "--device", "cpu", "-q")
    assert r.returncode == 0, r.stderr
    rec = json.loads((out / "config.json").read_text())["recipe"]
    assert rec["train"]["lr_schedule"] == "cosine" and rec["objective"]["shift"] == 1
    assert rec["model"]["classifier_backbone"] == "conv"
    card = run_cli("card", str(out))
    assert card.returncode == 0 and "cosine schedule" in card.stdout and "up to 1 pixels" in card.stdout
    # Untapped's inverted-bound options from a user's file: trained through the CLI, recorded, on the card
    unt = tmp_path / "unt.toml"
    _recipe_file(unt, objective={"inverse_sample": "relaxed", "inverse_temperature": 0.3, "inverse_entropy": False})
    unt.write_text(unt.read_text().replace('family = "m2"', 'family = "untapped"'))
    r = run_cli("train", str(unt), "--out", str(tmp_path / "unt-run"), "--device", "cpu", "-q")
    assert r.returncode == 0, r.stderr
    obj = json.loads((tmp_path / "unt-run" / "config.json").read_text())["recipe"]["objective"]
    assert (obj["inverse_sample"], obj["inverse_temperature"], obj["inverse_entropy"]) == ("relaxed", 0.3, False)
    card = run_cli("card", str(tmp_path / "unt-run"))
    assert card.returncode == 0 and "inverse_sample = relaxed" in card.stdout, card.stdout
    before = (out / "model.safetensors").read_bytes()
    bad = {"sched": ({"train": {"lr_schedule": "step"}}, "lr_schedule"),
           "cls": ({"model": {"classifier_backbone": "resnet"}}, "classifier_backbone"),
           "prior": ({"objective": {"inverse_prior": "data"}}, "inverse_prior"),
           "draw": ({"objective": {"inverse_sample": "binary"}}, "inverse_sample")}
    for name, (tables, word) in bad.items():
        path = _recipe_file(tmp_path / f"bad-{name}.toml", **tables)
        if name in ("prior", "draw"):   # Untapped's settings
            text = (tmp_path / f"bad-{name}.toml").read_text().replace('family = "m2"', 'family = "untapped"')
            (tmp_path / f"bad-{name}.toml").write_text(text)
        fresh = run_cli("train", path, "--out", str(tmp_path / f"out-{name}"), "--device", "cpu", "-q")
        assert fresh.returncode == 2 and word in fresh.stderr and len(fresh.stderr.strip().splitlines()) == 1, fresh.stderr
        assert not (tmp_path / f"out-{name}").exists()
        forced = run_cli("train", path, "--out", str(out), "--device", "cpu", "-q", "--force")
        assert forced.returncode == 2 and (out / "model.safetensors").read_bytes() == before
