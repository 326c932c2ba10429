"""Priors on the representation space z.

Both priors expose the same plain-tensor interface, so the pipeline and the exporter need no
special case: ``forward(z) -> (eps, logdet)`` maps z to the generation space (eps ~ N(0, I)) and
``inverse(eps) -> z`` maps back. ``log_prob(z) = log N(forward(z); 0, I) + logdet``.

The decoupled prior (dpVAE) is a RealNVP flow g: z -> z0 of affine coupling blocks with
alternating masks:  y = m*x + (1-m)*(x*exp(s(m*x)) + t(m*x)),  log|det dg/dz| = sum (1-m)*s.
"""

from __future__ import annotations

import torch
from torch import nn

from vaezoo.models.distributions import std_normal_log_density

def _coupling_net(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(dim, hidden), nn.LeakyReLU(0.2),
        nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
        nn.Linear(hidden, dim), nn.Tanh(),
    )


class AffineCoupling(nn.Module):
    def __init__(self, dim: int, hidden: int, parity: int):
        super().__init__()
        mask = torch.tensor([float((i + parity) % 2) for i in range(dim)])
        self.register_buffer("mask", mask, persistent=False)  # derived from dim and parity
        self.s = _coupling_net(dim, hidden)
        self.t = _coupling_net(dim, hidden)

    def forward(self, x):
        m = self.mask
        xm = x * m
        s = self.s(xm) * (1 - m)
        t = self.t(xm) * (1 - m)
        y = xm + (1 - m) * (x * torch.exp(s) + t)
        return y, s.sum(dim=1)

    def inverse(self, y):
        m = self.mask
        ym = y * m
        s = self.s(ym) * (1 - m)
        t = self.t(ym) * (1 - m)
        return ym + (1 - m) * ((y - t) * torch.exp(-s))


class FlowPrior(nn.Module):
    """Decoupled prior: RealNVP between representation space z and generation space z0."""

    is_standard = False

    def __init__(self, dim: int, blocks: int, hidden: int):
        super().__init__()
        if dim < 2:
            raise ValueError("the decoupled prior needs a latent size of at least 2")
        self.blocks = nn.ModuleList(AffineCoupling(dim, hidden, parity=k % 2) for k in range(blocks))

    def forward(self, z):
        logdet = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        for block in self.blocks:
            z, ld = block(z)
            logdet = logdet + ld
        return z, logdet

    def inverse(self, eps):
        for block in reversed(self.blocks):
            eps = block.inverse(eps)
        return eps

    def log_prob(self, z):
        eps, logdet = self.forward(z)
        return std_normal_log_density(eps) + logdet


class StandardPrior(nn.Module):
    """N(0, I): the identity map with zero log-det."""

    is_standard = True

    def forward(self, z):
        return z, torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)

    def inverse(self, eps):
        return eps

    def log_prob(self, z):
        return std_normal_log_density(z)


def build_prior(prior_cfg: dict, latent: int) -> nn.Module:
    if prior_cfg["kind"] == "flow":
        return FlowPrior(latent, int(prior_cfg["blocks"]), int(prior_cfg["hidden"]))
    return StandardPrior()
