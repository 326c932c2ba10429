"""Semi-supervised VAEs (Kingma, Rezende, Mohamed & Welling 2014) and Untapped (Gemp et al.).

* ``m2``   p(y) = Cat(1/K), p(z) = N(0, I), p(x|y,z) (decoder), q(z|x,y) (encoder), q(y|x) (classifier).
* ``m1``   a VAE on all x, then a classifier on the latent means of the labelled x (two stages).
* ``m1m2`` M2 on M1's latent codes z1 ~ q(z1|x): p(z1|y,z2) is a Gaussian with a learned
           per-dimension variance. Its exported parts work from pixels: ``encoder(x, y)`` and
           ``classifier(x)`` run M1's encoder first (its mean), ``decoder(z2, y)`` ends with M1's
           decoder, and ``m1_encoder(x)`` is M1's encoder alone.
* ``untapped`` M2's networks; the objective adds the inverted bound on label-only data.

Parts (plain tensors, exportable): ``encoder(x, y_onehot) -> (mu, logvar)``,
``decoder(z, y_onehot) -> logits`` (pixels), ``classifier(x) -> logits`` (K classes),
``prior_forward``/``prior_inverse`` as for the VAE. M1 is not conditional: its parts are the
VAE's plus ``classifier(x) -> logits`` (encoder mean -> head), one graph from pixels to logits.

Units: every bound is per example, summed over pixels / latent dims (nats).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vaezoo import parts as sig
from vaezoo.models.distributions import DiagGaussian, Likelihood, importance_nll
from vaezoo.models.flow import build_prior
from vaezoo.models.metrics import classification_metrics, elbo_metrics
from vaezoo.models.nets import _act
from vaezoo.models.loading import Pretrained
from vaezoo.models.registry import register_model
from vaezoo.models.vae import VAE, prior_parts
from vaezoo.parts import Part, Port

PROTOCOL = ("error_rate: share of validation examples (held out: neither labelled nor unlabelled training data) "
            "whose argmax q(y|x) differs from the true label; cross_entropy: mean -log q(y|x) in nats")


def _mlp(dims: list[int], act: str, last_act: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2 or last_act:
            layers.append(_act(act))
    return nn.Sequential(*layers)


class CondEncoder(nn.Module):
    """q(z|x,y): the first layer is W_x x + W_y y, so y can be enumerated cheaply."""

    def __init__(self, d_in: int, k: int, hidden: list[int], latent: int, act: str):
        super().__init__()
        self.fx = nn.Linear(d_in, hidden[0])
        self.fy = nn.Linear(k, hidden[0], bias=False)
        self.act = _act(act)
        self.body = _mlp(list(hidden), act, last_act=True) if len(hidden) > 1 else nn.Identity()
        self.head = nn.Linear(hidden[-1], 2 * latent)

    def x_features(self, x):
        return self.fx(x.flatten(1))

    def from_features(self, hx, y):
        h = self.body(self.act(hx + self.fy(y)))
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar

    def forward(self, x, y):
        return self.from_features(self.x_features(x), y)


class CondDecoder(nn.Module):
    """p(x|y,z): logits (Bernoulli) or mean (Gaussian) of shape ``shape``."""

    def __init__(self, latent: int, k: int, hidden: list[int], shape: tuple[int, ...], act: str):
        super().__init__()
        rev = list(reversed(hidden))
        self.shape = tuple(shape)
        self.fz = nn.Linear(latent, rev[0])
        self.fy = nn.Linear(k, rev[0], bias=False)
        self.act = _act(act)
        self.body = _mlp(rev + [math.prod(shape)], act)

    def forward(self, z, y):
        return self.body(self.act(self.fz(z) + self.fy(y))).reshape((-1, *self.shape))


class Classifier(nn.Module):
    def __init__(self, d_in: int, hidden: list[int], k: int, act: str, dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.net = _mlp([d_in, *hidden, k], act)

    def forward(self, x):
        return self.net(self.drop(x.flatten(1)))


class ConvClassifier(nn.Module):
    """q(y|x) for images: stride-2 5x5 convolutions, then an MLP head (dropout before it)."""

    def __init__(self, shape, channels: list[int], hidden: list[int], k: int, act: str, dropout: float = 0.0):
        super().__init__()
        if len(shape) != 3:
            raise ValueError(f"a conv classifier needs C x H x W data, not shape {tuple(shape)}")
        c, h, w = shape
        layers: list[nn.Module] = []
        for out in channels:
            layers += [nn.Conv2d(c, out, 5, stride=2, padding=2), _act(act)]
            c, h, w = out, (h + 1) // 2, (w + 1) // 2
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = Classifier(c * h * w, hidden, k, act, dropout)

    def forward(self, x):
        return self.head(self.features(x))


def build_classifier(shape, m: dict, k: int, act: str) -> nn.Module:
    """The recipe's q(y|x): ``classifier_backbone`` "mlp" (the paper's) or "conv" (images)."""
    hidden = list(m["classifier_hidden"])
    dropout = float(m["classifier_dropout"])
    kind = m["classifier_backbone"]
    if kind == "conv":
        return ConvClassifier(shape, list(m["classifier_channels"]), hidden, k, act, dropout)
    if kind != "mlp":
        raise ValueError(f"unknown classifier_backbone {kind!r} (mlp, conv)")
    return Classifier(math.prod(shape), hidden, k, act, dropout)


def onehot(y: torch.Tensor, k: int) -> torch.Tensor:
    return F.one_hot(y.long(), k).float()


class M2Core(nn.Module):
    """M2 over some data space (pixels, or M1's codes): the bounds L(x, y) and U(x)."""

    def __init__(self, shape, k, latent, hidden, classifier: nn.Module, likelihood: Likelihood, prior_cfg, act):
        super().__init__()
        self.shape, self.k, self.latent, self.likelihood = tuple(shape), k, latent, likelihood
        d = math.prod(shape)
        self.encoder = CondEncoder(d, k, hidden, latent, act)
        self.decoder = CondDecoder(latent, k, hidden, shape, act)
        self.classifier = classifier
        self.prior = build_prior(prior_cfg, latent)
        if likelihood.kind == "learned_gaussian":
            self.out_logvar = nn.Parameter(torch.zeros(d))

    def log_px(self, x, out):
        return self.likelihood.log_prob(x, out, self.out_logvar if self.likelihood.kind == "learned_gaussian" else None)

    def bound_terms(self, x, y1h, hx=None):
        """(log p(x|y,z), KL) for one reparameterised z ~ q(z|x,y); hx caches the encoder's x part."""
        hx = self.encoder.x_features(x) if hx is None else hx
        q = DiagGaussian(*self.encoder.from_features(hx, y1h))
        z = q.sample()
        out = self.decoder(z, y1h)
        return self.log_px(x, out), q.kl(self.prior, z)

    def labelled_bound(self, x, y):
        """(B,) L(x, y) = E_q[log p(x|y,z)] + log p(y) - KL(q(z|x,y) || p(z)), with its parts."""
        log_px, kl = self.bound_terms(x, onehot(y, self.k))
        return log_px - math.log(self.k) - kl, log_px, kl

    def unlabelled_bound(self, x, logits=None):
        """(B,) U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)); y is enumerated, never sampled."""
        b = x.shape[0]
        logits = self.classifier(x) if logits is None else logits
        logq = F.log_softmax(logits, dim=1)
        q = logq.exp()
        hx = self.encoder.x_features(x)
        ys = torch.arange(self.k, device=x.device).repeat_interleave(b)          # (K*B,) class-major
        xs = x.repeat((self.k,) + (1,) * (x.dim() - 1))
        log_px, kl = self.bound_terms(xs, onehot(ys, self.k), hx.repeat(self.k, 1))
        lxy = (log_px - math.log(self.k) - kl).reshape(self.k, b).t()             # (B, K)
        entropy = -(q * logq).sum(1)
        u = (q * lxy).sum(1) + entropy
        parts = {"recon": -(q * log_px.reshape(self.k, b).t()).sum(1), "kl": (q * kl.reshape(self.k, b).t()).sum(1)}
        return u, parts

    def log_weights(self, x, k_per_class: int):
        """(B, K * k) log weights of p(x) = sum_y p(y) int p(x|y,z) p(z) dz: y enumerated, k draws of
        q(z|x,y) per class, log p(y) included."""
        g = x.shape[0]
        hx = self.encoder.x_features(x)
        per_class = []
        for c in range(self.k):
            y1h = onehot(torch.full((g,), c, device=x.device), self.k)
            q = DiagGaussian(*self.encoder.from_features(hx, y1h))
            z = q.sample(k_per_class)
            zf = z.reshape(g * k_per_class, -1)
            dec = self.decoder(zf, y1h.repeat_interleave(k_per_class, 0))
            log_px = self.log_px(x.repeat_interleave(k_per_class, 0), dec).reshape(g, k_per_class)
            log_pz = self.prior.log_prob(zf).reshape(g, k_per_class)
            per_class.append(log_px + log_pz - q.log_density(z) - math.log(self.k))
        return torch.cat(per_class, 1)

    def importance_nll(self, x, k_per_class: int):
        """(B,) -log p(x) with ``k_per_class`` samples of q(z|x,y) for each class."""
        return importance_nll(self.log_weights, x, k_per_class, draws_per_example=k_per_class * self.k, budget=4_000_000)


# ---------------------------------------------------------------- exportable composite parts
class _M1Classifier(nn.Module):
    """pixels -> M1 encoder mean -> head: one graph from pixels to logits."""

    def __init__(self, encoder, head):
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, x):
        mu, _ = self.encoder(x)
        return self.head(mu)


