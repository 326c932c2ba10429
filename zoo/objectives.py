"""Training objectives as small compositions of terms over one shared forward pass.

Every objective returns the loss to minimise (per example: summed over pixels / latent dims,
averaged over the batch) and a dict of scalar stats. Schedules (beta-B capacity) are functions of
the training step, which only the trainer advances. An objective is an nn.Module so that any
training-only network it owns (FactorVAE's discriminator) is saved with the training state and
never exported.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.models import gaussian_logpdf


class Objective(nn.Module):
    needs_second_batch = False   # FactorVAE permutes codes of an independent second batch

    def __init__(self, cfg: dict, dataset_size: int):
        super().__init__()
        self.cfg = cfg
        self.dataset_size = dataset_size

    def regularizer(self, model, fwd, step):
        """Extra loss terms beyond -log p(x|z); returns (tensor of shape (), stats)."""
        raise NotImplementedError

    def forward(self, model, x, step: int, x2=None, runner=None):
        """``runner`` is the module that runs the forward pass (a DDP wrapper of ``model``)."""
        fwd = (runner or model)(x)
        reg, stats = self.regularizer(model, fwd, step, x2)
        recon = -fwd.log_px.mean()
        kl = fwd.kl.mean()
        loss = recon + reg
        stats = {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach(), **stats}
        return loss, stats

    # Auxiliary (adversarial) training; only FactorVAE has one.
    def aux_parameters(self):
        return []

    def aux_loss(self):
        return None


class VAEObjective(Objective):
    def regularizer(self, model, fwd, step, x2=None):
        return fwd.kl.mean(), {}


class BetaH(Objective):
    """beta-VAE (Higgins): recon + beta * KL."""

    def regularizer(self, model, fwd, step, x2=None):
        return self.cfg["beta"] * fwd.kl.mean(), {}


def capacity(step: int, c_max: float, c_steps: int) -> float:
    """beta-VAE-B capacity: linear from 0 to c_max over c_steps training steps, then flat."""
    if c_steps <= 0:
        return c_max
    return c_max * min(1.0, step / c_steps)


class BetaB(Objective):
    """beta-VAE (Burgess): recon + gamma * |KL - C(step)|."""

    def regularizer(self, model, fwd, step, x2=None):
        c = capacity(step, self.cfg["capacity_max"], self.cfg["capacity_steps"])
        return self.cfg["gamma"] * (fwd.kl.mean() - c).abs(), {"capacity": torch.tensor(c)}


class TCVAE(Objective):
    """beta-TCVAE: recon + alpha*MI + beta*TC + gamma*dimwise-KL, minibatch-weighted sampling.

    From logq[i, j, d] = log q(z_i,d | x_j):  log q(z_i) = logsumexp_j sum_d logq - log(N*B) and
    log prod_d q(z_i,d) = sum_d (logsumexp_j logq - log(N*B)). The dimension-wise term compares
    prod_d q(z_d) with the prior's density at z (through the flow, log-det included, for dp models).
    """

    def regularizer(self, model, fwd, step, x2=None):
        z, mu, logvar = fwd.z, fwd.mu, fwd.logvar
        b = z.shape[0]
        logq = gaussian_logpdf(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))  # B x B x D
        log_nb = math.log(self.dataset_size * b)
        log_qz_x = logq.diagonal(dim1=0, dim2=1).sum(0)  # (B,) log q(z_i | x_i)
        log_qz = torch.logsumexp(logq.sum(2), dim=1) - log_nb
        log_qz_prod = (torch.logsumexp(logq, dim=1) - log_nb).sum(1)
        mi = (log_qz_x - log_qz).mean()
        tc = (log_qz - log_qz_prod).mean()
        dwkl = (log_qz_prod - fwd.log_pz).mean()
        c = self.cfg
        reg = c["alpha"] * mi + c["beta"] * tc + c["gamma"] * dwkl
        return reg, {"mi": mi.detach(), "tc": tc.detach(), "dwkl": dwkl.detach()}


def permute_dims(z):
    """Shuffle each latent dimension independently across the batch (samples prod_d q(z_d))."""
    cols = [z[torch.randperm(z.shape[0], device=z.device), d] for d in range(z.shape[1])]
    return torch.stack(cols, dim=1)


class Discriminator(nn.Module):
    def __init__(self, latent: int, hidden: int, layers: int):
        super().__init__()
        dims = [latent] + [hidden] * (layers - 1)
        mods: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        mods.append(nn.Linear(dims[-1], 2))
        self.net = nn.Sequential(*mods)

    def forward(self, z):
        return self.net(z)


class FactorVAE(Objective):
    """FactorVAE: recon + KL + gamma * E[D(z)_0 - D(z)_1]; D tells q(z) from prod_d q(z_d).

    The discriminator is trained in ``aux_loss`` on detached codes (z of this batch vs permuted
    codes of a second batch), after the VAE step, so the two graphs never share tensors.
    """

    needs_second_batch = True

    def __init__(self, cfg, dataset_size, latent: int):
        super().__init__(cfg, dataset_size)
        self.disc = Discriminator(latent, int(cfg["disc_hidden"]), int(cfg["disc_layers"]))
        self._codes = None

    def regularizer(self, model, fwd, step, x2=None):
        logits = self.disc(fwd.z)
        tc = (logits[:, 0] - logits[:, 1]).mean()
        if x2 is not None:
            with torch.no_grad():
                mu2, logvar2 = model.encoder(x2)
                z2 = mu2 + torch.randn_like(mu2) * torch.exp(0.5 * logvar2)
            self._codes = (fwd.z.detach(), permute_dims(z2))
        return fwd.kl.mean() + self.cfg["gamma"] * tc, {"tc": tc.detach()}

    def aux_parameters(self):
        return list(self.disc.parameters())

    def aux_loss(self):
        if self._codes is None:
            return None
        z, z_perm = self._codes
        self._codes = None
        ones = torch.ones(z.shape[0], dtype=torch.long, device=z.device)
        return 0.5 * (F.cross_entropy(self.disc(z), 0 * ones) + F.cross_entropy(self.disc(z_perm), ones))


def mmd(a, b):
    """Biased MMD^2 estimate with the kernel k(a,b) = exp(-mean_d (a_d - b_d)^2 / D)."""
    d = a.shape[1]

    def k(u, v):
        return torch.exp(-(u.unsqueeze(1) - v.unsqueeze(0)).pow(2).mean(2) / d)

    return k(a, a).mean() + k(b, b).mean() - 2 * k(a, b).mean()


class InfoVAE(Objective):
    """InfoVAE (MMD): recon + (1-alpha)*KL + (alpha+lambda-1)*MMD(q(z), p(z)).

    Prior samples are drawn in the generation space and pushed through g^-1 (dp models).
    """

    def regularizer(self, model, fwd, step, x2=None):
        eps = torch.randn_like(fwd.z)
        z_prior = model.prior.inverse(eps)
        m = mmd(fwd.z, z_prior)
        a, lam = self.cfg["alpha"], self.cfg["lambda"]
        return (1 - a) * fwd.kl.mean() + (a + lam - 1) * m, {"mmd": m.detach()}


OBJECTIVES = {"vae": VAEObjective, "beta-h": BetaH, "beta-b": BetaB, "tc": TCVAE, "factor": FactorVAE, "info": InfoVAE}


def build_objective(recipe: dict, dataset_size: int) -> Objective:
    cfg = recipe["objective"]
    name = cfg["name"]
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r} ({', '.join(OBJECTIVES)})")
    from vaezoo.semisup_objectives import SEMISUP_OBJECTIVES

    if name in SEMISUP_OBJECTIVES:  # they need the whole recipe (label budget, seed, steps)
        return SEMISUP_OBJECTIVES[name](recipe, dataset_size)
    if name == "factor":
        return FactorVAE(cfg, dataset_size, int(recipe["model"]["latent"]))
    return OBJECTIVES[name](cfg, dataset_size)


import vaezoo.semisup_objectives  # noqa: E402,F401  registers m1, m2, m1m2, untapped in OBJECTIVES
