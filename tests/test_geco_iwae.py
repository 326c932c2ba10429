"""The Taming VAEs families: IWAE's k-sample bound, GECO's Lagrange multiplier, GECO+IWAE, the beta = 0.5
baseline, and CIFAR-10 (the seed's second dataset) for the VAE families."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import run_cli, tiny_recipe
from vaezoo.data import load_dataset
from vaezoo.errors import UsageError
from vaezoo.models import build_model
from vaezoo.models.distributions import DiagGaussian
from vaezoo.store.checkpoint import make_config
from vaezoo.train.objectives import build_objective
from vaezoo.train.trainer import STATE, train


@pytest.fixture(scope="module")
def batch():
    ds = load_dataset("mnist5k", "train")
    idx = np.random.default_rng(0).choice(len(ds), 64, replace=False)
    return torch.from_numpy(ds.x[idx]).float() / 255.0


def _build(model_id: str, **extra):
    recipe = tiny_recipe(model_id, **extra)
    torch.manual_seed(0)
    model = build_model(make_config(recipe))
    if recipe["prior"]["kind"] == "flow":  # perturb the flow so it is not the identity
        with torch.no_grad():
            for p in model.prior.parameters():
                p.add_(0.05 * torch.randn_like(p))
    return recipe, model, build_objective(recipe, 4500)


# ---------------------------------------------------------------- IWAE
@pytest.mark.parametrize("model_id", ["iwae-mnist5k", "dp-iwae-mnist5k"])
def test_iwae_with_one_sample_is_the_vae_elbo(model_id, batch):
    """k = 1: the same draw gives exactly the one-sample ELBO log p(x|z) + log p(z) - log q(z|x) of the
    VAE's forward pass; averaged over draws it matches the VAE objective's -ELBO (closed-form or entropy KL)."""
    recipe, model, iwae = _build(model_id, objective={"k": 1})
    vae = build_objective({**recipe, "objective": {"name": "vae"}}, 4500)
    with torch.no_grad():
        torch.manual_seed(7)
        loss, stats = iwae(model, [batch], 0)
        torch.manual_seed(7)
        fwd = model.forward_pass(batch)
        q = DiagGaussian(fwd.mu, fwd.logvar)
        one_sample = -(fwd.log_px + fwd.log_pz - q.log_density(fwd.z)).mean()
        assert torch.allclose(loss, one_sample, rtol=0, atol=1e-4), (float(loss), float(one_sample))
        assert torch.allclose(stats["recon"], -fwd.log_px.mean(), atol=1e-4)
        assert torch.allclose(stats["kl"], fwd.kl.mean(), atol=1e-4)
        # in expectation over the draws: the VAE's -ELBO
        torch.manual_seed(8)
        iw = torch.stack([iwae(model, [batch], 0)[0] for _ in range(200)]).mean()
        torch.manual_seed(8)
        el = torch.stack([vae(model, [batch], 0)[0] for _ in range(200)]).mean()
    # the same seeds give the same draws: only the KL's estimator differs (standard error of the mean
    # difference ~0.003 nats, 0.013 with the flow), against a -ELBO of ~550 nats
    assert abs(float(iw - el)) < 0.1, (float(iw), float(el))


def test_iwae_bound_rises_with_k_on_a_fixed_model(batch):
    """L_1 (the ELBO) <= L_4 <= L_32 on a fixed model, each estimated over many draws with a fixed seed;
    the margins are several standard errors of the estimates."""
    recipe, model, _ = _build("iwae-mnist5k")
    model.eval()
    from vaezoo.train.objectives.taming import iwae_bound

    torch.manual_seed(0)
    means, errs = {}, {}
    with torch.no_grad():
        for k in (1, 4, 32):
            vals = torch.cat([iwae_bound(model.importance_pass(batch, k).log_w) for _ in range(20)])  # 1280 draws of L_k
            means[k], errs[k] = float(vals.mean()), float(vals.std() / math.sqrt(vals.numel()))
    for lo, hi in ((1, 4), (4, 32)):
        assert means[hi] - means[lo] > 3 * (errs[hi] + errs[lo]), (means, errs)


@pytest.mark.parametrize("model_id", ["iwae-mnist5k", "dp-iwae-mnist5k"])
def test_iwae_one_batched_decoder_pass_equals_a_loop_over_k(model_id, batch):
    """The objective decodes the B*k codes in one call; the same noise decoded draw by draw gives the same bound."""
    recipe, model, iwae = _build(model_id, objective={"k": 5})
    calls = []
    hook = model.decoder.register_forward_hook(lambda mod, inp, out: calls.append(inp[0].shape[0]))
    with torch.no_grad():
        torch.manual_seed(11)
        loss, _ = iwae(model, [batch], 0)
    hook.remove()
    assert calls == [batch.shape[0] * 5]
    with torch.no_grad():
        torch.manual_seed(11)
        q = DiagGaussian(*model.encoder(batch))
        eps = torch.randn(batch.shape[0], 5, q.mu.shape[1])   # the draws DiagGaussian.sample(5) makes
        log_w = []
        for i in range(5):
            z = q.mu + eps[:, i] * torch.exp(0.5 * q.logvar)
            log_w.append(model.log_px(batch, model.decoder(z)) + model.prior.log_prob(z) - q.log_density(z))
        looped = -(torch.logsumexp(torch.stack(log_w, 1), 1) - math.log(5)).mean()
    assert torch.allclose(loss, looped, rtol=0, atol=1e-4), (float(loss), float(looped))


# ---------------------------------------------------------------- GECO's multiplier
@pytest.mark.parametrize("model_id", ["geco-mnist5k", "geco-iwae-mnist5k", "dp-geco-mnist5k"])
def test_lambda_rises_when_the_constraint_is_violated_and_falls_when_met(model_id, batch):
    """Driven directly with an optimiser: a tolerance no model meets (kappa = 0.1: squared error <= 0.01)
    raises lambda every step, one every model meets (kappa^2 = 10,000 > 784) lowers it; the moving average
    and the multiplicative update follow GECO's algorithm exactly."""
    for kappa, direction in ((0.1, +1), (100.0, -1)):
        recipe, model, obj = _build(model_id, objective={"kappa": kappa, "eta": 1e-4})
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        alpha, eta = recipe["objective"]["alpha"], recipe["objective"]["eta"]
        lam, c_ma, lams = 1.0, None, [1.0]
        for step in range(5):
            loss, stats = obj(model, [batch], step)
            c = float(stats["constraint"])
            assert obj.lam.grad is None and not obj.lam.requires_grad
            c_ma = c if c_ma is None else alpha * c_ma + (1 - alpha) * c
            lam = lam * math.exp(eta * c_ma)
            assert math.isclose(float(obj.c_ma), c_ma, rel_tol=1e-5) and math.isclose(float(obj.lam), lam, rel_tol=1e-5)
            assert float(stats["lambda"]) == float(obj.lam) and int(obj.updates) == step + 1
            lams.append(float(obj.lam))
            opt.zero_grad()
            loss.backward()
            opt.step()
        steps = np.diff(lams)
        assert (np.sign(steps) == direction).all(), (kappa, lams)
        # evaluation mode computes the loss with the current multiplier and leaves the state alone
        obj.eval()
        before = {k: v.clone() for k, v in obj.state_dict().items()}
        obj(model, [batch], 5)
        assert all(torch.equal(before[k], v) for k, v in obj.state_dict().items())


