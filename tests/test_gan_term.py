"""GAN terms on VAEs' samples: CVAE+CGAN and the semi-supervised VAE with a GAN (issue #13), DRAW+GAN (issue #14).
The GAN term reaches the decoder only, the discriminator's K + 1 classes and its unlabelled term, training
through the CLI with export parity and ONNX samples, and one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import run_cli, tiny_recipe
from vaezoo.errors import UsageError
from vaezoo.models import build_model
from vaezoo.models.semisup import onehot
from vaezoo.store.checkpoint import make_config
from vaezoo.train.objectives import build_objective

SMALL_D = {"disc_channels": [8, 16], "disc_hidden": 32}
SMALL_DRAW = {"time_steps": 3, "latent": 4, "enc_hidden": 16, "dec_hidden": 16}


def _build(model_id: str, **objective):
    recipe = tiny_recipe(model_id, objective={**SMALL_D, **objective}, **({"model": SMALL_DRAW} if "draw" in model_id else {}))
    torch.manual_seed(0)
    model = build_model(make_config(recipe))
    obj = build_objective(recipe, 4500)
    from vaezoo.data import load_dataset

    obj.attach(load_dataset("mnist5k", "train"), torch.device("cpu"))
    return model, obj


def _grads(loss, params):
    return [torch.zeros_like(p) if g is None else g for p, g in
            zip(params, torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True))]


@pytest.mark.parametrize("model_id", ["cvae-cgan-mnist5k", "m2-cgan-mnist5k", "draw-gan-mnist5k"])
def test_the_gan_term_moves_the_decoder_only(model_id):
    """The same draws with gan_weight 2 and 0: the encoder's (and q(y|x)'s) gradients are equal, the decoder's
    differ by exactly 2 x the gradient of -log D_y(G(z, y)) recomputed here from the same z and y; the model
    step leaves no gradient in the discriminator."""
    losses, grads = {}, {}
    for w in (2.0, 0.0):
        model, obj = _build(model_id, gan_weight=w)
        others, dec_params = _split(model)
        torch.manual_seed(1)
        loss, stats = obj(model, [torch.from_numpy(obj_batch(obj))], 0)
        assert all(p.grad is None for p in obj.disc.parameters())
        losses[w], grads[w] = loss, (_grads(loss, others), _grads(loss, dec_params))
        if w:
            gan_stat, state = stats["gan"], torch.get_rng_state()
    # redo the GAN term's draws: after the bound's own draws, z ~ p(z) then y ~ U{0..K-1}
    model, obj = _build(model_id, gan_weight=2.0)
    dec = model.parts()["decoder"].module
    torch.manual_seed(1)
    obj(model, [torch.from_numpy(obj_batch(obj))], 0)
    assert torch.equal(torch.get_rng_state(), state)
    n = 16
    torch.manual_seed(1)
    _bound_draws(model, obj, n)
    if obj.k:
        z = model.prior.inverse(torch.randn(n, model.latent))
        y = torch.randint(obj.k, (n,))
        fake = model.likelihood.mean(dec(z, onehot(y, obj.k)))
    else:   # DRAW: T codes per sample, one "real" class (index 0), "fake" is 1
        z, y = torch.randn(n, SMALL_DRAW["time_steps"], SMALL_DRAW["latent"]), torch.zeros(n, dtype=torch.long)
        fake = model.likelihood.mean(dec(z))
        assert obj.disc(fake)[0].shape == (n, 2)
    gan = F.cross_entropy(obj.disc(fake)[0], y)
    assert torch.allclose(gan, gan_stat)
    want = _grads(2.0 * gan, _split(model)[1])
    (enc2, dec2), (enc0, dec0) = grads[2.0], grads[0.0]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(enc2, enc0))
    assert all(torch.allclose(a - b, c, atol=1e-5, rtol=1e-4) for a, b, c in zip(dec2, dec0, want))
    assert any(float(c.abs().max()) > 0 for c in want)


def _split(model):
    """(the parameters outside the decoder, the decoder's): DRAW's decoder part wraps the whole model, so its
    generating networks are named (the decoder LSTM and the write head)."""
    if hasattr(model, "write_out"):
        is_dec = lambda n: n.startswith(("dec.", "write_out.", "write_bank."))   # noqa: E731
    else:
        dec = model.parts()["decoder"].module
        ids = {id(p) for p in dec.parameters()}
        is_dec = lambda n: id(dict(model.named_parameters())[n]) in ids   # noqa: E731
    named = list(model.named_parameters())
    return [p for n, p in named if not is_dec(n)], [p for n, p in named if is_dec(n)]


def obj_batch(obj) -> np.ndarray:
    """The trainer's batch for the step (the CVAE's objective draws its own labelled batch instead)."""
    from vaezoo.data import load_dataset

    return load_dataset("mnist5k", "train").float_batch(slice(0, 16))


def _bound_draws(model, obj, n):
    """Consume the global RNG as the bound does before the GAN term (same calls, results unused)."""
    x = torch.from_numpy(obj_batch(obj))
    if hasattr(obj, "labelled_batch"):
        xl, yl = obj.labelled_batch(0)
        model(xl, model.label_condition(yl))
    elif hasattr(obj, "m2_step"):
        obj.m2_step(model, x, 0)
    else:
        model(x)


def test_discriminator_cost_has_k_real_classes_and_a_fake_one():
    """Its cost is -log D_y(real) - log D_K(fake) - log (1 - D_K(unlabelled)), computed here from softmax."""
    model, obj = _build("m2-cgan-mnist5k")
    torch.manual_seed(3)
    x = torch.rand(6, 1, 28, 28)
    y = torch.tensor([0, 1, 2, 3, 4, 9])
    u, fake = torch.rand(5, 1, 28, 28), torch.rand(7, 1, 28, 28)
    obj._kept = (x, y, u, fake)
    assert obj.disc(x)[0].shape == (6, 11)
    p = lambda t: F.softmax(obj.disc(t)[0], 1)   # noqa: E731
    want = (-p(x)[torch.arange(6), y].log().mean() - p(fake)[:, 10].log().mean() - (1 - p(u)[:, 10]).log().mean())
    assert torch.allclose(obj.disc_loss(), want, atol=1e-5)
    assert obj.disc_loss() is None   # consumed: no second step on the same tensors


def _recipe_file(path, family: str, extra: str = "") -> str:
    draw = "time_steps = 3\nenc_hidden = 16\ndec_hidden = 16\n" if "draw" in family else ""
    path.write_text(f'family = "{family}"\ndataset = "mnist5k"\n[model]\nhidden = [32]\nlatent = 4\n{draw}'
                    '[eval]\nmax_examples = 16\nnll_samples = 4\n'
                    f'[objective]\ndisc_channels = [8, 16]\ndisc_hidden = 32\n{extra}\n')
    return str(path)


@pytest.mark.parametrize("family", ["cvae-cgan", "m2-cgan", "draw-gan"])
def test_cli_train_export_with_parity_and_onnx_samples(tmp_path, family):
    out = tmp_path / family
    r = run_cli("train", _recipe_file(tmp_path / f"{family}.toml", family), "--steps", "3", "--batch-size", "16",
                "--out", str(out), "--device", "cpu", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "fooled=" in r.stderr
    stats = json.loads((out / "metrics.json").read_text())["train"]["final_stats"]
    assert {"loss", "kl", "gan", "fooled"} <= set(stats)
    r = run_cli("export", str(out), "--check", "--json", *(["--exporter", "torchscript"] if family == "draw-gan" else []))
    assert r.returncode == 0, r.stderr
    parts = set(json.loads(r.stdout)["parts"])
    assert {"encoder", "decoder"} <= parts and ("classifier" in parts) == (family == "m2-cgan")
    assert not any("disc" in p for p in parts)
    r = run_cli("card", str(out))
    assert r.returncode == 0 and "plus a GAN term" in r.stdout, r.stderr
    npy, conditional = tmp_path / "s.npy", family != "draw-gan"
    r = run_cli("sample", str(out), "-n", "4", *(["--label", "7"] if conditional else []), "--seed", "0", "--backend", "onnx", "-o", str(npy))
    assert r.returncode == 0, r.stderr
    s = np.load(npy)
    assert s.shape == (4, 1, 28, 28) and np.isfinite(s).all() and s.std() > 0
    r = run_cli("sample", str(out), "-n", "4", "--label", "10" if conditional else "1", "-o", str(tmp_path / "bad.png"))
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad.png").exists()


BAD = {
    "weight": ("cvae-cgan-mnist5k", {"objective": {"gan_weight": -1.0}}, "objective.gan_weight"),
    "too-deep": ("m2-cgan-mnist5k", {"objective": {"disc_channels": [8, 8, 8]}}, "objective.disc_channels"),
    "half-image": ("cvae-cgan-mnist5k", {"model": {"condition": "half-image"}}, "model.condition"),
    "draw-weight": ("draw-gan-mnist5k", {"objective": {"gan_weight": -0.5}}, "objective.gan_weight"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_settings_are_refused(name):
    model_id, over, word = BAD[name]
    with pytest.raises(UsageError, match=word.replace(".", r"\.")):
        build_objective(tiny_recipe(model_id, **over), 4500)


def test_cli_refuses_a_bad_setting_in_one_line_before_writing(tmp_path):
    out = tmp_path / "out"
    r = run_cli("train", _recipe_file(tmp_path / "bad.toml", "m2-cgan", "gan_weight = -2"), "--out", str(out), "--device", "cpu", "-q")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and "objective.gan_weight" in lines[0], r.stderr
    assert not out.exists()
