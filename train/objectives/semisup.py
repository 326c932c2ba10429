"""Objectives of the semi-supervised models (REFERENCE.md, "Semi-supervised").

M2 (Kingma et al. 2014), per minibatch of unlabelled x (the whole training stream) and a
labelled batch (x_l, y_l) drawn from a fixed, class-balanced labelled subset in *every* step:

    loss = mean_l[-L(x_l, y_l)] + mean_u[-U(x_u)] + a * mean_l[-log q(y_l|x_l)],
    -U(x) = -sum_y q(y|x) L(x, y) - H(q(y|x))   (y enumerated over all K classes, never sampled)
    a = alpha * N / N_l

where alpha * N is the paper's alpha (alpha = 0.1 -> alpha_paper = 0.1 N) and N / N_l turns its
``E_lab`` (a mean over the N_l labelled examples) into a weight per labelled example in the same
summed units as L; the ratio of the classification term to L is exactly the paper's.
(``weighting = "sum"`` uses the paper's plain sum J^alpha / N instead:
(N_l/N) mean L + mean U + alpha * mean CE.)

Labelled subset: ``data.labels`` examples, balanced per class (``labels / K`` each, the first
``labels % K`` classes one more), picked from each class's training indices by a
``numpy.random.default_rng(train.seed)`` permutation; ``data.labelled_classes`` limits them to
some classes (the Untapped experiment). The labelled batch of step t is drawn with a torch
generator seeded by (seed, t), so a resumed run sees the same batches.

Augmentation (not in the paper; used by the small-data mnist5k recipes): ``objective.shift = s``
translates every training digit (unlabelled and labelled, and M1's VAE inputs) by a random integer
offset in [-s, s] pixels per step; evaluation and exported graphs see the digits as they are.

M1: steps < ``objective.vae_steps``: the VAE bound on all x; after: cross-entropy of the
classifier head on the latent means of the labelled x (encoder frozen).
M1+M2: the same first stage for M1, then M2's loss on z1 ~ q(z1|x) (M1 frozen).
Untapped: M2's loss plus ``weight`` times the inverted bound on label-only y (the training labels,
shuffled apart from their images): z ~ p(z), x~ = E[p(x|y,z)] (the Bernoulli mean, a continuous
relaxation of the sample so gradients flow), loss term
``log p(x~|y,z) - log q(y|x~) - log q(z|x~,y)`` (q(x) uniform and p(z) fixed: constants dropped);
``inverse_prior = "model"`` replaces the uniform q(x) by the model's own p(x), bounded by U(x~), which
adds ``-U(x~)`` and keeps the generated x~ digit-like instead of rewarding blur.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vaezoo.errors import UsageError
from vaezoo.models.distributions import DiagGaussian
from vaezoo.models.semisup import onehot
from vaezoo.train.objectives.base import Objective, register_objective


def balanced_labels(y: np.ndarray, n_labels: int, seed: int, classes=None) -> np.ndarray:
    """Sorted indices of a class-balanced labelled subset of ``y``, fixed by ``seed``."""
    classes = sorted(set(int(c) for c in (classes if classes is not None else np.unique(y))))
    if n_labels < len(classes):
        raise UsageError(f"data.labels = {n_labels}: need at least one label per class ({len(classes)} classes)")
    rng = np.random.default_rng(seed)
    base, extra = divmod(n_labels, len(classes))
    picked = []
    for i, c in enumerate(classes):
        members = np.flatnonzero(y == c)
        want = base + (1 if i < extra else 0)
        if len(members) < want:
            raise UsageError(f"data.labels = {n_labels}: class {c} has only {len(members)} training examples")
        picked.append(rng.permutation(members)[:want])
    return np.sort(np.concatenate(picked))


def random_shift(x: torch.Tensor, s: int) -> torch.Tensor:
    """Each image of a (B, C, H, W) batch translated by its own integer offset in [-s, s]^2, zero-filled."""
    b, c, h, w = x.shape
    padded = F.pad(x, (s, s, s, s))
    dy = torch.randint(0, 2 * s + 1, (b, 1), device=x.device)
    dx = torch.randint(0, 2 * s + 1, (b, 1), device=x.device)
    rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx + torch.arange(w, device=x.device))[:, None, None, :]
    return padded[torch.arange(b, device=x.device)[:, None, None, None], torch.arange(c, device=x.device)[None, :, None, None], rows, cols]


class LabelledSet:
    """The fixed labelled subset, kept on the training device; batches drawn per step."""

    def __init__(self, train_set, n_labels: int, seed: int, device, classes=None):
        if train_set.y is None:
            raise UsageError(f"{train_set.name} has no labels; semi-supervised models need a labelled dataset")
        self.indices = balanced_labels(train_set.y, n_labels, seed, classes)
        self.seed = seed
        self.x = torch.from_numpy(train_set.float_batch(self.indices)).to(device)
        self.y = torch.from_numpy(train_set.y[self.indices]).long().to(device)
        self.all_y = torch.from_numpy(np.asarray(train_set.y)).long()
        self.n_total = len(train_set)

    def __len__(self) -> int:
        return len(self.indices)

    def batch(self, step: int, size: int):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + 500_009 + step)
        n = len(self)
        idx = torch.randperm(n, generator=g)[:size] if size <= n else torch.randint(n, (size,), generator=g)
        idx = idx.to(self.x.device)
        return self.x[idx], self.y[idx]

    def label_only(self, step: int, size: int) -> torch.Tensor:
        """Labels without images: training labels drawn apart from their images."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + 900_001 + step)
        return self.all_y[torch.randint(self.n_total, (size,), generator=g)].to(self.x.device)

    def info(self, k: int) -> dict:
        counts = np.bincount(self.y.cpu().numpy(), minlength=k)
        return {"labelled": int(len(self)), "per_class": [int(c) for c in counts], "seed": self.seed,
                "selection": "balanced per class; numpy default_rng(train.seed) permutation of each class's training indices"}


