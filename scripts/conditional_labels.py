"""Does a label-conditional generator draw the digit it is asked for? The zoo's digit classifier judges.

For each class k, ``MODEL`` (a label-conditional checkpoint: ``cdraw-*``, ``cvae-label-*``; an id or a folder)
draws ``--per-class`` samples with ``label = k`` (noise from numpy, ``--seed``), and the classifier (default: the
bundled ``m2-mnist5k``'s q(y|x), 3.8 % error on mnist5k's held-out digits) labels them. Reported: the share of
samples read as the class asked for, per class and overall (chance: 10 %). The classifier's own error bounds
what this can show: a perfect generator would score about 96 %.

    python scripts/conditional_labels.py cdraw-mnist5k --per-class 100
    python scripts/conditional_labels.py path/to/checkpoint --classifier m2-mnist5k --json

Measured: benchmarks/README.md, "DRAW on mnist5k".
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def label_rates(model, classifier, per_class: int, seed: int) -> dict:
    """{label: share of its samples the classifier reads as that label}, and "overall"."""
    shares = {}
    for k, name in enumerate(model.labels):
        x = model.sample(per_class, seed=seed + k, label=k)
        shares[name] = float((classifier.classify_logits(x).argmax(1) == k).mean())
    return {"per_class": shares, "overall": float(np.mean(list(shares.values())))}


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
        res = label_rates(model, judge, args.per_class, args.seed)
    except UsageError as exc:
        raise SystemExit(f"error: {exc}") from None
    res.update(model=model.id, classifier=judge.id, per_class_samples=args.per_class, seed=args.seed)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{model.id}: share of {args.per_class} samples per class that {judge.id} reads as the class asked for")
        print(" ".join(f"{k}:{v:.2f}" for k, v in res["per_class"].items()), f"| overall {res['overall']:.3f} (chance 0.100)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
