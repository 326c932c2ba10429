"""Disentanglement metrics of codes against ground-truth factors (numpy only, torch-free).

Inputs everywhere: ``codes`` (N x D float, the encoder's posterior means) and ``factors`` (N x K int
class indices of the ground-truth factors of the same N examples).

* :func:`mig` (Chen et al. 2018): each code dim discretised into ``bins`` equal-width bins over its range
  (disentanglement_lib's histogram discretisation), the mutual information I(z_j; v_k) of the counts, and
  ``1/K sum_k (I(z_j*; v_k) - I(z_j°; v_k)) / H(v_k)`` over the two dims with the highest MI per factor.
* :func:`factor_score` (Kim & Mnih 2018): dims whose variance over the N examples is below ``prune``
  (disentanglement_lib's 0.05) dropped as collapsed, the rest divided by their std over the N; each vote
  fixes one factor k at one value, takes ``batch`` examples with that value, and votes (argmin-variance dim,
  k); a majority-vote classifier (dim -> its most frequent factor in the training votes) is scored on
  fresh evaluation votes. Votes draw from the N examples, not from fresh renders.
* :func:`dci` (Eastwood & Williams 2018): importance matrix R (D x K) from gradient-boosted regression
  *stumps* (depth-1 trees, numpy) fitted per factor to its class index; R[d, k] = the squared-error
  reduction of the splits on dim d, normalised per factor. Not the sklearn GradientBoostingClassifier of
  disentanglement_lib: regression on the class index, stumps only. Disentanglement = sum_d rho_d (1 - H_K(P_d)),
  completeness = mean_k (1 - H_D(R[:, k])), informativeness = held-out accuracy of the rounded prediction.
"""

from __future__ import annotations

import numpy as np

from vaezoo.errors import UsageError


