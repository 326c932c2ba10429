"""VAE-GAN (Larsen et al. 2016): the gradient routing (no GAN gradient into the encoder, gamma on the
decoder's L_rec), the balancing's skipped discriminator step, resume with the discriminator, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import run_cli, tiny_recipe
from vaezoo.data import load_dataset
from vaezoo.errors import UsageError
from vaezoo.models import build_model
from vaezoo.store.checkpoint import make_config
from vaezoo.train.objectives import build_objective
from vaezoo.train.trainer import STATE, train, train_step


@pytest.fixture(scope="module")
def batch():
    ds = load_dataset("mnist5k", "train")
    return torch.from_numpy(ds.x[:16]).float() / 255.0


SMALL_D = {"disc_channels": [8, 16], "disc_hidden": 32}   # a small discriminator keeps the tests fast


def _build(**objective):
    recipe = tiny_recipe("vaegan-mnist5k", objective={**SMALL_D, **objective})
    torch.manual_seed(0)
    return recipe, build_model(make_config(recipe)), build_objective(recipe, 4500)


def _grads(loss, params):
    return torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)


def test_encoder_gets_kl_and_rec_only_decoder_gets_gamma_rec_and_gan(batch):
    """One backward of the objective's loss gives the encoder the gradient of KL + L_rec and the decoder
    that of gamma * L_rec + L_GAN, each recomputed here from the same draws with the terms separated."""
    recipe, model, obj = _build(gamma=0.3, balance=False)
    enc, dec = list(model.encoder.parameters()), list(model.decoder.parameters())
    torch.manual_seed(1)
    loss, stats = obj(model, [batch], 0)
    g_enc, g_dec = _grads(loss, enc), _grads(loss, dec)
    assert all(p.grad is None for p in obj.disc.parameters())   # the model step never trains D

    torch.manual_seed(1)   # the same draws: z ~ q(z|x), then z_p ~ p(z)
    fwd = model(batch)
    z_p = torch.randn_like(fwd.z)
    mean = model.likelihood.mean
    f_real = obj.disc(batch, obj.layer)[1].detach()
    rec = 0.5 * (obj.disc(mean(fwd.out), obj.layer)[1] - f_real).pow(2).sum(1).mean() / obj.var
    logits = obj.disc(mean(model.decoder(torch.cat([fwd.z.detach(), z_p]))), obj.layer)[0]
    gan = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    assert torch.allclose(stats["rec"], rec) and torch.allclose(stats["gan"], gan)
    want_enc = _grads(fwd.kl.mean() + rec, enc)
    want_dec = [a + b for a, b in zip(_grads(0.3 * rec, dec), _grads(gan, dec))]
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(g_enc, want_enc))
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(g_dec, want_dec))
    # and the GAN term alone would move the encoder: the routing is what keeps it out
    leak = _grads(obj.disc(mean(fwd.out), obj.layer)[0].sum(), enc)
    assert any(float(g.abs().max()) > 0 for g in leak)


def test_balancing_skips_the_discriminator_step(batch):
    """equilibrium 10, margin 0: D's cost (about ln 2) is below 10, so D's step is skipped (its weights and
    Adam untouched) while the decoder's GAN term stays on; with balance off D is stepped."""
    for balance, stepped in ((True, False), (False, True)):
        recipe, model, obj = _build(balance=balance, equilibrium=10.0, margin=0.0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        aux = {a.name: torch.optim.Adam(a.module.parameters(), lr=a.lr, betas=a.betas) for a in obj.auxiliaries()}
        before = {k: v.clone() for k, v in obj.disc.state_dict().items()}
        stats = train_step(model, obj, opt, aux, [batch], 0, recipe["train"], model)
        same = all(torch.equal(before[k], v) for k, v in obj.disc.state_dict().items())
        assert same != stepped and bool(aux["disc"].state) == stepped and ("disc" in stats) == stepped
        assert float(stats["train_dis"]) == float(stepped) and float(stats["train_dec"]) == 1.0


def test_resume_gives_bitwise_the_same_weights_discriminator_and_optimisers(tmp_path):
    """Stopped after step 3 and resumed: the training state at the last step (VAE weights, discriminator,
    both optimisers, RNG) and the final checkpoint equal an uninterrupted run's, bit for bit."""
    recipe = tiny_recipe("vaegan-mnist5k", objective=SMALL_D)
    run = dict(device="cpu", progress=False, threads=1)
    train(recipe, tmp_path / "full", stop_after=6, **run)
    assert train(recipe, tmp_path / "split", stop_after=3, **run) == {"stopped_at": 3}
    train(recipe, tmp_path / "split", resume=True, stop_after=6, **run)
    a, b = load_file(str(tmp_path / "full" / STATE)), load_file(str(tmp_path / "split" / STATE))
    assert any(k.startswith("objective.disc.") for k in a) and any(k.startswith("aux_opt_disc.") for k in a)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    full = train(recipe, tmp_path / "full", resume=True, **run)
    split = train(recipe, tmp_path / "split", resume=True, **run)
    wa, wb = load_file(str(tmp_path / "full" / "model.safetensors")), load_file(str(tmp_path / "split" / "model.safetensors"))
    assert not any(k.startswith("disc") or "disc." in k for k in wa)   # D is training state, not the model
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert full["train"]["final_stats"] == split["train"]["final_stats"] and full["validation"] == split["validation"]


def _recipe_file(path, objective: str) -> str:
    """A small vaegan-mnist5k as a user's recipe file (tiny nets, 16 validation digits)."""
    path.write_text('family = "vaegan"\ndataset = "mnist5k"\n[model]\nhidden = [32]\nlatent = 4\n'
                    '[eval]\nmax_examples = 16\nnll_samples = 4\n'
                    f'[objective]\ndisc_channels = [8, 16]\ndisc_hidden = 32\n{objective}\n')
    return str(path)


def test_cli_train_export_with_parity_and_onnx_samples(tmp_path):
    out = tmp_path / "vg"
    r = run_cli("train", _recipe_file(tmp_path / "small-vaegan.toml", ""), "--steps", "3", "--batch-size", "16",
                "--out", str(out), "--device", "cpu", "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert "d_cost=" in r.stderr
    stats = json.loads((out / "metrics.json").read_text())["train"]["final_stats"]
    assert {"loss", "kl", "rec", "gan", "d_cost", "train_dis", "train_dec"} <= set(stats)
    r = run_cli("export", str(out), "--check", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] and set(report["parts"]) == {"encoder", "decoder", "prior_forward", "prior_inverse"}
    r = run_cli("card", str(out))   # the card says what the adversarial training means for its NLL
    assert r.returncode == 0 and "trained on a discriminator's features" in r.stdout, r.stderr
    npy = tmp_path / "s.npy"
    r = run_cli("sample", str(out), "-n", "5", "--seed", "0", "--backend", "onnx", "-o", str(npy))
    assert r.returncode == 0, r.stderr
    s = np.load(npy)
    assert s.shape == (5, 1, 28, 28) and np.isfinite(s).all() and 0 <= s.min() and s.max() <= 1 and s.std() > 0


BAD = {
    "gamma0": ({"gamma": 0.0}, "objective.gamma"),
    "gamma-neg": ({"gamma": -1.0}, "objective.gamma"),
    "layer0": ({"feature_layer": 0}, "objective.feature_layer"),
    "layer-high": ({"feature_layer": 4}, "objective.feature_layer"),   # 2 convs + the fully connected layer
    "sigma": ({"feature_sigma": 0.0}, "objective.feature_sigma"),
    "sigma-neg": ({"feature_sigma": -0.1}, "objective.feature_sigma"),
    "margin": ({"margin": -0.1}, "objective.margin"),
    "disc-too-deep": ({"disc_channels": [8, 8, 8]}, "objective.disc_channels"),   # 28 is not divisible by 8
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_setting_is_refused_in_process(name):
    setting, word = BAD[name]
    with pytest.raises(UsageError, match=word.replace(".", r"\.")):
        build_objective(tiny_recipe("vaegan-mnist5k", objective=setting), 4500)


def test_cli_refuses_a_bad_setting_in_one_line_before_writing(tmp_path):
    out = tmp_path / "out"
    r = run_cli("train", _recipe_file(tmp_path / "bad.toml", "feature_layer = 7"), "--out", str(out), "--device", "cpu", "-q")
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "objective.feature_layer" in lines[0], r.stderr
    assert not out.exists()
