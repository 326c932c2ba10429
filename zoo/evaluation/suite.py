"""What ``vaezoo evaluate MODEL --metrics ...`` measures, each number returned with its protocol.

    fid      Fréchet distance between FID-LeNet features of ``samples`` prior samples (numpy noise from ``seed``)
             and of every training digit of the model's dataset
    fid-lp   the same for ``samples`` LP samples (regions.py: the lowest aggregate-posterior density among
             ``pool`` x samples prior draws; the mixture of the training digits' posteriors)
    skl      KL(p‖q) + KL(q‖p), k-NN estimator (metrics.py), between ``samples`` prior draws and ``samples``
             aggregate-posterior draws (z ~ q(z|x) of the validation digits, each digit drawn in turn),
             in the space the prior lives in: eps = prior_forward(z) (the identity for the standard prior)
    leakage  the leakage curve (metrics.py) of those aggregate-posterior draws against ``samples`` prior draws
    nll      importance-sampled -log p(x) (likelihood.py) of the recipe's eval.max_examples validation digits with
             eval.nll_samples samples each (the numbers training records), noise from ``seed``
    error    the classifier's error rate on labelled data (models with a classifier; `evaluate --data`)
    mig, factor-score, dci
             disentanglement (disentanglement.py) of the posterior means (representation space z) of the first
             ``samples`` validation examples of a dataset with ground-truth factors (sprites, dsprites):
             MIG with BINS bins, the FactorVAE score with votes of VOTE_BATCH examples (VOTES training and
             VOTES evaluation votes, seeded), DCI from boosted stumps on the first 80 % (scored on the rest)

Everything runs through the pipeline (ONNX Runtime when the graphs exist, no torch) and the FID classifier's
ONNX graph. ``record`` adds the results to the checkpoint's metrics.json under "evaluation" and refreshes
its manifest entry in config.json, atomically and under the folder's graph lock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vaezoo.errors import UsageError
from vaezoo.evaluation import metrics as M
from vaezoo.data import binarize
from vaezoo.evaluation.regions import check_unconditional, dataset_images, encode_all, in_batches, log_prior, region_latents

METRICS = ("fid", "fid-lp", "skl", "leakage", "nll", "error", "mig", "factor-score", "dci")
FACTOR_METRICS = ("mig", "factor-score", "dci")   # need the dataset's ground-truth factors
BINS = 20          # MIG's histogram bins (disentanglement_lib's)
VOTE_BATCH = 64    # FactorVAE score: examples per vote (Kim & Mnih's L)
VOTES = 800        # training votes, and as many evaluation votes (REFERENCE's 800; disentanglement_lib 10,000 / 5,000)
PRUNE = 0.05       # FactorVAE score: code dims with a variance below this are collapsed (disentanglement_lib's)
LEVELS = (0.01, 0.05, 0.1, 0.25, 0.5)   # prior-mass levels of the leakage curve


@dataclass(frozen=True)
class Protocol:
    samples: int
    seed: int
    k: int           # the k of the k-NN KL estimator
    pool: int        # LP: prior draws per kept sample
    classifier: str | None = None   # the FID feature network (features.load_feature_net; None: by the image shape)
    data_dir: str | None = None   # where the model's dataset is (None: $VAEZOO_DATA, else the default cache)


def parse_metrics(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METRICS]
    if bad or not names:
        raise UsageError(f"--metrics: unknown metric(s) {', '.join(bad) or '(none given)'} (choose from {', '.join(METRICS)})")
    return list(dict.fromkeys(names))


DEFAULT = ("fid", "fid-lp", "skl", "nll", "error", "mig", "factor-score", "dci")   # leakage: asked for by name


def default_metrics(pipe) -> list[str]:
    """`evaluate MODEL` without --metrics: each metric of DEFAULT that applies to the model; FID for digits (FID-LeNet,
    bundled) and for other images when the Inception graph is there (features.inception_path: vaezoo does not ship it)."""
    from vaezoo.evaluation.features import DIGITS, inception_path

    names = []
    for name in DEFAULT:
        if name in ("fid", "fid-lp") and tuple(pipe.shape) != DIGITS and not inception_path().is_file():
            continue
        try:
            check_applies(pipe, [name])
        except UsageError:
            continue
        names.append(name)
    return names


def check_applies(pipe, names: list[str], proto: Protocol | None = None) -> None:
    """A metric that does not apply to the model (or to the protocol) is a one-line error, before anything is computed."""
    if proto is not None and "skl" in names and proto.k >= proto.samples:
        raise UsageError(f"--k {proto.k} must be below --samples {proto.samples} (the k-NN KL estimator's neighbours)")
    if {"fid", "fid-lp"} & set(names) and not pipe.is_image:
        raise UsageError(f"fid needs a model of images; {pipe.id} makes {pipe.config['input']['kind']} data")
    for name in {"fid-lp", "skl", "leakage"} & set(names):
        check_unconditional(pipe, name)
    if "nll" in names:
        from vaezoo.evaluation.likelihood import check_nll

        check_nll(pipe)
    factor_metrics = [m for m in names if m in FACTOR_METRICS]
    if factor_metrics:
        from vaezoo.data import DATASETS

        name = pipe.config["recipe"]["data"]["name"]
        if not DATASETS[name].factors:
            raise UsageError(f"{factor_metrics[0]} needs a dataset with ground-truth factors (sprites, dsprites); "
                             f"{pipe.id} was trained on {name}, which has none")
    if "error" in names:
        if not pipe.has_classifier():
            raise UsageError(f"error needs a model with a classifier; {pipe.id} has none")


def _fid(net, real: np.ndarray, fake: np.ndarray) -> float:
    return M.frechet_distance(net.features(real), net.features(fake))


STEPWISE_NOTE = ("; q is the encoder graph's Gaussian over all T steps (the recurrence run on the means), not the "
                 "sequential posterior the trainer samples, so this bound is looser than metrics.json's validation NLL")


def _posterior_draws(pipe, x: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n draws z ~ q(z|x_i), the digits taken in turn (i = j mod len(x)); noise from numpy(seed)."""
    mu, logvar = encode_all(pipe, x)
    idx = np.arange(n) % len(mu)
    eps = np.random.default_rng(seed).standard_normal((n, *mu.shape[1:]))
    return (mu[idx] + np.exp(0.5 * logvar[idx]) * eps).astype(np.float32)


