"""The conditional VAE (Sohn, Lee & Yan 2015; the "VAE meets GAN" poster): q(z|x, c), p(x|z, c), p(z) = N(0, I)
(or the decoupled prior's flow), with the condition c set by the recipe's ``model.condition``:

* ``"label"``: c = y, the one-hot class. Parts ``encoder(x, y)``, ``decoder(z, y)`` (M2's signatures), so
  sampling with ``--label`` and ``analogies`` (style transfer) work as for M2.
* ``"half-image"``: c = (kept, mask), both shaped like x: ``mask`` is 1 on the kept half, ``kept = x * mask``
  (see :mod:`vaezoo.completion`). Parts ``encoder(x, kept, mask)``, ``decoder(z, kept, mask)``; the pipeline's
  ``complete`` draws z ~ p(z) and pastes the kept half over the decoder's mean.

The networks are M2's: the first layer is W_x x + W_c c (the condition flattened), so one MLP serves both
conditions. The bound is the poster's log p(x|c) >= E_q log p(x|z, c) - KL(q(z|x, c) || p(z)), p(x|z, c) over
every pixel (the kept half is there to be copied). Every term per example, summed over pixels / latent dims.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vaezoo import parts as sig
from vaezoo.completion import KEEPS, all_masks
from vaezoo.models.distributions import DiagGaussian, Likelihood, importance_nll
from vaezoo.models.flow import build_prior
from vaezoo.models.loading import Pretrained
from vaezoo.models.registry import register_model
from vaezoo.models.semisup import CondDecoder, CondEncoder, onehot
from vaezoo.models.vae import Forward, prior_parts
from vaezoo.parts import Part, Port, Signature

CONDITIONS = ("label", "half-image")
IMAGE_CONDITION = (Port("kept", "data"), Port("mask", "data"))


class _ImageConditioned(nn.Module):
    """net(a, c) with c = [kept, mask] flattened: the part takes (a, kept, mask) as plain tensors."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, a, kept, mask):
        return self.net(a, torch.cat([kept.flatten(1), mask.flatten(1)], 1))


