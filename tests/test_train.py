"""The trainer: deterministic, resumable (also after a real kill), careful with existing outputs."""

from __future__ import annotations

import json
import os
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


def test_validation_checks_record_a_curve_that_resumes_and_leave_training_unchanged(tmp_path):
    """train.eval_every: held-out checks during training; their RNG draws are forked off, so the weights equal
    those of a run without checks, and a resumed run keeps the checks made before it stopped."""
    checked = tiny_recipe("dp-factor-mnist5k", train={"eval_every": 2, "checkpoint_every": 2})
    plain = tiny_recipe("dp-factor-mnist5k", train={"eval_every": 0, "checkpoint_every": 2})
    full = train(checked, tmp_path / "full", device="cpu", progress=False)
    none = train(plain, tmp_path / "none", device="cpu", progress=False)
    assert _same(_weights(tmp_path / "full"), _weights(tmp_path / "none"))
    steps = checked["train"]["steps"]
    assert [c["step"] for c in full["validation_curve"]] == list(range(2, steps + 1, 2))
    assert [c["step"] for c in none["validation_curve"]] == [steps]   # the final evaluation only
    assert full["validation_curve"][-1]["neg_elbo"] == round(full["validation"]["neg_elbo"], 4)
    assert len({c["neg_elbo"] for c in full["validation_curve"]}) == len(full["validation_curve"])   # measured each time
    train(checked, tmp_path / "split", device="cpu", progress=False, stop_after=4)
    split = train(checked, tmp_path / "split", device="cpu", progress=False, resume=True)
    assert split["validation_curve"] == full["validation_curve"]


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
    done = run_cli("train", str(recipe), "--out", str(out), "--device", "cpu", "-q", "--resume")
    assert done.returncode == 0, done.stderr
    assert "resuming tiny-moons from step" in done.stderr
    m = json.loads((out / "metrics.json").read_text())
    assert m["train"]["steps"] == 3000 and not (out / STATE).exists()   # the run's own length


