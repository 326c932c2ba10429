"""DRAW (Gregor et al. 2015): an encoder and a decoder LSTM that draw an image on a canvas in T steps.

Per step t, with h_dec the previous decoder state and c the canvas (Bernoulli logits):

    r_t   = read([x, x - sigmoid(c_{t-1})], h_dec_{t-1})     N_r x N_r Gaussian glimpses (or the whole images)
    h_enc = LSTM_enc([r_t, h_dec_{t-1} (, y)])               q(z_t | ...) = N(mu_t, diag(exp(logvar_t)))
    h_dec = LSTM_dec([z_t (, y)])                            c_t = c_{t-1} + write(h_dec)

Loss -log p(x | sigmoid(c_T)) + sum_t KL(q(z_t|...) || N(0, I)), i.e. the plain ELBO over the T latents, so
the ``vae`` objective trains it (:class:`vaezoo.models.vae.Forward` with the KL summed over steps). The
attention windows (centre, stride, variance, intensity) are a linear map of the decoder state; with
``model.attention = false`` read sees the whole images and write emits a whole image (the ablation).

The code of one example is T x latent (:func:`vaezoo.parts.latent_shape`). Exported parts:

    encoder   x (, y) -> mu, logvar (N x T x latent): the recurrence run on the means (z_t = mu_t), so
              decoder(mu) redraws exactly the canvas the encoder's decoder states drew
    decoder   z (, y) -> logits (N x C x H x W): the T steps unrolled, c_T
    canvases  z (, y) -> canvases (N x T x C x H x W): the same steps, every c_t (for ``--canvas-steps``;
              a graph of its own so that sampling does not hold T canvases per row)
    prior_forward / prior_inverse   the identity (the prior is N(0, I) per step)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vaezoo import parts as sig
from vaezoo.models.distributions import DiagGaussian, Likelihood, gaussian_log_density, importance_nll, std_normal_log_density
from vaezoo.models.flow import StandardPrior
from vaezoo.models.loading import Pretrained
from vaezoo.models.registry import register_model
from vaezoo.models.vae import Forward, prior_parts
from vaezoo.parts import Part

class LSTMCell(nn.Module):
    """One LSTM step as one linear map and its gates (plain MatMul / Sigmoid / Tanh in ONNX)."""

    def __init__(self, inputs: int, hidden: int):
        super().__init__()
        self.linear = nn.Linear(inputs + hidden, 4 * hidden)

    def forward(self, x, h, c):
        i, f, g, o = self.linear(torch.cat([x, h], 1)).chunk(4, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


WINDOW_INITS = ("centre", "zero")


class FilterBank(nn.Module):
    """An N x N grid of Gaussian filters on an H x W image; centre (gx, gy), stride delta, variance sigma^2
    and intensity gamma come from a linear map of the decoder state (the paper's eqs. 19-24, pixels 1..A).

    ``init`` sets where the window starts (the linear map's bias; the paper does not say):

    * "zero": a zero bias, so the grid spans the whole image with sigma = 1 pixel. With N = 2 the four
      filters then sit on the corner pixels, which are blank in MNIST: the read sees no ink, its centre
      takes no gradient, and the posterior collapses (KL ~0.01 nats, benchmarks/README.md).
    * "centre" (ours, the default): the grid spans the central half of the image, each filter's sigma half
      the stride, so the first glimpse is a blurred view of the middle, where the digit is.
    """

    def __init__(self, hidden: int, n: int, height: int, width: int, init: str = "centre"):
        super().__init__()
        self.n, self.height, self.width = n, height, width
        self.params = nn.Linear(hidden, 5)
        if init not in WINDOW_INITS:
            raise ValueError(f"model.window_init must be one of {', '.join(WINDOW_INITS)}, not {init!r}")
        bias = [0.0] * 5
        if init == "centre":
            stride = (max(height, width) - 1) / (n - 1) / 2                    # delta at log_delta = log(1/2)
            bias = [0.0, 0.0, 2 * math.log(stride / 2), math.log(0.5), 0.0]
        with torch.no_grad():
            self.params.bias.copy_(torch.tensor(bias))
        # i - N/2 - 1/2 for i = 1..N, and the pixel coordinates 1..H, 1..W (derived, not saved)
        self.register_buffer("offsets", torch.arange(n, dtype=torch.float32) - (n - 1) / 2, persistent=False)
        self.register_buffer("rows", torch.arange(1, height + 1, dtype=torch.float32), persistent=False)
        self.register_buffer("cols", torch.arange(1, width + 1, dtype=torch.float32), persistent=False)

    def forward(self, h):
        """(Fy (B, N, H), Fx (B, N, W), gamma (B,)) for decoder states h."""
        gx, gy, log_var, log_delta, log_gamma = self.params(h).unbind(1)
        gx = (self.width + 1) / 2 * (gx + 1)
        gy = (self.height + 1) / 2 * (gy + 1)
        delta = (max(self.height, self.width) - 1) / (self.n - 1) * torch.exp(log_delta)
        var = torch.exp(log_var)
        return self._filters(gy, delta, var, self.rows), self._filters(gx, delta, var, self.cols), torch.exp(log_gamma)

    def _filters(self, centre, delta, var, grid):
        mu = centre[:, None] + self.offsets[None, :] * delta[:, None]                          # (B, N)
        # exp(-(a - mu)^2 / 2 sigma^2) normalised over the pixels a, as a softmax: a window far off the image
        # would make every exp underflow to 0 (0 / 0 in the paper's sum-normalisation)
        return torch.softmax(-(grid[None, None, :] - mu[:, :, None]).pow(2) / (2 * var[:, None, None]), dim=2)


class _Encoder(nn.Module):
    def __init__(self, draw):
        super().__init__()
        self.draw = draw

    def forward(self, x, y=None):
        mu, logvar, _, _ = self.draw.infer(x, y, sample=False)
        return mu, logvar


class _Generator(nn.Module):
    def __init__(self, draw, every_step: bool):
        super().__init__()
        self.draw, self.every_step = draw, every_step

    def forward(self, z, y=None):
        return self.draw.generate(z, y, self.every_step)


@register_model("draw")
class DRAW(Pretrained, nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        m = config["recipe"]["model"]
        self.shape = tuple(int(s) for s in config["input"]["shape"])
        self.likelihood = Likelihood.from_recipe(m)
        if self.likelihood.kind != "bernoulli":
            raise ValueError(f"DRAW's canvas holds Bernoulli logits: model.likelihood must be 'bernoulli', not {self.likelihood.kind!r}")
        if len(self.shape) != 3:
            raise ValueError(f"DRAW draws images (C x H x W), not data of shape {self.shape}")
        self.steps = int(m["time_steps"])
        if self.steps < 1:
            raise ValueError(f"model.time_steps (T) must be at least 1, not {self.steps}")
        if not isinstance(m["attention"], bool):
            raise ValueError(f"model.attention must be true or false, not {m['attention']!r}")
        self.attention = m["attention"]
        self.latent = int(m["latent"])
        self.classes = len(config["labels"]) if config["conditional"] else 0   # cdraw: y one-hot into both LSTMs
        self.enc_hidden, self.dec_hidden = int(m["enc_hidden"]), int(m["dec_hidden"])
        c, height, width = self.shape
        if self.attention:
            self.read_size, self.write_size = int(m["read_size"]), int(m["write_size"])
            for name, n in (("read_size", self.read_size), ("write_size", self.write_size)):
                if not 2 <= n <= min(height, width):
                    raise ValueError(f"model.{name} = {n}: an attention window of {n} x {n} filters does not fit a "
                                     f"{height} x {width} image (it needs 2 to {min(height, width)} filters a side)")
            init = m.get("window_init", "centre")   # absent from checkpoints saved before it existed
            self.read_bank = FilterBank(self.dec_hidden, self.read_size, height, width, init)
            self.write_bank = FilterBank(self.dec_hidden, self.write_size, height, width, init)
            read_out, write_out = 2 * c * self.read_size**2, c * self.write_size**2
        else:
            read_out, write_out = 2 * c * height * width, c * height * width
        self.enc = LSTMCell(read_out + self.dec_hidden + self.classes, self.enc_hidden)
        self.q = nn.Linear(self.enc_hidden, 2 * self.latent)
        self.dec = LSTMCell(self.latent + self.classes, self.dec_hidden)
        self.write_out = nn.Linear(self.dec_hidden, write_out)
        self.prior = StandardPrior()

    # -- parts with plain tensor I/O, for export and the torch backend
    def parts(self) -> dict[str, Part]:
        cond = self.classes > 0
        steps = sig.Signature((sig.Port("z", "latent"),) + ((sig.Port("y", "labels"),) if cond else ()),
                              (sig.Port("canvases", "data_steps"),))
        return {"encoder": Part(_Encoder(self), sig.encoder(cond)),
                "decoder": Part(_Generator(self, False), sig.decoder(self.likelihood.decoder_output, cond)),
                "canvases": Part(_Generator(self, True), steps),
                **prior_parts(self.prior)}

    # -- read and write
    def read(self, x, x_hat, h_dec):
        if not self.attention:
            return torch.cat([x.flatten(1), x_hat.flatten(1)], 1)
        fy, fx, gamma = self.read_bank(h_dec)
        fy, fxt = fy[:, None], fx[:, None].transpose(2, 3)              # (B, 1, N, H), (B, 1, W, N)
        glimpse = lambda img: (gamma[:, None, None, None] * (fy @ img @ fxt)).flatten(1)  # noqa: E731
        return torch.cat([glimpse(x), glimpse(x_hat)], 1)

    def write(self, h_dec):
        patch = self.write_out(h_dec)
        if not self.attention:
            return patch.reshape((-1, *self.shape))
        fy, fx, gamma = self.write_bank(h_dec)
        w = patch.reshape(-1, self.shape[0], self.write_size, self.write_size)
        return (fy[:, None].transpose(2, 3) @ w @ fx[:, None]) / gamma[:, None, None, None]

    def _labels(self, y):
        if self.classes and y is None:
            raise ValueError("a conditional DRAW needs the one-hot labels y")
        return [y] if self.classes else []

    # -- the recurrences
    def infer(self, x, y=None, sample: bool = True):
        """The encoder-decoder recurrence on x: (mu, logvar, z) per step (B, T, latent) and the final canvas
        logits; z_t is a reparameterised draw, or mu_t when ``sample`` is false."""
        ys = self._labels(y)
        h_enc = x.new_zeros(x.shape[0], self.enc_hidden)
        h_dec = x.new_zeros(x.shape[0], self.dec_hidden)
        c_enc, c_dec, canvas = h_enc, h_dec, torch.zeros_like(x)
        mus, logvars, zs = [], [], []
        for _ in range(self.steps):
            r = self.read(x, x - torch.sigmoid(canvas), h_dec)
            h_enc, c_enc = self.enc(torch.cat([r, h_dec, *ys], 1), h_enc, c_enc)
            mu, logvar = self.q(h_enc).chunk(2, 1)
            z = DiagGaussian(mu, logvar).sample() if sample else mu
            h_dec, c_dec = self.dec(torch.cat([z, *ys], 1), h_dec, c_dec)
            canvas = canvas + self.write(h_dec)
            mus.append(mu), logvars.append(logvar), zs.append(z)
        return torch.stack(mus, 1), torch.stack(logvars, 1), torch.stack(zs, 1), canvas

    def generate(self, z, y=None, every_step: bool = False):
        """Canvas logits for codes z (B, T, latent): the final one, or every step's (B, T, C, H, W)."""
        ys = self._labels(y)
        h_dec = z.new_zeros(z.shape[0], self.dec_hidden)
        c_dec, canvas, canvases = h_dec, z.new_zeros((z.shape[0], *self.shape)), []
        for t in range(self.steps):
            h_dec, c_dec = self.dec(torch.cat([z[:, t], *ys], 1), h_dec, c_dec)
            canvas = canvas + self.write(h_dec)
            canvases.append(canvas)
        return torch.stack(canvases, 1) if every_step else canvas

    # -- what the objective and the evaluation read
    def log_px(self, x, out):
        return self.likelihood.log_prob(x, out)

    def forward_pass(self, x, y=None) -> Forward:
        mu, logvar, z, canvas = self.infer(x, y)
        kl = DiagGaussian(mu.flatten(1), logvar.flatten(1)).kl_standard_normal()   # sum_t KL_t, closed form
        return Forward(mu, logvar, z, canvas, self.log_px(x, canvas), kl, std_normal_log_density(z.flatten(1)))

    def forward(self, x, y=None):
        return self.forward_pass(x, y)

    def log_weights(self, x, k: int, y=None):
        """(B, k) log p(x|z) + log p(z) - log q(z|x) for k draws of z_{1:T} per example, each drawn step by
        step from the sequential posterior (a proper proposal: its density is the product of the steps')."""
        b = x.shape[0]
        xr = x.unsqueeze(1).expand(b, k, *x.shape[1:]).reshape(b * k, *x.shape[1:])
        yr = None if y is None else y.unsqueeze(1).expand(b, k, *y.shape[1:]).reshape(b * k, *y.shape[1:])
        mu, logvar, z, canvas = self.infer(xr, yr)
        log_q = gaussian_log_density(z, mu, logvar).flatten(1).sum(1)
        return (self.log_px(xr, canvas) + std_normal_log_density(z.flatten(1)) - log_q).reshape(b, k)

    @torch.no_grad()
    def validation_metrics(self, x, y=None, nll_samples: int = 1000, batch: int = 500, seed: int = 1234) -> dict:
        """Held-out -ELBO, KL (summed over the T steps), reconstruction and importance-sampled NLL, as
        :func:`vaezoo.models.metrics.elbo_metrics` computes them for the VAE (labels only for cdraw)."""
        torch.manual_seed(seed)
        self.eval()
        onehot = None
        if self.classes:
            onehot = torch.nn.functional.one_hot(y, self.classes).to(x.dtype)
        sums = {"neg_elbo": 0.0, "kl": 0.0, "recon": 0.0, "nll": 0.0}
        for i in range(0, x.shape[0], batch):
            xb, yb = x[i : i + batch], None if onehot is None else onehot[i : i + batch]
            fwd = self.forward_pass(xb, yb)
            sums["neg_elbo"] += float((fwd.kl - fwd.log_px).sum())
            sums["kl"] += float(fwd.kl.sum())
            sums["recon"] += float((-fwd.log_px).sum())
            if nll_samples:
                sums["nll"] += float(self._nll(xb, yb, nll_samples).sum())
        n = x.shape[0]
        res = {k: v / n for k, v in sums.items()}
        if not nll_samples:
            res.pop("nll")
        res.update(examples=n, nll_samples=nll_samples, time_steps=self.steps)
        return res

    def _nll(self, x, y, k: int):
        if y is None:
            return importance_nll(self.log_weights, x, k)
        # cdraw: one example (k draws, one pass) at a time, so that each group carries its own labels
        return torch.cat([importance_nll(lambda g, kk, yi=y[i : i + 1]: self.log_weights(g, kk, yi), x[i : i + 1], k)
                          for i in range(x.shape[0])])
