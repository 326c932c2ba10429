"""A model that is not here leads somewhere: one line naming what is ready, what training it takes and
how to use weights from the Hub; `sample` without -o writes samples.png (never over an existing one)."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO, run_cli


def test_the_headline_model_without_weights_says_what_to_do_instead(tmp_path):
    r = run_cli("sample", "dp-factor-celeba", "-n", "64", cwd=tmp_path)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    for needle in ("ready to use: dp-factor-mnist5k", "vaezoo list --available", "`vaezoo train dp-factor-celeba`, 100,000 steps",
                   "vaezoo pull hf-hub:", "GPU time not measured"):
        assert needle in r.stderr, (needle, r.stderr)
    assert list(tmp_path.iterdir()) == []
    r = run_cli("pull", "dp-factor-celeba")
    assert r.returncode == 2 and "--revision" in r.stderr and "ready to use: dp-factor-mnist5k" in r.stderr
    r = run_cli("list", "--available", "--json")
    assert {"dp-factor-mnist5k", "m2-mnist5k"} <= {row["id"] for row in json.loads(r.stdout)}


def test_the_time_estimate_comes_from_the_recorded_step_times(tmp_path):
    times = json.loads((REPO / "train" / "recipes" / "step_times.json").read_text())
    sec = times["cpu"]["seconds_per_step"]["dp-factor-celeba"]
    r = run_cli("sample", "dp-factor-celeba", "-o", str(tmp_path / "x.png"))
    assert f"({sec:.3g} s/step measured by benchmarks/bench_steps.py)" in r.stderr, r.stderr


def test_sample_without_output_writes_samples_png_once(tmp_path):
    r = run_cli("sample", "dp-factor-mnist5k", "-n", "4", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "samples.png").is_file(), r.stderr
    before = (tmp_path / "samples.png").read_bytes()
    r = run_cli("sample", "dp-factor-mnist5k", "-n", "4", "--seed", "1", cwd=tmp_path)
    assert r.returncode == 2 and "--force" in r.stderr and (tmp_path / "samples.png").read_bytes() == before


def test_bench_steps_times_a_recipe_through_the_trainer_step():
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_steps.py"), "vae-moons", "--steps", "1", "--warmup", "0"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if "vae-moons" in ln)
    assert float(line.split()[1]) > 0 and "s/step" in line
