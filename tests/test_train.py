"""The trainer: deterministic, resumable (also after a real kill), careful with existing outputs."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from tests.conftest import run_cli, tiny_recipe
from vaezoo.errors import UsageError
from vaezoo.train.trainer import STATE, train


def _weights(folder: Path) -> dict:
    return load_file(str(folder / "model.safetensors"))


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, schedule):
    # dp-factor exercises everything resumable: flow, discriminator + its optimiser, RNG, data order;
    # the cosine learning rate must pick up at the resumed step.
    recipe = tiny_recipe("dp-factor-mnist5k", train={"lr_schedule": schedule})
    train(recipe, tmp_path / "full", device="cpu", progress=False)
    res = train(recipe, tmp_path / "split", device="cpu", progress=False, stop_after=3)
    assert res == {"stopped_at": 3} and (tmp_path / "split" / STATE).is_file()
    assert not (tmp_path / "split" / "model.safetensors").exists()
    train(recipe, tmp_path / "split", device="cpu", progress=False, resume=True)
    assert _same(_weights(tmp_path / "full"), _weights(tmp_path / "split"))
    assert not (tmp_path / "split" / STATE).exists()
    m_full = json.loads((tmp_path / "full" / "metrics.json").read_text())["validation"]
    m_split = json.loads((tmp_path / "split" / "metrics.json").read_text())["validation"]
    assert m_full == m_split


def test_factor_vae_epochs_count_both_batches_of_a_step(tmp_path):
    """FactorVAE reads two batches per step (the second for the permuted codes): metrics.json's epochs
    count every batch read, so 6 steps of 16 are 12 batches."""
    recipe = tiny_recipe("factor-mnist5k")
    metrics = train(recipe, tmp_path / "f", device="cpu", progress=False)
    per_epoch = 4500 // 16
    assert metrics["train"]["epochs"] == round(6 * 2 / per_epoch, 2)
    assert train(tiny_recipe("vae-mnist5k"), tmp_path / "v", device="cpu", progress=False)["train"]["epochs"] == round(6 / per_epoch, 2)


def test_two_stage_boundary_survives_a_resume_with_other_steps(tmp_path):
    """M1's stage boundary (vae_steps) is fixed when the recipe is resolved: a run of 8 steps (boundary 4)
    stopped at step 6 and resumed with --steps 20 stays in stage 2, where M1's encoder is frozen."""
    from safetensors.torch import load_file as load_state

    recipe = tiny_recipe("m1-100-mnist5k", train={"steps": 8, "checkpoint_every": 1}, objective={"vae_steps": 0})
    assert recipe["objective"]["vae_steps"] == 4
    train(recipe, tmp_path / "m1", device="cpu", progress=False, stop_after=6)
    before = load_state(str(tmp_path / "m1" / STATE))
    longer = tiny_recipe("m1-100-mnist5k", train={"steps": 20, "checkpoint_every": 1}, objective={"vae_steps": 0})
    assert longer["objective"]["vae_steps"] == 10   # what a fresh run of 20 steps would use
    train(longer, tmp_path / "m1", device="cpu", progress=False, resume=True, stop_after=8)
    after = load_state(str(tmp_path / "m1" / STATE))
    enc = [k for k in before if k.startswith("model.encoder.")]
    head = [k for k in before if k.startswith("model.head.")]
    assert enc and head
    assert all((before[k] == after[k]).all() for k in enc), "steps 6-8 trained M1's encoder: back in stage 1"
    assert any((before[k] != after[k]).any() for k in head)


def test_cosine_learning_rate_and_unknown_schedule():
    from vaezoo.errors import VaezooError
    from vaezoo.train.trainer import lr_at

    cfg = {"lr": 1e-3, "lr_schedule": "cosine", "lr_final": 0.1}
    assert [round(lr_at(cfg, s, 10), 7) for s in (0, 5, 10)] == [1e-3, 5.5e-4, 1e-4]
    assert lr_at({"lr": 2e-3, "lr_schedule": "constant"}, 7, 10) == 2e-3
    with pytest.raises(VaezooError, match="lr_schedule"):
        lr_at({"lr": 1e-3, "lr_schedule": "step"}, 0, 10)


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    train(tiny_recipe("vae-mnist5k"), tmp_path / "a", device="cpu", progress=False)
    train(tiny_recipe("vae-mnist5k"), tmp_path / "b", device="cpu", progress=False)
    train(tiny_recipe("vae-mnist5k", train={"seed": 1}), tmp_path / "c", device="cpu", progress=False)
    assert _same(_weights(tmp_path / "a"), _weights(tmp_path / "b"))
    assert not _same(_weights(tmp_path / "a"), _weights(tmp_path / "c"))


