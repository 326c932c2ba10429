"""The experiment scripts run end to end (a few training steps) and print their tables."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(REPO / "scripts" / script), *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=600)


def test_table1_prints_ours_beside_the_paper(tmp_path):
    r = _run("table1.py", "--models", "m2,m1m2", "--labels", "100", "--seeds", "0,1", "--steps", "4",
             "--threads", "1", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    row = next(line for line in r.stdout.splitlines() if line.strip().startswith("100 |"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[2] == "11.97 (± 1.71)" and cells[4] == "3.33 (± 0.14)"   # the paper's M2 and M1+M2
    assert "(±" in cells[1] and "(±" in cells[3]                           # ours: mean (± std) over 2 seeds
    runs = json.loads((tmp_path / "table1.json").read_text())
    assert {(r["id"], r["seed"]) for r in runs} == {(f, s) for f in ("m2-100-mnist5k", "m1m2-100-mnist5k") for s in (0, 1)}
    assert all(r["labelled"] == 100 and r["examples"] == 500 for r in runs)
    # finished runs are reused: a second call trains nothing
    again = _run("table1.py", "--models", "m2", "--labels", "100", "--seeds", "0", "--steps", "4", "--out", str(tmp_path))
    assert again.returncode == 0 and "training" not in again.stderr
    # --paper-nets: M2 with the paper's MLP q(y|x), and no shifts for either model, in runs of their own
    paper = _run("table1.py", "--labels", "100", "--seeds", "0", "--steps", "4", "--paper-nets", "--out", str(tmp_path))
    assert paper.returncode == 0 and "the paper's nets" in paper.stdout, paper.stderr
    recs = {f: json.loads((tmp_path / f"{f}-100-mnist5k-seed0-steps4-paper-nets" / "config.json").read_text())["recipe"]
            for f in ("m2", "m1m2")}
    assert recs["m2"]["model"]["classifier_backbone"] == "mlp"
    assert recs["m2"]["objective"]["shift"] == 0 and recs["m1m2"]["objective"]["shift"] == 0
    # --weighting sum: the paper's J^alpha / N, in runs of its own, and the table says which weighting it used
    summed = _run("table1.py", "--models", "m2", "--labels", "100", "--seeds", "0", "--steps", "4", "--weighting", "sum",
                  "--out", str(tmp_path))
    assert summed.returncode == 0 and "weighting sum" in summed.stdout and "training" in summed.stderr, summed.stderr
    rec = json.loads((tmp_path / "m2-100-mnist5k-seed0-steps4-sum" / "config.json").read_text())["recipe"]
    assert rec["objective"]["weighting"] == "sum"


def test_untapped_experiment_prints_both_models(tmp_path):
    r = _run("untapped_experiment.py", "--steps", "4", "--labels", "50", "--per-class", "20", "--threads", "1",
             "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = {line.split("|")[0].strip(): line for line in r.stdout.splitlines() if "|" in line}
    assert {"m2", "untapped"} <= set(rows)
    res = json.loads((tmp_path / "untapped.json").read_text())
    for kind in ("m2", "untapped"):
        (one,) = res[kind]
        assert sorted(one["permutation"]) == list(range(10))             # Hungarian matching: a permutation
        assert one["held_out"] == int((_val_labels() >= 5).sum()) and one["ce_5to9"] > 0
        assert 0.0 <= one["consistency"] <= 1.0
    assert "Untapped's inverted bound: weight" in r.stdout
    # flags override the recipe's inverted bound, and the run folder names what was overridden
    r = _run("untapped_experiment.py", "--steps", "4", "--labels", "50", "--per-class", "20", "--threads", "1",
             "--weight", "0.5", "--no-entropy", "--sample", "relaxed", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "weight 0.5, decoder-entropy term off, p(x~) uniform, x~ = relaxed-Bernoulli draw" in r.stdout
    rec = json.loads((tmp_path / "untapped-seed0-L50-steps4-w0.5-noH-relaxed" / "config.json").read_text())["recipe"]
    assert rec["objective"]["inverse_sample"] == "relaxed" and rec["objective"]["inverse_entropy"] is False
    assert "training m2" not in r.stderr       # M2 has no inverted bound: its finished run is reused


def _val_labels():
    from vaezoo.data import load_dataset

    return load_dataset("mnist5k", "val").y


def test_taming_table_prints_ours_beside_the_slides(tmp_path):
    r = _run("taming_table.py", "--seeds", "0,1", "--steps", "3", "--draws", "2", "--examples", "64", "--threads", "1",
             "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")[1:]] for line in r.stdout.splitlines() if "|" in line}
    assert {"VAE", "beta-VAE (0.5)", "GECO", "GECO + IWAE"} <= set(rows)
    assert rows["VAE"][-2:] == ["1.58", "55.85"] and rows["GECO + IWAE"][-2:] == ["1.36", "12.92"]   # the slides' MNIST numbers
    assert "(±" in rows["GECO"][0] and "(±" in rows["GECO"][3] and rows["VAE"][3] == "-"            # ours over 2 seeds; lambda for GECO only
    res = json.loads((tmp_path / "taming.json").read_text())
    assert {(x["id"], x["seed"]) for x in res} == {(f"{f}-mnist5k", s) for f in ("vae", "beta-half", "geco", "geco-iwae") for s in (0, 1)}
    assert all(x["examples"] == 64 and x["squared_error"] > 0 and x["steps"] == 3 for x in res)
    from PIL import Image

    for x in res:   # 16 inputs over their reconstructions (28 px + 2 px padding a cell), and training's samples
        assert Image.open(x["grids"]["reconstructions"]).size == (2 + 16 * 30, 2 + 2 * 30)
        assert Image.open(x["grids"]["samples"]).size == (2 + 8 * 30, 2 + 8 * 30)
    assert Image.open(tmp_path / "grids.png").size == (2 + 16 * 30, 4 * (2 * (2 + 2 * 30) - 30))   # per model: 2 + 1 rows
    again = _run("taming_table.py", "--models", "geco", "--seeds", "0", "--steps", "3", "--examples", "64", "--out", str(tmp_path))
    assert again.returncode == 0 and "training" not in again.stderr   # finished runs are reused


def test_marginal_kl_is_zero_when_every_posterior_is_the_prior():
    """The estimator's definition: q(z|x) = p(z) = N(0, I) for every x gives KL(q(z) || p(z)) ~ 0, and a
    posterior shifted by 3 in every one of D dimensions gives about D * 4.5 (its KL to the prior)."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("taming_table", REPO / "scripts" / "taming_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    class Fixed(torch.nn.Module):
        def __init__(self, shift):
            super().__init__()
            self.shift = shift
            from vaezoo.models.flow import build_prior

            self.prior = build_prior({"kind": "standard"}, 4)

        def encoder(self, x):
            return torch.full((x.shape[0], 4), self.shift), torch.zeros(x.shape[0], 4)

    torch.manual_seed(0)
    x = torch.zeros(400, 1)
    assert abs(mod.marginal_kl(Fixed(0.0), x, draws=5)) < 0.05
    assert abs(mod.marginal_kl(Fixed(3.0), x, draws=5) - 4 * 4.5) < 0.3


