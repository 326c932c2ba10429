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

from vaezoo.flow import LOG_2PI, StandardPrior, build_prior
from vaezoo.models import MODEL_KINDS, VAE, PriorForward, PriorInverse
from vaezoo.nets import _act

SEMISUP_KINDS = ("m1", "m2", "m1m2", "untapped")
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
    hidden = list(m.get("classifier_hidden", m.get("hidden", [500])))
    dropout = float(m.get("classifier_dropout", 0.0))
    kind = m.get("classifier_backbone", "mlp")
    if kind == "conv":
        return ConvClassifier(shape, list(m["classifier_channels"]), hidden, k, act, dropout)
    if kind != "mlp":
        raise ValueError(f"unknown classifier_backbone {kind!r} (mlp, conv)")
    return Classifier(math.prod(shape), hidden, k, act, dropout)


def onehot(y: torch.Tensor, k: int) -> torch.Tensor:
    return F.one_hot(y.long(), k).float()


def kl_standard(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


class M2Core(nn.Module):
    """M2 over some data space (pixels, or M1's codes): the bounds L(x, y) and U(x)."""

    def __init__(self, shape, k, latent, hidden, classifier: nn.Module, likelihood, sigma, prior_cfg, act="relu"):
        super().__init__()
        self.shape, self.k, self.latent, self.likelihood, self.sigma = tuple(shape), k, latent, likelihood, sigma
        d = math.prod(shape)
        self.encoder = CondEncoder(d, k, hidden, latent, act)
        self.decoder = CondDecoder(latent, k, hidden, shape, act)
        self.classifier = classifier
        self.prior = build_prior(prior_cfg, latent)
        if likelihood == "learned_gaussian":
            self.out_logvar = nn.Parameter(torch.zeros(d))

    def log_px(self, x, out):
        if self.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(out, x, reduction="none").flatten(1).sum(1)
        if self.likelihood == "learned_gaussian":
            lv = self.out_logvar
            return (-0.5 * (LOG_2PI + lv + (x - out).flatten(1).pow(2) * torch.exp(-lv))).sum(1)
        var = self.sigma**2
        return (-0.5 * ((x - out).pow(2) / var + math.log(2 * math.pi * var))).flatten(1).sum(1)

    def kl(self, mu, logvar, z):
        if isinstance(self.prior, StandardPrior):
            return kl_standard(mu, logvar)
        return -0.5 * (LOG_2PI + 1 + logvar).sum(1) - self.prior.log_prob(z)

    def bound_terms(self, x, y1h, hx=None):
        """(log p(x|y,z), KL) for one reparameterised z ~ q(z|x,y); hx caches the encoder's x part."""
        hx = self.encoder.x_features(x) if hx is None else hx
        mu, logvar = self.encoder.from_features(hx, y1h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        out = self.decoder(z, y1h)
        return self.log_px(x, out), self.kl(mu, logvar, z)

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

    @torch.no_grad()
    def importance_nll(self, x, k_per_class: int, budget: int = 4_000_000):
        """(B,) -log p(x), p(x) = sum_y p(y) int p(x|y,z) p(z) dz, K samples of q(z|x,y) per class."""
        b = x.shape[0]
        out = []
        d = max(1, x[0].numel())
        group = max(1, budget // (k_per_class * d * self.k))
        for i in range(0, b, group):
            xg = x[i : i + group]
            g = xg.shape[0]
            per_class = []
            hx = self.encoder.x_features(xg)
            for c in range(self.k):
                y1h = onehot(torch.full((g,), c, device=x.device), self.k)
                mu, logvar = self.encoder.from_features(hx, y1h)
                z = mu.unsqueeze(1) + torch.randn(g, k_per_class, self.latent, device=x.device) * torch.exp(0.5 * logvar).unsqueeze(1)
                log_qz = (-0.5 * (LOG_2PI + logvar.unsqueeze(1) + (z - mu.unsqueeze(1)).pow(2) * torch.exp(-logvar.unsqueeze(1)))).sum(2)
                zf = z.reshape(g * k_per_class, -1)
                yf = y1h.repeat_interleave(k_per_class, 0)
                dec = self.decoder(zf, yf)
                xr = xg.repeat_interleave(k_per_class, 0)
                log_px = self.log_px(xr, dec).reshape(g, k_per_class)
                log_pz = self.prior.log_prob(zf).reshape(g, k_per_class)
                logw = log_px + log_pz - log_qz
                per_class.append(torch.logsumexp(logw, 1) - math.log(k_per_class) - math.log(self.k))
            out.append(-torch.logsumexp(torch.stack(per_class, 1), 1))
        return torch.cat(out)


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
class M2(nn.Module):
    """M2 on pixels (also the network of ``untapped``)."""

    conditional = True

    def __init__(self, config: dict):
        super().__init__()
        recipe = config["recipe"]
        m = recipe["model"]
        self.shape = tuple(config["input"]["shape"])
        self.k = _num_classes(config)
        self.latent = int(m["latent"])
        self.likelihood = m["likelihood"]
        act = m.get("activation", "relu")
        self.core = M2Core(self.shape, self.k, self.latent, list(m.get("hidden", [500])),
                           build_classifier(self.shape, m, self.k, act), self.likelihood,
                           float(m.get("sigma", 0.1)), recipe["prior"], act)

    @property
    def prior(self):
        return self.core.prior

    def parts(self) -> dict[str, nn.Module]:
        c = self.core
        return {"encoder": c.encoder, "decoder": c.decoder, "classifier": c.classifier,
                "prior_forward": PriorForward(c.prior), "prior_inverse": PriorInverse(c.prior)}

    # data space the M2 core sees (pixels here; M1's codes for m1m2)
    def features(self, x, sample: bool = False):
        return x

    def classify_logits(self, x):
        return self.core.classifier(self.features(x))

    def decoder_mean(self, out):
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    @torch.no_grad()
    def validation_metrics(self, x, y, nll_samples: int = 0, batch: int = 250, seed: int = 1234) -> dict:
        torch.manual_seed(seed)
        self.eval()
        n = x.shape[0]
        sums = {"neg_elbo": 0.0, "recon": 0.0, "kl": 0.0, "nll": 0.0, "ce": 0.0, "err": 0.0}
        for i in range(0, n, batch):
            xb, yb = x[i : i + batch], y[i : i + batch]
            f = self.features(xb)
            logits = self.core.classifier(f)
            sums["ce"] += float(F.cross_entropy(logits, yb, reduction="sum"))
            sums["err"] += float((logits.argmax(1) != yb).sum())
            u, parts = self.core.unlabelled_bound(f, logits)
            sums["neg_elbo"] += float(-u.sum())
            sums["recon"] += float(parts["recon"].sum())
            sums["kl"] += float(parts["kl"].sum())
            if nll_samples:
                sums["nll"] += float(self.core.importance_nll(f, max(1, nll_samples // self.k)).sum())
        res = {k: v / n for k, v in sums.items()}
        res["error_rate"] = res.pop("err")
        res["cross_entropy"] = res.pop("ce")
        if not nll_samples:
            res.pop("nll")
        else:
            res["nll_note"] = f"importance sampled over y (enumerated) and z, {max(1, nll_samples // self.k)} samples per class"
        res.update(examples=n, nll_samples=nll_samples, protocol=PROTOCOL)
        if hasattr(self, "m1"):
            res["nll_space"] = "M1 codes z1 (the bound of M2 on the stacked model's data)"
        return res


class M1M2(M2):
    """M2 stacked on M1: M1 (a VAE on pixels) is trained first, then M2 on z1 ~ q(z1|x)."""

    def __init__(self, config: dict):
        nn.Module.__init__(self)
        recipe = config["recipe"]
        m = recipe["model"]
        m1 = dict(m.get("m1", {}))
        self.shape = tuple(config["input"]["shape"])
        self.k = _num_classes(config)
        self.latent = int(m["latent"])
        self.likelihood = m["likelihood"]
        m1_model = {"backbone": m1.get("backbone", m.get("backbone", "mlp")), "hidden": m1.get("hidden", [500]),
                    "latent": int(m1.get("latent", 50)), "likelihood": m["likelihood"], "sigma": m.get("sigma", 0.1)}
        if "activation" in m1:
            m1_model["activation"] = m1["activation"]
        m1_config = {**config, "recipe": {**recipe, "model": m1_model, "prior": {"kind": "standard"}}}
        self.m1 = VAE(m1_config)
        act = m.get("activation", "relu")
        d1 = m1_model["latent"]
        self.core = M2Core((d1,), self.k, self.latent, list(m.get("hidden", [500])),
                           build_classifier((d1,), m, self.k, act), "learned_gaussian", 1.0, recipe["prior"], act)

    def parts(self) -> dict[str, nn.Module]:
        c, m1 = self.core, self.m1
        return {"encoder": _StackedEncoder(m1.encoder, c.encoder), "decoder": _StackedDecoder(c.decoder, m1.decoder),
                "classifier": _StackedClassifier(m1.encoder, c.classifier), "m1_encoder": m1.encoder,
                "prior_forward": PriorForward(c.prior), "prior_inverse": PriorInverse(c.prior)}

    def features(self, x, sample: bool = False):
        return self.sampled_and_mean(x)[0] if sample else self.m1.encoder(x)[0]

    def sampled_and_mean(self, x):
        """(z1 ~ q(z1|x), the mean of q(z1|x)) from one pass of M1's encoder."""
        mu, logvar = self.m1.encoder(x)
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar), mu

    def decoder_mean(self, out):
        return self.m1.decoder_mean(out)


class M1(VAE):
    """M1: a VAE, plus a classifier head trained on the latent means of the labelled examples."""

    conditional = False

    def __init__(self, config: dict):
        super().__init__(config)
        m = config["recipe"]["model"]
        self.k = _num_classes(config)
        self.head = Classifier(self.latent, list(m.get("classifier_hidden", [])), self.k, m.get("activation", "relu"),
                               float(m.get("classifier_dropout", 0.0)))

    def parts(self) -> dict[str, nn.Module]:
        return {**super().parts(), "classifier": _M1Classifier(self.encoder, self.head)}

    def classify_logits(self, x):
        return self.head(self.encoder(x)[0])

    @torch.no_grad()
    def validation_metrics(self, x, y, nll_samples: int = 0, batch: int = 500, seed: int = 1234) -> dict:
        from vaezoo.metrics import evaluate

        res = evaluate(self, x, nll_samples, batch, seed)
        ce = err = 0.0
        for i in range(0, x.shape[0], batch):
            logits = self.classify_logits(x[i : i + batch])
            yb = y[i : i + batch]
            ce += float(F.cross_entropy(logits, yb, reduction="sum"))
            err += float((logits.argmax(1) != yb).sum())
        res.update(error_rate=err / x.shape[0], cross_entropy=ce / x.shape[0], protocol=PROTOCOL)
        return res


MODELS = {"m1": M1, "m2": M2, "m1m2": M1M2, "untapped": M2}
MODEL_KINDS.update(MODELS)