@register_model("cvae")
class CVAE(Pretrained, nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        recipe = config["recipe"]
        m = recipe["model"]
        self.shape = tuple(config["input"]["shape"])
        self.condition = m["condition"]
        if self.condition not in CONDITIONS:
            raise ValueError(f"unknown model.condition {self.condition!r} ({', '.join(CONDITIONS)})")
        # the family's facts tell the pipeline which parts to call: they must agree with the condition
        if bool(config["conditional"]) != (self.condition == "label") or bool(config["completion"]) != (self.condition == "half-image"):
            raise ValueError(f"model.condition {self.condition!r} needs a family with "
                             f"{'conditional' if self.condition == 'label' else 'completion'} = true (and not the other)")
        if m["backbone"] != "mlp":
            raise ValueError(f"a cvae has MLP networks (backbone = \"mlp\"), not {m['backbone']!r}")
        self.likelihood = Likelihood.from_recipe(m)
        if self.likelihood.kind == "learned_gaussian":
            raise ValueError("a cvae needs a bernoulli or fixed-sigma gaussian likelihood")
        self.latent = int(m["latent"])
        d = math.prod(self.shape)
        if self.condition == "label":
            self.k = len(config.get("labels") or [])
            if self.k < 2:
                raise ValueError(f"{config.get('id')}: condition = \"label\" needs a labelled dataset")
            c = self.k
        else:
            if len(self.shape) != 3:
                raise ValueError(f"condition = \"half-image\" needs image data, not shape {self.shape}")
            c = 2 * d
            self.register_buffer("masks", torch.from_numpy(all_masks(self.shape)), persistent=False)
        hidden, act = list(m["hidden"]), m["activation"]
        enc, dec = CondEncoder(d, c, hidden, self.latent, act), CondDecoder(self.latent, c, hidden, self.shape, act)
        self.encoder = enc if self.condition == "label" else _ImageConditioned(enc)
        self.decoder = dec if self.condition == "label" else _ImageConditioned(dec)
        self.prior = build_prior(recipe["prior"], self.latent)

    def parts(self) -> dict[str, Part]:
        out = self.likelihood.decoder_output
        if self.condition == "label":
            enc, dec = sig.encoder(conditional=True), sig.decoder(out, conditional=True)
        else:
            enc = Signature((Port("x", "data"), *IMAGE_CONDITION), sig.encoder().outputs)
            dec = Signature((Port("z", "latent"), *IMAGE_CONDITION), sig.decoder(out).outputs)
        return {"encoder": Part(self.encoder, enc), "decoder": Part(self.decoder, dec), **prior_parts(self.prior)}

    # -- conditions
    def label_condition(self, y: torch.Tensor) -> tuple[torch.Tensor]:
        return (onehot(y, self.k),)

    def image_condition(self, x: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(kept, mask) for each example's half ``keep`` (indices into :data:`vaezoo.completion.KEEPS`)."""
        mask = self.masks[keep]
        return x * mask, mask

    def held_out_condition(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, ...]:
        """Validation: the true label, or the halves in turn (example i keeps KEEPS[i % 4])."""
        if self.condition == "label":
            return self.label_condition(y)
        return self.image_condition(x, torch.arange(x.shape[0], device=x.device) % len(KEEPS))

    # -- the bound
    def forward(self, x, cond: tuple[torch.Tensor, ...]) -> Forward:
        """One reparameterised z ~ q(z|x, c) per example (the training pass)."""
        q = DiagGaussian(*self.encoder(x, *cond))
        z = q.sample()
        out = self.decoder(z, *cond)
        return Forward(q.mu, q.logvar, z, out, self.likelihood.log_prob(x, out), q.kl(self.prior, z), self.prior.log_prob(z))

    def log_weights(self, x, cond, k: int) -> torch.Tensor:
        """(B, k) log p(x|z_i, c) + log p(z_i) - log q(z_i|x, c), z_i ~ q(z|x, c), decoded in one pass."""
        b = x.shape[0]
        q = DiagGaussian(*self.encoder(x, *cond))
        z = q.sample(k)
        rep = [c.repeat_interleave(k, 0) for c in cond]
        out = self.decoder(z.reshape(b * k, -1), *rep)
        log_px = self.likelihood.log_prob(x.repeat_interleave(k, 0), out).reshape(b, k)
        return log_px + self.prior.log_prob(z.reshape(b * k, -1)).reshape(b, k) - q.log_density(z)

    @torch.no_grad()
    def validation_metrics(self, x, y=None, nll_samples: int = 1000, batch: int = 500, seed: int = 1234) -> dict:
        """Held-out -ELBO, KL, reconstruction and importance-sampled -log p(x|c) (c: :meth:`held_out_condition`)."""
        torch.manual_seed(seed)
        self.eval()
        sums = {"neg_elbo": 0.0, "kl": 0.0, "recon": 0.0, "nll": 0.0}
        for i in range(0, x.shape[0], batch):
            xb = x[i : i + batch]
            cond = self.held_out_condition(xb, None if y is None else y[i : i + batch])
            fwd = self(xb, cond)
            sums["neg_elbo"] += float((fwd.kl - fwd.log_px).sum())
            sums["kl"] += float(fwd.kl.sum())
            sums["recon"] += float((-fwd.log_px).sum())
            if nll_samples:
                # importance_nll slices its first argument in groups: carry the condition along in it
                packed = torch.cat([xb.flatten(1), *(c.flatten(1) for c in cond)], 1)
                sizes = [xb[0].numel()] + [c[0].numel() for c in cond]
                shapes = [xb.shape[1:]] + [c.shape[1:] for c in cond]

                def weights(p, k):
                    pieces = [t.reshape(-1, *s) for t, s in zip(torch.split(p, sizes, 1), shapes)]
                    return self.log_weights(pieces[0], tuple(pieces[1:]), k)

                sums["nll"] += float(importance_nll(weights, packed, nll_samples).sum())
        n = x.shape[0]
        res = {k: v / n for k, v in sums.items()}
        if not nll_samples:
            res.pop("nll")
        held = "its true label" if self.condition == "label" else f"its half {'/'.join(KEEPS)}[i % 4] (example i)"
        res.update(examples=n, nll_samples=nll_samples, conditioned_on=f"each held-out example on {held}")
        return res