class SemiSupervisedObjective(Objective):
    """Common plumbing: ``attach`` picks the labelled subset before the first step."""

    own_batches = True   # the labelled batches come from the labelled subset

    def __init__(self, recipe: dict, dataset_size: int):
        super().__init__(recipe, dataset_size)
        self.labelled: LabelledSet | None = None

    def attach(self, train_set, device) -> None:
        data = self.recipe["data"]
        if "labels" not in data:
            raise UsageError(f"recipe {self.recipe['id']!r} needs data.labels (the label budget)")
        self.labelled = LabelledSet(train_set, int(data["labels"]), int(self.recipe["train"]["seed"]), device,
                                    data.get("labelled_classes"))

    def metrics_info(self) -> dict:
        k = len(np.unique(self.labelled.all_y.numpy()))
        return {"labels": {**self.labelled.info(k), "unlabelled": self.labelled.n_total}}

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """``objective.shift`` > 0: random translations of the training digits (not in the paper)."""
        shift = int(self.cfg["shift"])
        return random_shift(x, shift) if shift else x

    def _lab_batch(self, step):
        return self.labelled.batch(step, int(self.cfg["labelled_batch"]))


def m2_loss(core, f_u, f_l, y_l, alpha_eff: float, weighting: str, frac_l: float, c_u=None, c_l=None):
    """``f_*`` feed the bounds; ``c_*`` (default: the same) feed the classifier q(y|x)."""
    L, log_px_l, kl_l = core.labelled_bound(f_l, y_l)
    logits_u = core.classifier(f_u if c_u is None else c_u)
    U, parts = core.unlabelled_bound(f_u, logits_u)
    logits_l = core.classifier(f_l if c_l is None else c_l)
    ce = F.cross_entropy(logits_l, y_l)
    if weighting == "sum":
        loss = -frac_l * L.mean() - U.mean() + alpha_eff * frac_l * ce
    else:
        loss = -L.mean() - U.mean() + alpha_eff * ce
    stats = {"recon": parts["recon"].mean().detach(), "kl": parts["kl"].mean().detach(), "neg_L": -L.mean().detach(),
             "neg_U": -U.mean().detach(), "ce": ce.detach(), "acc_l": (logits_l.argmax(1) == y_l).float().mean()}
    return loss, stats


@register_objective("m2")
class M2Objective(SemiSupervisedObjective):
    def alpha_eff(self) -> float:
        return float(self.cfg["alpha"]) * self.labelled.n_total / len(self.labelled)

    def m2_step(self, model, x, step):
        xl, yl = self._lab_batch(step)
        x, xl = self.augment(x), self.augment(xl)
        (fu, cu), (fl, cl) = model.bound_inputs(x), model.bound_inputs(xl)
        n, nl = self.labelled.n_total, len(self.labelled)
        return m2_loss(model.core, fu, fl, yl, self.alpha_eff(), self.cfg["weighting"], nl / n, cu, cl)

    def forward(self, model, batches, step: int, runner=None):
        x = batches[0]
        loss, stats = self.m2_step(model, x, step)
        return loss, {"loss": loss.detach(), **stats}


# The inverted bound's settings (the untapped family's TOML table holds their values, as the poster writes them).
INVERTED_KEYS = ("weight", "inverse_entropy", "inverse_encoder", "inverse_prior", "inverse_sample", "inverse_temperature")