def test_metrics_json_records_the_protocol(tmp_path):
    recipe = tiny_recipe("dp-vae-mnist5k")
    train(recipe, tmp_path, device="cpu", progress=False)
    m = json.loads((tmp_path / "metrics.json").read_text())
    v = m["validation"]
    assert v["split"] == "val" and v["nll_samples"] == 8 and v["examples"] == 16
    assert v["nll"] <= v["neg_elbo"] + 1.0  # the IS bound is at least as tight as the ELBO (up to MC noise)
    assert abs(v["neg_elbo"] - (v["kl"] + v["recon"])) < 1e-3
    assert m["train"]["steps"] == 6 and m["train"]["seconds"] > 0


def test_existing_output_is_protected(tmp_path):
    recipe = tiny_recipe("vae-mnist5k")
    train(recipe, tmp_path, device="cpu", progress=False)
    with pytest.raises(UsageError, match="--force"):
        train(recipe, tmp_path, device="cpu", progress=False)
    with pytest.raises(UsageError, match="nothing to resume"):
        train(recipe, tmp_path, device="cpu", progress=False, resume=True)
    before = (tmp_path / "model.safetensors").read_bytes()
    train(tiny_recipe("vae-mnist5k", train={"seed": 3}), tmp_path, device="cpu", progress=False, force=True)
    assert (tmp_path / "model.safetensors").read_bytes() != before


def test_cli_train_killed_then_resumed(tmp_path):
    """A real kill: SIGKILL the training process after a checkpoint, then `--resume` finishes it."""
    recipe = tmp_path / "tiny-moons.toml"
    recipe.write_text(
        'family = "dp-vae"\ndataset = "moons"\n'
        "[train]\nsteps = 3000\ncheckpoint_every = 20\nbatch_size = 50\n"
        "[eval]\nnll_samples = 16\nmax_examples = 50\n"
    )
    out = tmp_path / "run"
    exe = [sys.executable, "-c", "from vaezoo.cli import main; main()"]
    proc = subprocess.Popen(exe + ["train", str(recipe), "--out", str(out), "--device", "cpu", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / STATE).exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / STATE).exists() and not (out / "model.safetensors").exists()
    again = run_cli("train", str(recipe), "--out", str(out), "--device", "cpu", "-q")
    assert again.returncode == 2 and "--resume" in again.stderr
    done = run_cli("train", str(recipe), "--out", str(out), "--device", "cpu", "-q", "--resume", "--steps", "200")
    assert done.returncode == 0, done.stderr
    assert "resuming tiny-moons from step" in done.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["train"]["steps"] >= 200 and not (out / STATE).exists()


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not on PATH")
def test_ddp_two_processes_under_torchrun(tmp_path):
    """The trainer runs under torchrun (2 CPU ranks, gloo); only rank 0 writes the checkpoint."""
    out = tmp_path / "ddp"
    res = subprocess.run(
        [shutil.which("torchrun"), "--nproc_per_node", "2", "-m", "vaezoo", "train", "vae-moons",
         "--steps", "20", "--nll-samples", "8", "--out", str(out), "-q", "--device", "cpu"],
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["train"]["world_size"] == 2 and m["train"]["steps"] == 20
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "metrics.json", "model.safetensors"]


@pytest.mark.parametrize("bad_id", ["../../../../tmp/escaped", "/tmp/escaped", "a/b", "..", ".hidden", "x y"])
def test_recipe_id_that_is_a_path_is_refused(tmp_path, bad_id):
    """A recipe's id names a folder of the store; one that would leave it is refused in one line."""
    (tmp_path / "e.toml").write_text(f'family = "vae"\ndataset = "moons"\nid = "{bad_id}"\n')
    home = tmp_path / "home"
    r = run_cli("train", str(tmp_path / "e.toml"), "--steps", "2", env={"VAEZOO_HOME": str(home)}, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "not a valid model id" in r.stderr
    assert not home.exists() and not Path("/tmp/escaped").exists()