def run(pipe, names: list[str], proto: Protocol, *, offline: bool = False, error_fn=None) -> dict:
    """{metric: {"value": ..., "protocol": {...}}} for each name (check_applies first)."""
    check_applies(pipe, names, proto)
    n, seed = proto.samples, proto.seed
    out: dict = {}
    loaded: dict = {}

    def images(split: str):   # each split read once per run (skl / leakage and nll share the validation digits)
        if split not in loaded:
            loaded[split] = dataset_images(pipe, split, proto.data_dir)
        return loaded[split]

    net = None
    if {"fid", "fid-lp"} & set(names):
        from vaezoo.evaluation.features import load_feature_net

        net = load_feature_net(proto.classifier, offline, tuple(pipe.shape), str(getattr(pipe.backend, "device", "cpu")))
        net.check_images(tuple(pipe.shape), pipe.id)
        if n <= net.feature_dim:
            raise UsageError(f"--samples {n}: FID needs more samples than the classifier's {net.feature_dim} features "
                             "(ideally 10,000 or more)")
        real, real_desc = images("train")
        base = {"classifier": net.id, "features": net.feature_dim, "real": real_desc, "generated": n, "seed": seed}
        if "fid" in names:
            fake = np.concatenate(list(pipe.sample_batches(n, seed)))
            out["fid"] = {"value": _fid(net, real, fake),
                          "protocol": {**base, "samples": f"{n} prior samples, eps ~ N(0, I) from numpy seed {seed}"}}
        if "fid-lp" in names:
            mu, logvar = encode_all(pipe, real)
            z, info = region_latents(pipe, "lp", n, seed, proto.pool, mu, logvar)
            out["fid-lp"] = {"value": _fid(net, real, in_batches(pipe.decode, z)),
                             "protocol": {**base, "samples": f"the {n} of {info['drawn']} prior draws (seed {seed}) with the lowest "
                                          f"aggregate-posterior density (mixture of the {len(mu)} training posteriors)",
                                          "pool": proto.pool}}
    if {"skl", "leakage"} & set(names):
        val, val_desc = images("val")
        z_post = _posterior_draws(pipe, val, n, seed + 1)
        eps_prior = pipe.noise(n, seed)
        where = {"posterior": f"{n} draws z ~ q(z|x) of {val_desc}, {math.ceil(n / len(val))} per digit (numpy seed {seed + 1})",
                 "prior": f"{n} draws eps ~ N(0, I) (numpy seed {seed})"}
        if "skl" in names:
            eps_post = in_batches(pipe.to_generation, z_post)
            flat = lambda e: e.reshape(n, -1)   # noqa: E731  (a DRAW code is T x latent: one point of T * latent dims)
            out["skl"] = {"value": M.symmetric_kl(flat(eps_prior), flat(eps_post), proto.k),
                          "protocol": {**where, "k": proto.k, "space": "generation (eps = prior_forward(z))",
                                       "estimator": "k-NN KL (Pérez-Cruz 2008), KL(p||q) + KL(q||p)"}}
        if "leakage" in names:
            lp_prior = in_batches(lambda b: log_prior(pipe, b), in_batches(pipe.from_generation, eps_prior))
            lp_post = in_batches(lambda b: log_prior(pipe, b), z_post)
            curve = M.leakage_curve(lp_prior, lp_post, LEVELS)
            out["leakage"] = {"value": curve,
                              "protocol": {**where, "definition": "leakage(level) = share of aggregate-posterior draws with "
                                           "log p(z) below the level-quantile of log p(z) under the prior (= level when q = p)"}}
    if "nll" in names:
        from vaezoo.evaluation.likelihood import importance_nll

        ecfg = pipe.config["recipe"]["eval"]
        val, val_desc = images("val")
        x = val[: int(ecfg["max_examples"])]
        binarised = binarize.describe(pipe.config["recipe"])
        if binarised:   # the digits training scored (vaezoo.data.binarize): the same fixed draw
            x, val_desc = binarize.fixed(x), f"{val_desc}, {binarised}"
        k_nll = int(ecfg["nll_samples"])
        if k_nll < 1:
            raise UsageError(f"{pipe.id}: its recipe's eval.nll_samples is {k_nll}; nll needs at least 1")
        out["nll"] = {"value": float(importance_nll(pipe, x, k_nll, seed).mean()),
                      "protocol": {"data": val_desc, "examples": len(x), "K": k_nll, "seed": seed,
                                   "unit": "nats per example, summed over pixels",
                                   "estimator": "-log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x)"
                                                + (STEPWISE_NOTE if len(pipe.latent_shape) == 2 else "")}}   # (T, latent): DRAW
    if set(FACTOR_METRICS) & set(names):
        out.update(_disentanglement(pipe, names, n, seed, proto.data_dir))
    if "error" in names:
        res = error_fn()
        out["error"] = {"value": res["error_rate"],
                        "protocol": {"data": res["data"], "examples": res["examples"], "cross_entropy": res["cross_entropy"],
                                     "rule": res["protocol"]}}
    return out