def test_geco_loss_value_and_gradient(batch):
    """loss = KL + lambda * C_hat: its value uses C_ma, its gradient is KL's plus lambda times the batch constraint's."""
    recipe, model, obj = _build("geco-mnist5k")
    obj.lam.fill_(3.0)
    torch.manual_seed(1)
    loss, stats = obj(model, [batch], 0)
    assert math.isclose(float(loss.detach()), float(stats["kl"]) + 3.0 * float(stats["c_ma"]), rel_tol=1e-5)
    g = torch.autograd.grad(loss, list(model.decoder.parameters()))
    torch.manual_seed(1)
    fwd = model.forward_pass(batch)
    mse = (batch - torch.sigmoid(fwd.out)).pow(2).flatten(1).sum(1).mean()
    want = torch.autograd.grad(fwd.kl.mean() + 3.0 * mse, list(model.decoder.parameters()))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g, want))


@pytest.mark.parametrize("model_id", ["geco-mnist5k", "dp-geco-iwae-mnist5k"])
def test_resume_gives_identical_weights_and_multiplier(model_id, tmp_path):
    recipe = tiny_recipe(model_id)
    full = train(recipe, tmp_path / "full", device="cpu", progress=False)
    res = train(recipe, tmp_path / "split", device="cpu", progress=False, stop_after=3)
    assert res == {"stopped_at": 3}
    state = load_file(str(tmp_path / "split" / STATE))
    assert float(state["objective.lam"]) != 1.0 and int(state["objective.updates"]) == 3
    split = train(recipe, tmp_path / "split", device="cpu", progress=False, resume=True)
    a, b = load_file(str(tmp_path / "full" / "model.safetensors")), load_file(str(tmp_path / "split" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    fa, fb = full["train"]["final_stats"], split["train"]["final_stats"]
    assert fa["lambda"] == fb["lambda"] and fa["c_ma"] == fb["c_ma"] and fa == fb
    assert full["validation"] == split["validation"]


# ---------------------------------------------------------------- through the CLI
@pytest.mark.parametrize("model_id", ["geco-mnist5k", "iwae-mnist5k"])
def test_cli_train_sample_export(model_id, tmp_path):
    out = tmp_path / model_id
    r = run_cli("train", model_id, "--steps", "6", "--batch-size", "16", "--nll-samples", "4", "--out", str(out), "--device", "cpu")
    assert r.returncode == 0, r.stderr
    stats = json.loads((out / "metrics.json").read_text())["train"]["final_stats"]
    assert {"loss", "recon", "kl"} <= set(stats)
    if model_id.startswith("geco"):
        assert "lambda=" in r.stderr and {"lambda", "c_ma", "constraint", "mse"} <= set(stats)
    else:
        assert stats["bound"] == -stats["loss"]
    png = tmp_path / "grid.png"
    r = run_cli("sample", str(out), "-n", "4", "--seed", "0", "-o", str(png))
    assert r.returncode == 0 and png.is_file(), r.stderr
    r = run_cli("export", str(out), "--check", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] and set(report["parts"]) == {"encoder", "decoder", "prior_forward", "prior_inverse"}


def test_info_shows_every_geco_setting():
    r = run_cli("info", "geco-mnist5k")
    assert r.returncode == 0, r.stderr
    for needle in ('name = "geco"', 'constraint = "mse"', "kappa = ", "eta = ", "alpha = 0.99", "lambda_init = 1.0",
                   "lambda_min = ", "lambda_max = "):
        assert needle in r.stdout, needle
    r = run_cli("info", "geco-iwae-cifar10", "--json")
    rec = json.loads(r.stdout)["recipe"]
    assert rec["objective"]["k"] >= 1 and rec["model"]["backbone"] == "conv32"


def _recipe_file(path, family: str, **tables) -> str:
    lines = [f'family = "{family}"', 'dataset = "mnist5k"']
    base = {"train": {"steps": 4, "batch_size": 16}, "eval": {"nll_samples": 4, "max_examples": 16},
            "model": {"hidden": [32], "latent": 4}}
    for name, table in {**base, **{k: {**base.get(k, {}), **v} for k, v in tables.items()}}.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


BAD = {
    "k0": ("iwae", {"objective": {"k": 0}}, "objective.k"),
    "kfrac": ("geco-iwae", {"objective": {"k": 2.5}}, "objective.k"),
    "kappa": ("geco", {"objective": {"kappa": 0.0}}, "objective.kappa"),
    "eta": ("geco-iwae", {"objective": {"eta": -1e-3}}, "objective.eta"),
    "alpha1": ("geco", {"objective": {"alpha": 1.0}}, "objective.alpha"),
    "alphaneg": ("geco", {"objective": {"alpha": -0.5}}, "objective.alpha"),
    "lam": ("geco", {"objective": {"lambda_init": 0.0}}, "lambda_init"),
    "constraint": ("geco", {"objective": {"constraint": "bce"}}, "objective.constraint"),
    "likelihood": ("geco", {"model": {"likelihood": "learned_gaussian"}}, "learned_gaussian"),
}


def test_cli_refuses_bad_settings_in_one_line_before_writing(tmp_path):
    good = _recipe_file(tmp_path / "mine.toml", "geco", objective={"kappa": 3.0})
    r = run_cli("train", good, "--out", str(tmp_path / "good"), "--device", "cpu", "-q")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "good" / "config.json").read_text())["recipe"]["objective"]["kappa"] == 3.0
    for name, (family, tables, word) in BAD.items():
        path = _recipe_file(tmp_path / f"bad-{name}.toml", family, **tables)
        r = run_cli("train", path, "--out", str(tmp_path / f"out-{name}"), "--device", "cpu", "-q")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and word in lines[0], (name, r.stderr)
        assert not (tmp_path / f"out-{name}").exists(), name


