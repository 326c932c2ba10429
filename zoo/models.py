"""A VAE is a set of parts: encoder, decoder and prior (standard or decoupled flow).

``build_model(config)`` rebuilds the architecture from a checkpoint's config; weights come from
safetensors. ``forward_pass`` is the one shared forward that every objective's terms read from.
Convention: every term is per example (summed over pixels / latent dims), averaged over the batch
only in the objective.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo.errors import UsageError
from vaezoo.flow import LOG_2PI, StandardPrior, build_prior
from vaezoo.nets import build_backbone


def gaussian_logpdf(z, mu, logvar):
    """Elementwise log N(z; mu, exp(logvar)) (not summed)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar))


@dataclass
class Forward:
    mu: torch.Tensor
    logvar: torch.Tensor
    z: torch.Tensor
    out: torch.Tensor        # decoder output (logits or mean)
    log_px: torch.Tensor     # (B,) log p(x|z)
    kl: torch.Tensor         # (B,) KL(q(z|x) || p(z)); closed form for N(0,I), entropy + MC for the flow
    log_pz: torch.Tensor     # (B,) log p(z) under the prior (flow: with its log-det)


class PriorForward(nn.Module):
    """Exportable part: z -> (eps, logdet)."""

    def __init__(self, prior):
        super().__init__()
        self.prior = prior

    def forward(self, z):
        return self.prior(z)


class PriorInverse(nn.Module):
    """Exportable part: eps -> z."""

    def __init__(self, prior):
        super().__init__()
        self.prior = prior

    def forward(self, eps):
        return self.prior.inverse(eps)


class VAE(nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        recipe = config["recipe"]
        self.shape = tuple(config["input"]["shape"])
        self.likelihood = recipe["model"]["likelihood"]
        self.sigma = float(recipe["model"].get("sigma", 0.1))
        self.latent = int(recipe["model"]["latent"])
        self.encoder, self.decoder = build_backbone(recipe["model"], self.shape)
        self.prior = build_prior(recipe["prior"], self.latent)
        self.image_output = config["input"]["kind"] == "image"

    # -- parts with plain tensor I/O, for export and the torch backend
    def parts(self) -> dict[str, nn.Module]:
        return {
            "encoder": self.encoder,
            "decoder": self.decoder,
            "prior_forward": PriorForward(self.prior),
            "prior_inverse": PriorInverse(self.prior),
        }

    def decoder_mean(self, out):
        """Decoder output -> data-space mean (pixels in [0, 1] for images)."""
        if self.likelihood == "bernoulli":
            return torch.sigmoid(out)
        return out

    def log_px(self, x, out):
        """(B,) log p(x|z), summed over the data dims."""
        if self.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)
        var = self.sigma**2
        return (-0.5 * ((x - out).pow(2) / var + math.log(2 * math.pi * var))).flatten(1).sum(1)

    def kl(self, mu, logvar, z):
        if isinstance(self.prior, StandardPrior):
            return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        # dpVAE: -H(q(z|x)) (closed form) - E_q[log N(g(z)) + log|det dg/dz|] (one sample)
        neg_entropy = -0.5 * (LOG_2PI + 1 + logvar).sum(1)
        return neg_entropy - self.prior.log_prob(z)

    def forward_pass(self, x) -> Forward:
        mu, logvar = self.encoder(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        out = self.decoder(z)
        log_pz = self.prior.log_prob(z)
        return Forward(mu, logvar, z, out, self.log_px(x, out), self.kl(mu, logvar, z), log_pz)

    forward = forward_pass  # nn.Module.__call__ (and DDP) run the training forward pass


# model.kind in a recipe -> class; other model families (e.g. semi-supervised) register here.
MODEL_KINDS: dict[str, type[nn.Module]] = {"vae": VAE}


def build_model(config: dict) -> nn.Module:
    """The model a config describes. A recipe that cannot be built (unknown kind or backbone, a net that
    does not fit the data) is a UsageError, so the CLI prints one line instead of a traceback."""
    recipe = config["recipe"]
    kind = recipe["model"].get("kind", "vae")
    if kind not in MODEL_KINDS:
        raise UsageError(f"recipe {recipe.get('id', '?')!r}: unknown model kind {kind!r} ({', '.join(MODEL_KINDS)})")
    try:
        return MODEL_KINDS[kind](config)
    except ValueError as exc:  # the nets' own checks (nets.py, flow.py, semisup.py)
        raise UsageError(f"recipe {recipe.get('id', '?')!r}: {exc}") from exc


import vaezoo.semisup  # noqa: E402,F401  registers m1, m2, m1m2, untapped in MODEL_KINDS