def test_conditional_labels_agrees_with_sample_and_classify(tmp_path):
    """The script's share for a class is what `vaezoo sample --label` then `vaezoo classify` give."""
    from conftest import run_cli, train_tiny

    folder = train_tiny("cvae-label-mnist5k", tmp_path / "cvae-label")
    r = _run("conditional_labels.py", str(folder), "--per-class", "5", "--seed", "10", "--backend", "torch", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert list(res["per_class"]) == [str(k) for k in range(10)] and res["classifier"] == "m2-mnist5k"
    assert abs(res["overall"] - sum(res["per_class"].values()) / 10) < 1e-9 and 0 < res["diversity"]
    s = tmp_path / "threes.npy"   # class 3's noise comes from seed 10 + 3
    assert run_cli("sample", str(folder), "-n", "5", "--label", "3", "--seed", "13", "--backend", "torch", "-o", str(s)).returncode == 0
    c = run_cli("classify", "m2-mnist5k", str(s), "-o", str(tmp_path / "c.csv"))
    assert c.returncode == 0, c.stderr
    labels = [line.split(",")[3] for line in (tmp_path / "c.csv").read_text().splitlines()[1:]]
    assert res["per_class"]["3"] == labels.count("3") / 5
    r = _run("conditional_labels.py", "vae-mnist5k")
    assert r.returncode != 0 and "is not label-conditional" in r.stderr
    import importlib.util

    spec = importlib.util.spec_from_file_location("conditional_labels", REPO / "scripts" / "conditional_labels.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    a = np.zeros((3, 1, 2, 2))
    a[1] += 1.0                                   # pairs at RMS distance 1, 1 and 0
    assert mod.mean_pair_distance(a) == pytest.approx(2 / 3) and mod.mean_pair_distance(np.ones((4, 5))) == 0


def test_iwae_table_prints_k_rows_beside_the_paper(tmp_path):
    r = _run("iwae_table.py", "--ks", "1,3", "--steps", "3", "--nll-samples", "4", "--threads", "1", "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")[1:]] for line in r.stdout.splitlines() if "|" in line}
    assert rows["1"][0] == "vae-mnist5k" and rows["3"][0] == "iwae-mnist5k"      # k = 1 is the VAE
    assert rows["1"][-3:] == ["86.76", "86.76", "19 / 19"] and rows["3"][-3:] == ["-", "-", "-"]   # Burda et al.'s k = 1; no k = 3 row
    res = {x["k"]: x for x in json.loads((tmp_path / "iwae.json").read_text())}
    assert set(res) == {1, 3}
    for k, x in res.items():
        assert x["steps"] == 3 and x["nll_samples"] == 4 and x["examples"] == 500
        assert math.isfinite(x["nll"]) and math.isfinite(x["neg_elbo"]) and 0 <= x["active_units"] <= 16
        assert x["image_samples_per_s"] == pytest.approx(k * x["images_per_s"])
    rec = json.loads((tmp_path / "iwae-mnist5k-k3-seed0-steps3-K4" / "config.json").read_text())["recipe"]
    assert rec["objective"] == {"name": "iwae", "k": 3}                       # the override reached the trainer
    again = _run("iwae_table.py", "--ks", "3", "--steps", "3", "--nll-samples", "4", "--out", str(tmp_path))
    assert again.returncode == 0 and "training" not in again.stderr           # finished runs are reused
    bad = _run("iwae_table.py", "--ks", "0", "--out", str(tmp_path / "bad"))
    assert bad.returncode != 0 and "at least 1" in bad.stderr and not (tmp_path / "bad").exists()