class _StackedEncoder(nn.Module):
    def __init__(self, m1_encoder, encoder):
        super().__init__()
        self.m1_encoder, self.encoder = m1_encoder, encoder

    def forward(self, x, y):
        mu1, _ = self.m1_encoder(x)
        return self.encoder(mu1, y)


class _StackedDecoder(nn.Module):
    def __init__(self, decoder, m1_decoder):
        super().__init__()
        self.decoder, self.m1_decoder = decoder, m1_decoder

    def forward(self, z, y):
        return self.m1_decoder(self.decoder(z, y))


class _StackedClassifier(nn.Module):
    def __init__(self, m1_encoder, classifier):
        super().__init__()
        self.m1_encoder, self.classifier = m1_encoder, classifier

    def forward(self, x):
        mu1, _ = self.m1_encoder(x)
        return self.classifier(mu1)


def _num_classes(config: dict) -> int:
    k = len(config.get("labels") or [])
    if k < 2:
        raise ValueError(f"{config.get('id')}: semi-supervised models need a labelled dataset")
    return k


# ---------------------------------------------------------------- models
@register_model("m2")
@register_model("untapped")
class M2(Pretrained, nn.Module):
    """M2 on pixels (also the network of ``untapped``)."""

    def __init__(self, config: dict):
        super().__init__()
        recipe = config["recipe"]
        m = recipe["model"]
        self.shape = tuple(config["input"]["shape"])
        self.k = _num_classes(config)
        self.latent = int(m["latent"])
        self.likelihood = Likelihood.from_recipe(m)
        self.core = M2Core(self.shape, self.k, self.latent, list(m["hidden"]),
                           build_classifier(self.shape, m, self.k, m["activation"]), self.likelihood,
                           recipe["prior"], m["activation"])

    @property
    def prior(self):
        return self.core.prior

    def parts(self) -> dict[str, Part]:
        c, out = self.core, self.likelihood.decoder_output
        return {"encoder": Part(c.encoder, sig.encoder(conditional=True)),
                "decoder": Part(c.decoder, sig.decoder(out, conditional=True)),
                "classifier": Part(c.classifier, sig.CLASSIFIER), **prior_parts(c.prior)}

    # data space the M2 core sees (pixels here; M1's codes for m1m2)
    def features(self, x):
        return x

    def classify_logits(self, x):
        return self.core.classifier(self.features(x))

    def bound_inputs(self, x):
        """(what the bounds read, what q(y|x) reads; None = the same): pixels here."""
        return x, None

    @torch.no_grad()
    def validation_metrics(self, x, y, nll_samples: int = 0, batch: int = 250, seed: int = 1234) -> dict:
        torch.manual_seed(seed)
        self.eval()
        n = x.shape[0]
        sums = {"neg_elbo": 0.0, "recon": 0.0, "kl": 0.0, "nll": 0.0}
        per_class = max(1, nll_samples // self.k)
        for i in range(0, n, batch):
            f = self.features(x[i : i + batch])
            u, parts = self.core.unlabelled_bound(f)
            sums["neg_elbo"] += float(-u.sum())
            sums["recon"] += float(parts["recon"].sum())
            sums["kl"] += float(parts["kl"].sum())
            if nll_samples:
                sums["nll"] += float(self.core.importance_nll(f, per_class).sum())
        res = {k: v / n for k, v in sums.items()}
        res.update(classification_metrics(self, x, y, batch))
        if not nll_samples:
            res.pop("nll")
        else:
            res["nll_note"] = f"importance sampled over y (enumerated) and z, {per_class} samples per class"
        res.update(examples=n, nll_samples=nll_samples, protocol=PROTOCOL)
        return res


@register_model("m1m2")
class M1M2(M2):
    """M2 stacked on M1: M1 (a VAE on pixels) is trained first, then M2 on z1 ~ q(z1|x)."""

    def __init__(self, config: dict):
        nn.Module.__init__(self)
        recipe = config["recipe"]
        m = recipe["model"]
        self.shape = tuple(config["input"]["shape"])
        self.k = _num_classes(config)
        self.latent = int(m["latent"])
        self.likelihood = Likelihood.from_recipe(m)   # of the pixels (M1's decoder)
        m1_model = {**m["m1"], "likelihood": m["likelihood"], **({"sigma": m["sigma"]} if "sigma" in m else {})}
        m1_config = {**config, "recipe": {**recipe, "model": m1_model, "prior": {"kind": "standard"}}}
        self.m1 = VAE(m1_config)
        d1 = int(m1_model["latent"])
        self.core = M2Core((d1,), self.k, self.latent, list(m["hidden"]),
                           build_classifier((d1,), m, self.k, m["activation"]), Likelihood("learned_gaussian"),
                           recipe["prior"], m["activation"])

    def parts(self) -> dict[str, Part]:
        c, m1 = self.core, self.m1
        d1 = Port("mu", "vector", int(m1.latent))
        return {"encoder": Part(_StackedEncoder(m1.encoder, c.encoder), sig.encoder(conditional=True)),
                "decoder": Part(_StackedDecoder(c.decoder, m1.decoder), sig.decoder(self.likelihood.decoder_output, conditional=True)),
                "classifier": Part(_StackedClassifier(m1.encoder, c.classifier), sig.CLASSIFIER),
                "m1_encoder": Part(m1.encoder, sig.encoder(code=d1)), **prior_parts(c.prior)}

    def features(self, x):
        return self.m1.encoder(x)[0]

    @torch.no_grad()
    def bound_inputs(self, x):
        """The bounds read z1 ~ q(z1|x); the classifier reads M1's mean, as the exported classifier(x)
        does (samples would feed it noise in M1's inactive dimensions). One pass of M1's encoder."""
        q = DiagGaussian(*self.m1.encoder(x))
        return q.sample(), q.mu

    def first_stage(self):
        """The VAE trained in stage 1 (M1), frozen after."""
        return self.m1

    @torch.no_grad()
    def validation_metrics(self, x, y, nll_samples: int = 0, batch: int = 250, seed: int = 1234) -> dict:
        res = super().validation_metrics(x, y, nll_samples, batch, seed)
        res["nll_space"] = "M1 codes z1 (the bound of M2 on the stacked model's data)"
        return res


@register_model("m1")
class M1(VAE):
    """M1: a VAE, plus a classifier head trained on the latent means of the labelled examples."""

    def __init__(self, config: dict):
        super().__init__(config)
        m = config["recipe"]["model"]
        self.k = _num_classes(config)
        self.head = Classifier(self.latent, list(m["classifier_hidden"]), self.k, m["activation"], float(m["classifier_dropout"]))

    def parts(self) -> dict[str, Part]:
        return {**super().parts(), "classifier": Part(_M1Classifier(self.encoder, self.head), sig.CLASSIFIER)}

    def classify_logits(self, x):
        return self.head(self.encoder(x)[0])

    def first_stage(self):
        return self

    @torch.no_grad()
    def validation_metrics(self, x, y, nll_samples: int = 0, batch: int = 500, seed: int = 1234) -> dict:
        res = elbo_metrics(self, x, nll_samples, batch, seed)
        res.update(classification_metrics(self, x, y, batch), protocol=PROTOCOL)
        return res