def _entropy(p: np.ndarray, axis: int = 0) -> np.ndarray:
    """Shannon entropy (nats) of probability vectors along ``axis``; 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=axis)


def discretise(codes: np.ndarray, bins: int) -> np.ndarray:
    """Each column of ``codes`` into ``bins`` equal-width bins over its own range (ints 0..bins-1)."""
    codes = np.asarray(codes, dtype=np.float64)
    lo, hi = codes.min(0), codes.max(0)
    width = np.where(hi > lo, hi - lo, 1.0)
    return np.minimum(((codes - lo) / width * bins).astype(np.int64), bins - 1)


def mutual_info(a: np.ndarray, b: np.ndarray) -> float:
    """I(a; b) in nats of two integer arrays, from their joint counts."""
    _, ia = np.unique(a, return_inverse=True)
    _, ib = np.unique(b, return_inverse=True)
    joint = np.zeros((ia.max() + 1, ib.max() + 1))
    np.add.at(joint, (ia, ib), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1, keepdims=True), joint.sum(0, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log(joint[nz] / (pa @ pb)[nz])))


def factor_entropy(v: np.ndarray) -> float:
    return float(_entropy(np.unique(v, return_counts=True)[1] / len(v)))


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> dict:
    """{"value": MIG, "per_factor": [normalised gap per factor, None if constant], "mi": D x K MI matrix (nats)}."""
    if codes.shape[1] < 2:
        raise UsageError("mig needs codes of at least 2 dimensions (a gap between the two most informative)")
    z = discretise(codes, bins)
    mi = np.array([[mutual_info(z[:, j], factors[:, k]) for k in range(factors.shape[1])] for j in range(z.shape[1])])
    top = np.sort(mi, axis=0)[::-1]
    h = np.array([factor_entropy(factors[:, k]) for k in range(factors.shape[1])])
    varied = h > 0   # a factor constant in the examples has no entropy to normalise by: left out (None)
    gaps = [float((top[0, k] - top[1, k]) / h[k]) if varied[k] else None for k in range(len(h))]
    return {"value": float(np.mean([g for g in gaps if g is not None])), "per_factor": gaps, "mi": mi.tolist()}


def _votes(z: np.ndarray, factors: np.ndarray, n: int, batch: int, rng) -> np.ndarray:
    """n votes (dim, factor): a factor k and one of its values uniformly, ``batch`` examples with that value."""
    out = np.empty((n, 2), dtype=np.int64)
    groups = [{v: np.flatnonzero(factors[:, k] == v) for v in np.unique(factors[:, k])} for k in range(factors.shape[1])]
    for i in range(n):
        k = int(rng.integers(len(groups)))
        values = list(groups[k])
        rows = groups[k][values[int(rng.integers(len(values)))]]
        pick = rng.choice(rows, size=batch, replace=False)
        out[i] = int(np.argmin(z[pick].var(axis=0))), k
    return out


def factor_score(codes: np.ndarray, factors: np.ndarray, *, batch: int = 64, train_votes: int = 800,
                 eval_votes: int = 800, prune: float = 0.05, seed: int = 0) -> dict:
    """{"value": the majority-vote classifier's accuracy on the evaluation votes, "train_accuracy", "active_dims"}."""
    for k in range(factors.shape[1]):
        values, counts = np.unique(factors[:, k], return_counts=True)
        if counts.min() < batch:
            raise UsageError(f"factor-score: only {counts.min()} examples have factor {k} = {values[counts.argmin()]}; "
                             f"each vote needs {batch}: give more examples (--samples)")
    codes = np.asarray(codes, dtype=np.float64)
    var = codes.var(axis=0)
    active = np.flatnonzero(var >= prune)
    if len(active) == 0:   # every dim collapsed: no vote can be cast (disentanglement_lib scores 0 too)
        return {"value": 0.0, "train_accuracy": 0.0, "active_dims": 0}
    z = codes[:, active] / np.sqrt(var[active])
    rng = np.random.default_rng(seed)
    train = _votes(z, factors, train_votes, batch, rng)
    test = _votes(z, factors, eval_votes, batch, rng)
    counts = np.zeros((len(active), factors.shape[1]), dtype=np.int64)
    np.add.at(counts, (train[:, 0], train[:, 1]), 1)
    guess = counts.argmax(axis=1)   # dim -> the factor it most often answered for (ties: the lowest factor)
    return {"value": float(np.mean(guess[test[:, 0]] == test[:, 1])),
            "train_accuracy": float(np.mean(guess[train[:, 0]] == train[:, 1])), "active_dims": int(len(active))}


def boosted_stumps(x: np.ndarray, y: np.ndarray, rounds: int, lr: float):
    """Least-squares gradient boosting with depth-1 trees: (predict(x'), gain per column of x)."""
    n, d = x.shape
    order = np.argsort(x, axis=0, kind="stable")
    xs = np.take_along_axis(x, order, axis=0)
    base = float(y.mean())
    pred = np.full(n, base)
    gain = np.zeros(d)
    stumps = []
    counts = np.arange(1, n)[:, None]
    ties = xs[1:] == xs[:-1]                            # no threshold between equal values
    for _ in range(rounds):
        r = y - pred
        rs = r[order]                                   # residuals sorted per column: n x d
        left = np.cumsum(rs, axis=0)[:-1]               # sum of the first i+1 residuals
        total = r.sum()
        # squared-error reduction of splitting after row i: S_l^2/n_l + S_r^2/n_r - S^2/n
        red = left ** 2 / counts + (total - left) ** 2 / (n - counts) - total ** 2 / n
        red[ties] = -np.inf
        i, j = np.unravel_index(np.argmax(red), red.shape)
        if not np.isfinite(red[i, j]):
            break
        thr = 0.5 * (xs[i, j] + xs[i + 1, j])
        lv, rv = left[i, j] / (i + 1), (total - left[i, j]) / (n - i - 1)
        stumps.append((j, thr, lr * lv, lr * rv))
        gain[j] += red[i, j]
        pred += np.where(x[:, j] <= thr, lr * lv, lr * rv)

    def predict(xq: np.ndarray) -> np.ndarray:
        out = np.full(len(xq), base)
        for j, thr, lv, rv in stumps:
            out += np.where(xq[:, j] <= thr, lv, rv)
        return out

    return predict, gain


def dci(codes: np.ndarray, factors: np.ndarray, *, train_share: float = 0.8, rounds: int = 200, lr: float = 0.2) -> dict:
    """{"value": {"disentanglement", "completeness", "informativeness"}, "importance": D x K}; the first
    ``train_share`` of the rows fit the stumps, the rest score informativeness."""
    codes = np.asarray(codes, dtype=np.float64)
    n_train = int(round(train_share * len(codes)))
    if n_train < 2 or n_train >= len(codes):
        raise UsageError(f"dci needs examples to fit and to test on; {len(codes)} examples are too few")
    d, k = codes.shape[1], factors.shape[1]
    importance = np.zeros((d, k))
    accuracy = []
    for f in range(k):
        y = factors[:, f].astype(np.float64)
        predict, gain = boosted_stumps(codes[:n_train], y[:n_train], rounds, lr)
        importance[:, f] = gain / gain.sum() if gain.sum() > 0 else 0.0
        guess = np.clip(np.rint(predict(codes[n_train:])), y.min(), y.max())
        accuracy.append(float(np.mean(guess == y[n_train:])))
    total = importance.sum()
    if total == 0:   # nothing predicted any factor: no code is about anything
        return {"value": {"disentanglement": 0.0, "completeness": 0.0, "informativeness": float(np.mean(accuracy))},
                "importance": importance.tolist(), "informativeness_per_factor": accuracy}
    per_code = importance.sum(1)
    p_code = importance / np.where(per_code > 0, per_code, 1.0)[:, None]
    disent = np.sum(per_code / total * (1 - _entropy(p_code, axis=1) / np.log(k))) if k > 1 else 1.0
    used = importance.sum(0) > 0
    complete = np.mean(1 - _entropy(importance[:, used], axis=0) / np.log(d)) if d > 1 else 1.0
    return {"value": {"disentanglement": float(disent), "completeness": float(complete),
                      "informativeness": float(np.mean(accuracy))},
            "importance": importance.tolist(), "informativeness_per_factor": accuracy}
