"""The bundled starters load with the current code and still meet their recorded validation metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vaezoo.models.loading import load_model
from vaezoo.data import load_dataset
from vaezoo.store.resolution import bundled_dir, bundled_ids

REPO = Path(__file__).resolve().parent.parent
REQUIRED = ["vae-mnist5k", "dp-vae-mnist5k", "dp-factor-mnist5k", "factor-mnist5k", "m2-mnist5k"]


def test_required_starters_are_bundled_with_graphs():
    have = bundled_ids()
    for mid in REQUIRED:
        assert mid in have, f"{mid} is not bundled (run scripts/build_starters.py)"
        folder = bundled_dir(mid)
        for part in ("encoder", "decoder", "prior_forward", "prior_inverse"):
            assert (folder / "onnx" / f"{part}.onnx").is_file(), f"{mid}: onnx/{part}.onnx missing"
        assert (folder / "README.md").is_file() and (folder / "metrics.json").is_file()


@pytest.mark.parametrize("mid", [m for m in REQUIRED if m != "m2-mnist5k"])
def test_starter_meets_its_recorded_nll(mid):
    model, config = load_model(bundled_dir(mid))
    recorded = json.loads((bundled_dir(mid) / "metrics.json").read_text())["validation"]
    val = load_dataset("mnist5k", "val")
    x = torch.from_numpy(val.x[: recorded["examples"]]).float() / 255.0
    now = model.validation_metrics(x, None, recorded["nll_samples"])
    # Same code, same seed: equal up to floating-point differences between machines.
    assert now["nll"] <= recorded["nll"] + 0.5, (now["nll"], recorded["nll"])
    assert abs(now["neg_elbo"] - recorded["neg_elbo"]) < 0.5
    assert recorded["nll_samples"] >= 1000


def test_starters_give_the_outputs_they_gave_before_the_layout_change():
    """sample / encode / reconstruct / classify of every starter, both backends, against the outputs the
    code before the package redesign wrote (tests/golden, made by scripts/starter_outputs.py at dff7813)."""
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import starter_outputs
    finally:
        sys.path.remove(str(REPO / "scripts"))
    diffs = starter_outputs.differences(REPO / "tests" / "golden" / "starters_before_layout.npz")
    assert len(diffs) == 39
    # ONNX Runtime gives the golden machine's numbers to 1e-6. Torch's CPU kernels round differently on
    # other CPUs: on an AVX-512 Xeon the code of the golden commit itself differs by up to 2e-6 (a latent
    # mean near 10, then the flow), so torch gets 1e-5, still far below any change of code or weights.
    for backend, bound in (("onnx", 1e-6), ("torch", 1e-5)):
        mine = {k: d for k, d in diffs.items() if f"/{backend}/" in k}
        assert mine, backend
        worst = max(mine, key=mine.get)
        assert mine[worst] <= bound, (worst, mine[worst])


def test_the_bundled_fid_classifier_meets_its_recorded_accuracy_through_onnx():
    """lenet-mnist5k (FID-LeNet's feature net) ships with its graph, so `vaezoo evaluate` needs no training first."""
    import numpy as np

    from vaezoo.evaluation.features import load_feature_net

    recorded = json.loads((bundled_dir("lenet-mnist5k") / "metrics.json").read_text())["validation"]
    net = load_feature_net("lenet-mnist5k", offline=True)
    val = load_dataset("mnist5k", "val")
    logits, feats = net.run(val.float_batch(slice(None)))
    assert feats.shape == (500, 84) and recorded["examples"] == 500
    assert float(np.mean(logits.argmax(1) != val.y)) == pytest.approx(recorded["error_rate"], abs=1e-9)
    assert recorded["error_rate"] < 0.03
