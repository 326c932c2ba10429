"""beta-TCVAE's dimension-wise term: the posterior-sample estimator (default) and the dpVAE paper's g^-1(z0) one."""

from __future__ import annotations

import math

import pytest
import torch

from tests.conftest import run_cli, tiny_recipe
from vaezoo.errors import UsageError
from vaezoo.models import build_model
from vaezoo.models.vae import Forward
from vaezoo.store.checkpoint import make_config
from vaezoo.train.objectives import build_objective


def _tc(model_id: str, dimwise: str):
    recipe = tiny_recipe(model_id, objective={"dimwise": dimwise})
    torch.manual_seed(0)
    return build_model(make_config(recipe)), build_objective(recipe, 4500)


def _posteriors(model, b: int, d: int, shift: float) -> Forward:
    """A batch whose posteriors are all N(shift, 1): the aggregate posterior is N(shift, I), factorised."""
    mu, logvar = torch.full((b, d), shift), torch.zeros(b, d)
    z = mu + torch.randn(b, d)
    return Forward(mu, logvar, z, None, torch.zeros(b), torch.zeros(b), model.prior.log_prob(z))


@pytest.mark.parametrize("shift,expected", [(0.0, 0.0), (1.0, 2.0)])   # KL(N(0, I) || N(m, I)) = D m^2 / 2, D = 4
def test_the_prior_estimator_is_kl_of_the_prior_from_the_factorised_posterior(shift, expected):
    model, objective = _tc("tc-mnist5k", "prior")
    torch.manual_seed(1)
    _, stats = objective.regularizer(model, _posteriors(model, 4096, 4, shift), 0, None)
    # Monte Carlo over 4,096 prior draws: the standard error of the mean of sum_d (m^2/2 - m z_d) is 2 m / 64
    assert float(stats["dwkl"]) == pytest.approx(expected, abs=0.15 if shift else 1e-4)


def test_the_posterior_estimator_is_unchanged_by_the_option():
    """The default reproduces minibatch-weighted sampling: log prod_d q(z_d) - log p(z), log(N*B) normalised."""
    model, objective = _tc("tc-mnist5k", "posterior")
    torch.manual_seed(1)
    fwd = _posteriors(model, 64, 4, 0.0)
    _, stats = objective.regularizer(model, fwd, 0, None)
    # every q(z_d | x_j) is N(0, 1): logsumexp over the batch is log B + log N(z_d), minus log(N B)
    assert float(stats["dwkl"]) == pytest.approx(-4 * math.log(4500), abs=1e-3)


def test_with_the_decoupled_prior_the_paper_estimator_trains_the_flow_through_its_samples():
    model, objective = _tc("dp-tc-mnist5k", "prior")
    with torch.no_grad():   # a flow that is not the identity, so g^-1 moves the draws
        for p in model.prior.parameters():
            p.add_(0.1 * torch.randn_like(p))
    objective.cfg.update(alpha=0.0, beta=0.0)   # the dimension-wise term alone
    torch.manual_seed(2)
    fwd = _posteriors(model, 256, 4, 0.5)
    fwd.log_pz = fwd.log_pz.detach()   # so that any gradient reaching the flow comes through g^-1(z0)
    reg, _ = objective.regularizer(model, fwd, 0, None)
    reg.backward()
    grads = [p.grad for p in model.prior.parameters() if p.grad is not None]
    assert torch.isfinite(reg) and grads and max(float(g.abs().max()) for g in grads) > 0


def test_an_unknown_estimator_is_refused_in_one_line(tmp_path):
    with pytest.raises(UsageError, match="objective.dimwise must be one of posterior, prior"):
        _tc("dp-tc-mnist5k", "both")
    (tmp_path / "bad.toml").write_text('family = "tc"\ndataset = "mnist5k"\n[objective]\ndimwise = "both"\n')
    res = run_cli("train", str(tmp_path / "bad.toml"), "--steps", "2", "--out", str(tmp_path / "run"))
    assert res.returncode != 0
    assert "objective.dimwise must be one of" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
