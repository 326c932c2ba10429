"""Parity of exported graphs with the torch parts they came from.

Torch (fp32, CPU, eager) against ONNX Runtime (CPU), on the same numpy inputs. ``--check`` requires the
max difference over all outputs, absolute where |torch| <= 1 and relative above (:func:`max_diff`), to be
<= :data:`TOLERANCE` for fp32 graphs at batch 1 and 64: float32 keeps ~7 digits, so a logit of 260 after 16
recurrent DRAW steps is 1.7e-4 off in absolute terms and 7e-7 in relative ones. fp16 / int8 variants only
report their absolute differences.
"""

from __future__ import annotations

import numpy as np

TOLERANCE = 1e-4
CHECK_BATCHES = (1, 64)


def example_inputs(specs: list[tuple[str, list]], config: dict, batch: int, seed: int = 0) -> list[np.ndarray]:
    """Deterministic inputs for a part: images uniform in [0, 1], latents N(0, I), labels one-hot."""
    rng = np.random.default_rng(seed)
    out = []
    for name, shape in specs:
        full = (batch, *shape)
        if name == "x" and config["input"]["kind"] == "image":
            arr = rng.random(full)
        elif name == "y":
            arr = np.eye(shape[0])[rng.integers(0, shape[0], batch)]
        else:
            arr = rng.standard_normal(full)
        out.append(arr.astype(np.float32))
    return out


def torch_run(module, arrays: list[np.ndarray]) -> list[np.ndarray]:
    import torch

    with torch.inference_mode():
        outs = module(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays))
    if not isinstance(outs, (tuple, list)):
        outs = (outs,)
    return [o.detach().cpu().numpy() for o in outs]


def cpu_session(model_bytes: bytes, threads: int | None = None):
    import onnxruntime as ort

    from vaezoo.runtime.onnx_backend import physical_cores

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or physical_cores()
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=so, providers=["CPUExecutionProvider"])


def ort_run(session, arrays: list[np.ndarray]) -> list[np.ndarray]:
    names = [i.name for i in session.get_inputs()]
    return list(session.run(None, dict(zip(names, arrays))))


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    if len(a) != len(b):
        return float("inf")
    worst = 0.0
    for x, y in zip(a, b):
        if x.shape != y.shape:
            return float("inf")
        if x.size == 0:
            continue
        d = np.abs(x.astype(np.float64) - y.astype(np.float64))
        if not np.isfinite(d).all():
            return float("inf")
        worst = max(worst, float(d.max()))
    return worst


def max_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """max |a - b| / max(1, |a|) over all outputs (``a``: torch's); inf when shapes differ or not finite."""
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)):
        return float("inf")
    worst = 0.0
    for x, y in zip(a, b):
        if x.size:
            x64 = x.astype(np.float64)
            d = np.abs(x64 - y.astype(np.float64)) / np.maximum(1.0, np.abs(x64))
            if not np.isfinite(d).all():
                return float("inf")
            worst = max(worst, float(d.max()))
    return worst


def compare(module, session, specs, config, batches=CHECK_BATCHES, seed: int = 0) -> dict[str, float]:
    """{"batch_1": max diff, "batch_64": ...} of torch vs ORT (:func:`max_diff`)."""
    res = {}
    for b in batches:
        xs = example_inputs(specs, config, b, seed + b)
        res[f"batch_{b}"] = max_diff(torch_run(module, xs), ort_run(session, xs))
    return res


def flow_roundtrip(fwd_session, inv_session, latent_shape: list[int], batch: int = 64, seed: int = 7) -> float:
    """max |prior_inverse(prior_forward(z)) - z| through ONNX Runtime, for codes of ``latent_shape``."""
    z = np.random.default_rng(seed).standard_normal((batch, *latent_shape)).astype(np.float32)
    eps, _ = ort_run(fwd_session, [z])
    (back,) = ort_run(inv_session, [eps])
    return float(np.abs(back.astype(np.float64) - z).max())