def _disentanglement(pipe, names: list[str], n: int, seed: int, data_dir=None) -> dict:
    """mig / factor-score / dci of the posterior means of the first n validation examples."""
    from vaezoo.data import load_dataset
    from vaezoo.evaluation import disentanglement as D

    name = pipe.config["recipe"]["data"]["name"]
    ds = load_dataset(name, "val", data_dir=data_dir)
    n = min(n, len(ds))
    codes = encode_all(pipe, ds.float_batch(slice(0, n)))[0]
    factors = ds.factors[:n]
    base = {"data": f"{name}:val, the first {n} of {len(ds)} examples",
            "codes": f"posterior means of q(z|x), {codes.shape[1]} dims (representation space z)",
            "factors": ", ".join(f"{f} ({k})" for f, k in zip(ds.info.factors, ds.info.factor_sizes))}
    out: dict = {}
    if "mig" in names:
        res = D.mig(codes, factors, BINS)
        out["mig"] = {"value": res["value"], "per_factor": dict(zip(ds.info.factors, res["per_factor"])),
                      "protocol": {**base, "bins": f"{BINS} equal-width bins per code dim",
                                   "definition": "mean over factors of (top-1 - top-2 MI with a code dim) / H(factor)"}}
    if "factor-score" in names:
        res = D.factor_score(codes, factors, batch=VOTE_BATCH, train_votes=VOTES, eval_votes=VOTES, prune=PRUNE, seed=seed)
        out["factor-score"] = {"value": res["value"], "train_accuracy": res["train_accuracy"],
                               "protocol": {**base, "L": VOTE_BATCH, "votes": f"{VOTES} training + {VOTES} evaluation",
                                            "seed": seed, "active_dims": f"{res['active_dims']} (variance >= {PRUNE})",
                                            "draws": f"each vote fixes one factor value and takes {VOTE_BATCH} of these examples"}}
    if "dci" in names:
        res = D.dci(codes, factors)
        out["dci"] = {"value": res["value"], "informativeness_per_factor": dict(zip(ds.info.factors, res["informativeness_per_factor"])),
                      "protocol": {**base, "split": "first 80 % fit, last 20 % score informativeness",
                                   "regressor": "numpy gradient-boosted stumps on each factor's class index, 200 rounds, "
                                                "rate 0.2 (not disentanglement_lib's sklearn GBT classifier)",
                                   "informativeness": "held-out accuracy of the rounded prediction"}}
    return out


def record(folder: Path, results: dict, backend: str) -> None:
    """Merge ``results`` into folder/metrics.json["evaluation"] and refresh its manifest entry."""
    from vaezoo.io.files import read_json, write_json
    from vaezoo.store.checkpoint import CONFIG, MANIFEST_KEY, METRICS as METRICS_FILE, file_digest, read_config, write_config
    from vaezoo.store.graph_swap import _lock   # the lock export's graph swap takes: config.json is rewritten by both
    from vaezoo.version import __version__

    folder = Path(folder)
    read_config(folder)   # a vaezoo checkpoint, or a one-line error before anything is written
    with _lock(folder, exclusive=True):
        path = folder / METRICS_FILE
        data = read_json(path) if path.is_file() else {}
        if not isinstance(data, dict):
            raise UsageError(f"{path} is not a vaezoo metrics file (a JSON object); not recording")
        ev = data.setdefault("evaluation", {})
        for name, res in results.items():
            ev[name] = {**res, "backend": backend, "vaezoo_version": __version__}
        write_json(path, data)
        config = read_json(folder / CONFIG)   # as stored (read_config would complete a format-1 recipe)
        if isinstance(config.get(MANIFEST_KEY), dict):
            size, digest = file_digest(path)
            config[MANIFEST_KEY][METRICS_FILE] = {"size": size, "sha256": digest}
            write_config(folder, config)