def inverted_settings(objective_cfg: dict) -> dict:
    """The inverted bound's settings of a resolved recipe's objective table."""
    return {k: objective_cfg[k] for k in INVERTED_KEYS}


@register_objective("untapped")
class UntappedObjective(M2Objective):
    def __init__(self, recipe: dict, dataset_size: int):
        super().__init__(recipe, dataset_size)
        self.inv = inverted_settings(self.cfg)
        if self.inv["inverse_prior"] not in ("uniform", "model"):
            raise UsageError(f"objective.inverse_prior = {self.inv['inverse_prior']!r}: use 'uniform' or 'model'")
        if self.inv["inverse_sample"] not in ("mean", "relaxed"):
            raise UsageError(f"objective.inverse_sample = {self.inv['inverse_sample']!r}: use 'mean' or 'relaxed'")

    def draw(self, logits: torch.Tensor) -> torch.Tensor:
        """x~ from the decoder's logits: its mean E[x~|y,z], or (``inverse_sample = "relaxed"``) a
        reparameterised relaxed-Bernoulli draw, sharp strokes like real digits where the mean is a blur
        that q(y|x) may learn to read in ways real digits do not share."""
        if self.inv["inverse_sample"] == "relaxed":
            t = torch.tensor(float(self.inv["inverse_temperature"]), device=logits.device)
            return torch.distributions.RelaxedBernoulli(t, logits=logits).rsample()
        return torch.sigmoid(logits)

    def inverted(self, model, step):
        core = model.core
        y = self.labelled.label_only(step, int(self.cfg["label_only_batch"]))
        y1h = onehot(y, core.k)
        eps = torch.randn(y.shape[0], core.latent, device=y.device)
        z = core.prior.inverse(eps)
        out = core.decoder(z, y1h)
        if core.likelihood.kind != "bernoulli":
            raise UsageError("untapped is implemented for Bernoulli decoders (grey images)")
        xt = self.draw(out)
        log_px = core.log_px(xt, out)  # -H(p(x|y,z)) at the mean x~
        ce = F.cross_entropy(core.classifier(xt), y, reduction="none")
        log_qz = DiagGaussian(*core.encoder(xt, y1h)).log_density(z)
        term = ce
        if self.inv["inverse_entropy"]:   # log p(x~|y,z) = -H(p(x|y,z)) for the mean x~
            term = term + log_px
        if self.inv["inverse_encoder"]:   # -log q(z|x~,y)
            term = term - log_qz
        if self.inv["inverse_prior"] == "model":   # -log p(x~) <= -U(x~), not a uniform q(x)
            u, _ = core.unlabelled_bound(xt)
            term = term - u
        return term.mean(), {"inv_ce": ce.mean().detach(), "inv": term.mean().detach()}

    def forward(self, model, batches, step: int, runner=None):
        x = batches[0]
        loss, stats = self.m2_step(model, x, step)
        inv, inv_stats = self.inverted(model, step)
        loss = loss + float(self.inv["weight"]) * inv
        return loss, {"loss": loss.detach(), **stats, **inv_stats}


class TwoStage(SemiSupervisedObjective):
    """First ``vae_steps`` steps: M1's VAE bound on all x; then the second stage."""

    def vae_steps(self) -> int:
        """Fixed when the recipe is resolved (recipes.finalize), so a resumed run with another --steps
        keeps its stage boundary."""
        return int(self.cfg["vae_steps"])

    def vae_loss(self, vae, x):
        fwd = vae.forward_pass(self.augment(x))
        recon, kl = -fwd.log_px.mean(), fwd.kl.mean()
        return recon + kl, {"recon": recon.detach(), "kl": kl.detach()}

    def forward(self, model, batches, step: int, runner=None):
        x = batches[0]
        if step < self.vae_steps():
            loss, stats = self.vae_loss(model.first_stage(), x)
            return loss, {"loss": loss.detach(), "stage": torch.tensor(1.0), **stats}
        loss, stats = self.second(model, x, step)
        return loss, {"loss": loss.detach(), "stage": torch.tensor(2.0), **stats}


@register_objective("m1")
class M1Objective(TwoStage):
    def second(self, model, x, step):
        xl, yl = self._lab_batch(step)
        with torch.no_grad():
            mu, _ = model.encoder(self.augment(xl))
        logits = model.head(mu)
        ce = F.cross_entropy(logits, yl)
        return ce, {"ce": ce.detach(), "kl": torch.tensor(0.0), "acc_l": (logits.argmax(1) == yl).float().mean()}


@register_objective("m1m2")
class M1M2Objective(TwoStage, M2Objective):
    def second(self, model, x, step):
        return self.m2_step(model, x, step)