def test_refusals_in_process_too():
    for name, (family, tables, word) in BAD.items():
        with pytest.raises(UsageError, match=word.replace(".", r"\.")):
            build_objective(tiny_recipe(f"{family}-mnist5k", **tables), 4500)


# ---------------------------------------------------------------- the beta = 0.5 baseline and CIFAR-10
def test_beta_half_is_the_beta_vae_at_one_half():
    from vaezoo.families import lookup
    from vaezoo.recipes import resolve

    rec = resolve("beta-half-mnist5k")
    assert rec["objective"] == {"name": "beta-h", "beta": 0.5}
    assert "Taming VAEs" in lookup("beta-half").family.summary


def test_cifar10_is_published_and_trains_on_real_format_files(tmp_path):
    import data_formats as fmt

    r = run_cli("list", "*-cifar10", "--json")
    assert r.returncode == 0, r.stderr
    fams = {row["family"] for row in json.loads(r.stdout)}
    assert {"vae", "beta-h", "beta-b", "tc", "factor", "info", "dp-vae", "dp-factor",
            "beta-half", "iwae", "geco", "geco-iwae", "dp-geco"} <= fams
    assert not {"m2", "m1", "m1m2", "untapped"} & fams
    fmt.write_cifar10(tmp_path / "data" / "cifar10", np.random.default_rng(5), per_batch=20)
    for model_id in ("vae-cifar10", "geco-iwae-cifar10"):
        rec = tiny_recipe(model_id, model={"channels": [4, 8, 8]}, train={"batch_size": 8}, objective={"k": 2} if "iwae" in model_id else {})
        assert rec["model"]["backbone"] == "conv32" and rec["model"]["likelihood"] == "gaussian"
        out = tmp_path / model_id
        m = train(rec, out, device="cpu", progress=False, data_dir=str(tmp_path / "data"))
        assert m["train"]["examples"] == 90 and np.isfinite(m["validation"]["nll"])
    r = run_cli("sample", str(tmp_path / "geco-iwae-cifar10"), "-n", "4", "-o", str(tmp_path / "s.npy"), "--backend", "torch")
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "s.npy").shape == (4, 3, 32, 32)
