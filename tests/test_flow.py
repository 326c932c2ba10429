"""The decoupled prior's RealNVP flow: exact inverse, log-det equal to autograd's Jacobian."""

from __future__ import annotations

import math

import pytest
import torch

from vaezoo.models.distributions import std_normal_log_density
from vaezoo.models.flow import FlowPrior, StandardPrior


def _perturbed_flow(dim, seed=0):
    torch.manual_seed(seed)
    flow = FlowPrior(dim, blocks=6, hidden=16).double()
    with torch.no_grad():  # make the tanh-bounded scales clearly non-zero
        for p in flow.parameters():
            p.mul_(3.0)
    return flow


@pytest.mark.parametrize("dim", [2, 3, 5])
def test_flow_inverts(dim):
    flow = _perturbed_flow(dim)
    eps = torch.randn(64, dim, dtype=torch.float64)
    z = flow.inverse(eps)
    back, _ = flow(z)
    assert torch.allclose(back, eps, atol=1e-10)
    assert not torch.allclose(z, eps, atol=1e-2)  # the flow is not the identity


@pytest.mark.parametrize("dim", [2, 4])
def test_logdet_matches_autograd_jacobian(dim):
    flow = _perturbed_flow(dim, seed=1)
    for _ in range(3):
        z = torch.randn(dim, dtype=torch.float64)
        jac = torch.autograd.functional.jacobian(lambda v: flow(v[None])[0][0], z)
        with torch.no_grad():
            _, logdet = flow(z[None])
        assert math.isclose(float(logdet[0]), float(torch.linalg.slogdet(jac)[1]), abs_tol=1e-9)


def test_flow_density_integrates_to_one_in_2d():
    """log_prob is a normalised density (change of variables done right): grid integral ~ 1."""
    flow = _perturbed_flow(2, seed=2)
    g = torch.linspace(-12, 12, 601, dtype=torch.float64)
    zz = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        total = flow.log_prob(zz).exp().sum() * (g[1] - g[0]) ** 2
    assert abs(float(total) - 1.0) < 0.02


def test_standard_prior_is_identity():
    prior = StandardPrior()
    z = torch.randn(7, 3)
    eps, logdet = prior(z)
    assert torch.equal(eps, z) and torch.equal(prior.inverse(z), z)
    assert torch.equal(logdet, torch.zeros(7))
    assert torch.allclose(prior.log_prob(z), std_normal_log_density(z))
