"""Does a label-conditional generator draw the digit it is asked for? The zoo's digit classifier judges.

For each class k, ``MODEL`` (a label-conditional checkpoint: ``cdraw-*``, ``cvae-label-*``; an id or a folder)
draws ``--per-class`` samples with ``label = k`` (noise from numpy, ``--seed``), and the classifier (default: the
bundled ``m2-mnist5k``'s q(y|x), 3.8 % error on mnist5k's held-out digits) labels them. Reported: the share of
samples read as the class asked for, per class and overall (chance: 10 %). The classifier's own error bounds
what this can show: a perfect generator would score about 96 %.

Also the spread within a class, to see a collapsed latent (one template per class scores well on the share):
``diversity`` = the mean distance between two samples of the same class (RMS over pixels, averaged over the
classes), divided by the same for the model's held-out digits of that class (up to --per-class each): 1 means
as varied as real digits, 0 one image per class.

    python scripts/conditional_labels.py cdraw-mnist5k --per-class 100
    python scripts/conditional_labels.py path/to/checkpoint --classifier m2-mnist5k --json

Measured: benchmarks/README.md, "DRAW on mnist5k".
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def mean_pair_distance(x: np.ndarray) -> float:
    """Mean RMS pixel distance over the pairs of rows of x, from the Gram matrix."""
    f = x.reshape(len(x), -1).astype(np.float64)
    sq = (f * f).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * f @ f.T, 0) / f.shape[1]
    n = len(f)
    return float(np.sqrt(d2)[~np.eye(n, dtype=bool)].mean())


def held_out_digits(model) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the validation split of the model's dataset: the real digits ``diversity`` compares with."""
    from vaezoo.data import load_dataset

    val = load_dataset(model.config["recipe"]["data"]["name"], "val")
    return val.float_batch(slice(None)), val.y


def label_rates(model, classifier, per_class: int, seed: int, real=None) -> dict:
    """{label: share of its samples the classifier reads as that label}, "overall", and with ``real`` ((x, y)
    held-out digits) the "diversity" of the samples against theirs."""
    shares, spread = {}, []
    for k, name in enumerate(model.labels):
        x = model.sample(per_class, seed=seed + k, label=k)
        shares[name] = float((classifier.classify_logits(x).argmax(1) == k).mean())
        if real is not None and per_class > 1:
            spread.append(mean_pair_distance(x) / mean_pair_distance(real[0][real[1] == k][:per_class]))
    res = {"per_class": shares, "overall": float(np.mean(list(shares.values())))}
    if spread:
        res["diversity"] = float(np.mean(spread))
    return res


def main(argv=None) -> int:
    from vaezoo import load
    from vaezoo.errors import UsageError

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a label-conditional model: registry id or checkpoint folder")
    ap.add_argument("--classifier", default="m2-mnist5k", help="the judge: a model with a classifier")
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="class k's noise is drawn from seed + k")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    model, judge = load(args.model, backend=args.backend), load(args.classifier)
    if not model.conditional:
        raise SystemExit(f"error: {model.id} is not label-conditional")
    if not judge.has_classifier() or judge.labels != model.labels:
        raise SystemExit(f"error: {judge.id} cannot judge {model.id}'s classes")
    try:
        res = label_rates(model, judge, args.per_class, args.seed, held_out_digits(model))
    except UsageError as exc:
        raise SystemExit(f"error: {exc}") from None
    res.update(model=model.id, classifier=judge.id, per_class_samples=args.per_class, seed=args.seed)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{model.id}: share of {args.per_class} samples per class that {judge.id} reads as the class asked for")
        print(" ".join(f"{k}:{v:.2f}" for k, v in res["per_class"].items()), f"| overall {res['overall']:.3f} (chance 0.100)")
        if "diversity" in res:
            print(f"diversity {res['diversity']:.3f} (mean distance between same-class samples / between same-class "
                  "held-out digits: 1 = as varied as real digits, 0 = one image per class)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
