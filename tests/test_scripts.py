"""The experiment scripts run end to end (a few training steps) and print their tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