DDP_RECIPES = {   # tiny recipe files: M2's bounds and the CGAN's decoder pass are computed outside the model's forward
    "m2": '[model]\nhidden = [32]\nlatent = 4\nclassifier_hidden = [16]\n[data]\nlabels = 100\n',
    "cvae-cgan": '[model]\nhidden = [32]\nlatent = 4\n[objective]\ndisc_channels = [8, 16]\ndisc_hidden = 32\n',
}


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not on PATH")
@pytest.mark.parametrize("model", ["vae-moons", "m2", "cvae-cgan"])
def test_ddp_two_processes_under_torchrun(tmp_path, model):
    """The trainer runs under torchrun (2 CPU ranks, gloo) and the ranks end with the same weights (the trainer
    checks, and refuses to write otherwise: M2's loss, computed outside the model's forward, once left its
    ranks apart under DistributedDataParallel); only rank 0 writes the checkpoint."""
    out = tmp_path / "ddp"
    if model in DDP_RECIPES:
        (tmp_path / f"{model}.toml").write_text(f'family = "{model}"\ndataset = "mnist5k"\n{DDP_RECIPES[model]}')
        model = str(tmp_path / f"{model}.toml")
    res = subprocess.run(
        [shutil.which("torchrun"), "--nproc_per_node", "2", "-m", "vaezoo", "train", model,
         "--steps", "20", "--batch-size", "32", "--nll-samples", "8", "--out", str(out), "-q", "--device", "cpu"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((out / "metrics.json").read_text())
    assert m["train"]["world_size"] == 2 and m["train"]["steps"] == 20
    written = sorted(p.name for p in out.iterdir())   # image models also write their preview grid
    assert written in (["config.json", "metrics.json", "model.safetensors"], ["config.json", "metrics.json", "model.safetensors", "samples.png"])


@pytest.mark.parametrize("bad_id", ["../../../../tmp/escaped", "/tmp/escaped", "a/b", "..", ".hidden", "x y"])
def test_recipe_id_that_is_a_path_is_refused(tmp_path, bad_id):
    """A recipe's id names a folder of the store; one that would leave it is refused in one line."""
    (tmp_path / "e.toml").write_text(f'family = "vae"\ndataset = "moons"\nid = "{bad_id}"\n')
    home = tmp_path / "home"
    r = run_cli("train", str(tmp_path / "e.toml"), "--steps", "2", env={"VAEZOO_HOME": str(home)}, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "not a valid model id" in r.stderr
    assert not home.exists() and not Path("/tmp/escaped").exists()


def _state_of(out: Path) -> dict:
    from vaezoo.train.trainer import load_state

    return load_state(out / STATE)[0]


def test_resume_keeps_what_the_run_was_and_refuses_what_it_cannot_honour(tmp_path):
    """A resumed run is the run it was: another model, another --lr/--seed, or fewer --steps than already
    trained are refused in one line; without --steps it trains to its own length, not the recipe's."""
    out = tmp_path / "run"
    train(tiny_recipe("vae-moons", train={"steps": 12, "checkpoint_every": 3}), out, device="cpu", progress=False, stop_after=6)
    assert _state_of(out)["step"] == 6
    before = (out / STATE).read_bytes()
    cases = [
        (["dp-vae-moons"], "unfinished run of vae-moons"),
        (["vae-moons", "--lr", "0.5"], "--lr 0.5 differs"),
        (["vae-moons", "--seed", "3"], "--seed 3 differs"),
        (["vae-moons", "--steps", "4"], "fewer than the 6 steps"),
    ]
    for args, message in cases:
        r = run_cli("train", *args, "--resume", "--out", str(out), "--device", "cpu", "-q")
        assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)
        assert (out / STATE).read_bytes() == before
    r = run_cli("train", "vae-moons", "--resume", "--seed", "0", "--out", str(out), "--device", "cpu", "-q")
    assert r.returncode == 0, r.stderr   # a setting equal to the run's is fine
    assert json.loads((out / "metrics.json").read_text())["train"]["steps"] == 12


def test_train_never_replaces_files_that_are_not_its_own(tmp_path):
    """A folder with a foreign config.json (or a lone metrics.json) is refused, --force or not; --force on
    a real checkpoint removes that run's files and nothing else (a user's file in onnx/ stays)."""
    foreign = tmp_path / "p"
    foreign.mkdir()
    (foreign / "config.json").write_text("{}\n")
    for extra in ([], ["--force"]):
        r = run_cli("train", "vae-moons", "--steps", "2", "--out", str(foreign), "-q", *extra)
        assert r.returncode == 2 and "not a vaezoo checkpoint" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert sorted(p.name for p in foreign.iterdir()) == ["config.json"] and (foreign / "config.json").read_text() == "{}\n"
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "metrics.json").write_text("[]")
    r = run_cli("train", "vae-moons", "--steps", "2", "--out", str(lone), "-q", "--force")
    assert r.returncode == 2 and (lone / "metrics.json").read_text() == "[]"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    r = run_cli("train", "vae-moons", "--steps", "2", "--out", str(a_file), "-q")
    assert r.returncode == 2 and "is a file" in r.stderr and a_file.read_text() == "x"

    run = tmp_path / "run"
    train(tiny_recipe("vae-moons", train={"steps": 2}), run, device="cpu", progress=False)
    from vaezoo.export import export_checkpoint

    export_checkpoint(run, exporter="torchscript", test_data=True, log=None)
    (run / "onnx" / "notes.txt").write_text("mine")
    (run / "keep.md").write_text("mine too")
    r = run_cli("train", "vae-moons", "--steps", "2", "--out", str(run), "-q", "--force")
    assert r.returncode == 0, r.stderr
    assert (run / "onnx" / "notes.txt").read_text() == "mine" and (run / "keep.md").read_text() == "mine too"
    assert not (run / "onnx" / "decoder.onnx").exists() and not (run / "onnx" / "test_data").exists()


@pytest.mark.parametrize("setting,message", [
    ("[model]\nlatent = -3", "model.latent must be a positive integer"),
    ('[model]\nhidden = "lots"', "model.hidden must be a non-empty list"),
    ("[train]\nlr = nan", "train.lr must be a positive finite number"),
    ("[train]\nbatch_size = 0", "train.batch_size must be a positive integer"),
    ("[prior]\nblocks = 1.5", "prior.blocks must be a positive integer"),
])
def test_recipe_numbers_that_cannot_work_are_refused_before_anything_is_written(tmp_path, setting, message):
    (tmp_path / "r.toml").write_text(f'family = "dp-vae"\ndataset = "moons"\n{setting}\n')
    home = tmp_path / "home"
    r = run_cli("train", str(tmp_path / "r.toml"), env={"VAEZOO_HOME": str(home)})
    assert r.returncode == 2 and message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not home.exists()
    r = run_cli("train", "vae-moons", "--lr", "-1", env={"VAEZOO_HOME": str(home)})
    assert r.returncode == 2 and "train.lr" in r.stderr and not home.exists()


def test_temp_files_of_killed_writers_are_cleaned_and_sigterm_leaves_none(tmp_path):
    """A kill -9 leaves `.<name>.<pid>.*.tmp`; the next write of that file removes it (its writer is gone),
    while a live writer's temp file is kept. SIGTERM unwinds, so it leaves no temp file at all."""
    from vaezoo.io.files import write_bytes

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.bin.{int(dead.stdout)}.abc123.tmp"
    live = tmp_path / f".out.bin.{os.getppid()}.def456.tmp"
    stale.write_bytes(b"half")
    live.write_bytes(b"busy")
    write_bytes(tmp_path / "out.bin", b"done")
    assert (tmp_path / "out.bin").read_bytes() == b"done" and not stale.exists() and live.exists()

    recipe = tmp_path / "long.toml"
    recipe.write_text('family = "vae"\ndataset = "moons"\n[train]\nsteps = 100000\ncheckpoint_every = 1\n')
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-c", "from vaezoo.cli import main; main()", "train", str(recipe), "--out", str(out), "-q",
                             "--device", "cpu"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (out / STATE).exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err   # typer reports a Ctrl-C as exit 130
    assert (out / STATE).exists() and not [p for p in out.iterdir() if p.name.endswith(".tmp")]
