"""The conditional VAE (issue #13, first part): half-image masks, training on both conditions, `vaezoo complete`
through both backends (ONNX without torch), export with parity, style transfer with `analogies`, and the
one-line errors of bad input (nothing written)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_cli, tiny_recipe, train_tiny

pytest.importorskip("onnxruntime")


def _digits(folder: Path, n: int = 4) -> tuple[Path, np.ndarray]:
    """The first n held-out mnist5k digits of different classes as PNG files, and their labels."""
    from PIL import Image

    from vaezoo.data import load_dataset

    val = load_dataset("mnist5k", "val")
    idx = [int(np.flatnonzero(val.y == c)[0]) for c in range(n)]
    folder.mkdir(parents=True, exist_ok=True)
    for i in idx:
        Image.fromarray(val.x[i].reshape(28, 28)).save(folder / f"{i:03d}.png")
    return folder, val.y[idx]


@pytest.fixture(scope="module")
def label_cvae(tmp_path_factory) -> Path:
    return train_tiny("cvae-label-mnist5k", tmp_path_factory.mktemp("ck") / "cvae-label-mnist5k")


@pytest.fixture(scope="module")
def half_cvae(tmp_path_factory) -> Path:
    return train_tiny("cvae-mnist5k", tmp_path_factory.mktemp("ck") / "cvae-mnist5k")


def test_half_masks():
    from vaezoo.completion import KEEPS, all_masks, half_mask
    from vaezoo.errors import UsageError

    top, bottom, left, right = (half_mask((1, 28, 28), k) for k in ("top", "bottom", "left", "right"))
    assert top[0, :14].all() and not top[0, 14:].any() and np.array_equal(top + bottom, np.ones((1, 28, 28)))
    assert left[0, :, :14].all() and not left[0, :, 14:].any() and np.array_equal(left + right, np.ones((1, 28, 28)))
    odd = half_mask((3, 27, 27), "bottom")   # the smaller half of an odd side: 13 of 27 rows, every channel
    assert odd.sum() == 3 * 13 * 27 and odd[:, 14:].all()
    assert all_masks((1, 28, 28)).shape == (len(KEEPS), 1, 28, 28)
    with pytest.raises(UsageError, match="--keep must be one of"):
        half_mask((1, 28, 28), "middle")


def test_training_lowers_the_conditional_bound():
    """Forty steps lower the held-out -ELBO of -log p(x|c) well below the untrained network's."""
    from vaezoo.models import build_model
    from vaezoo.store.checkpoint import make_config
    from vaezoo.data import load_dataset
    from vaezoo.train.objectives import build_objective

    torch.manual_seed(0)
    recipe = tiny_recipe("cvae-mnist5k")
    model = build_model(make_config(recipe))
    train_set = load_dataset("mnist5k", "train")
    xv = torch.from_numpy(load_dataset("mnist5k", "val").float_batch(slice(0, 64)))
    before = model.validation_metrics(xv, None, 0)["neg_elbo"]
    objective = build_objective(recipe, len(train_set))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for step in range(40):
        x = torch.from_numpy(train_set.float_batch(slice(step * 32, step * 32 + 32)))
        loss, stats = objective(model, [x], step)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = model.validation_metrics(xv, None, 0)
    assert after["neg_elbo"] < before - 150, (before, after)
    assert "half" in after["conditioned_on"]


def test_recipe_errors_are_one_line():
    from vaezoo.errors import UsageError
    from vaezoo.models import build_model
    from vaezoo.store.checkpoint import make_config
    from vaezoo.train.objectives import build_objective

    with pytest.raises(UsageError, match="objective.keep"):
        build_objective(tiny_recipe("cvae-mnist5k", objective={"keep": ["top", "middle"]}), 10)
    with pytest.raises(UsageError, match="needs a family with completion = true"):
        build_model(make_config(tiny_recipe("cvae-label-mnist5k", model={"condition": "half-image"})))
    with pytest.raises(UsageError, match="unknown model.condition"):
        build_model(make_config(tiny_recipe("cvae-mnist5k", model={"condition": "colour"})))


def test_completion_keeps_the_half_and_uses_the_condition(half_cvae):
    from vaezoo.runtime.pipeline import load_pipeline

    pipe = load_pipeline(str(half_cvae), "torch")
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    kept, done = pipe.complete(x, "left", n=2, seed=5)
    assert done.shape == (3, 2, 1, 28, 28) and np.array_equal(kept[:, :, :, 14:], np.zeros((3, 1, 28, 14)))
    assert np.array_equal(done[:, :, :, :, :14], np.repeat(x[:, None, :, :, :14], 2, axis=1))  # the kept half as given
    assert not np.allclose(done[:, 0], done[:, 1])                                              # two draws differ
    assert np.array_equal(done, pipe.complete(x, "left", n=2, seed=5)[1])                       # a seed repeats
    # the generated half depends on what is kept: the same noise, another kept half, another completion
    other = pipe.complete(x[::-1].copy(), "left", n=2, seed=5)[1]
    assert not np.allclose(done[0, :, :, :, 14:], other[2, :, :, :, 14:])


def test_train_complete_export_through_the_cli(tmp_path, label_cvae):
    """The issue's "done when": train (few steps), complete (PNG and .npy, torch and ONNX agree), export with
    parity, ONNX completion without torch, and the bad inputs as one-line errors with nothing written."""
    from PIL import Image

    digits, _ = _digits(tmp_path / "digits")
    r = run_cli("train", "cvae-mnist5k", "--steps", "20", "--nll-samples", "2", "--threads", "1", "--quiet", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    png, npy = tmp_path / "c.png", tmp_path / "c.npy"
    r = run_cli("complete", "cvae-mnist5k", str(digits), "--keep", "top", "-n", "3", "-o", str(png), "--backend", "torch")
    assert r.returncode == 0, r.stderr
    assert Image.open(png).size == (5 * 30 + 2, 4 * 30 + 2)   # per row: input, masked input, 3 completions (2-px gaps)
    r = run_cli("complete", "cvae-mnist5k", str(digits), "--keep", "top", "-n", "3", "-o", str(npy), "--backend", "torch")
    torch_done = np.load(npy)
    assert r.returncode == 0 and torch_done.shape == (4, 3, 1, 28, 28)

    r = run_cli("export", "cvae-mnist5k", "--check", "--exporter", "torchscript")
    assert r.returncode == 0 and "parity passed" in r.stdout, r.stdout + r.stderr
    root = tmp_path / "no_torch"   # `import torch` fails here, and leaves a marker when anything tries
    (root / "torch").mkdir(parents=True)
    (root / "torch" / "__init__.py").write_text(f"open({str(root / 'marker')!r}, 'a').write('x')\nraise ImportError('blocked')\n")
    r = run_cli("complete", "cvae-mnist5k", str(digits), "--keep", "top", "-n", "3", "-o", str(tmp_path / "o.npy"),
                "--backend", "onnx", env={"PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])})
    assert r.returncode == 0 and not (root / "marker").exists(), r.stderr
    assert np.abs(np.load(tmp_path / "o.npy") - torch_done).max() < 1e-4

    small = tmp_path / "small"
    small.mkdir()
    Image.fromarray(np.zeros((14, 14), np.uint8)).save(small / "a.png")
    out = tmp_path / "never.png"
    for args, says in [
        (["complete", str(label_cvae), str(digits), "--keep", "top"], "does not condition on images"),
        (["complete", "cvae-mnist5k", str(digits), "--keep", "middle"], "'middle' is not one of"),
        (["complete", "cvae-mnist5k", str(small)], "28"),
        (["complete", "cvae-mnist5k", str(digits), "-o", str(png)], "exists; pass --force"),
        (["analogies", str(label_cvae), str(digits / os.listdir(digits)[0]), "--classes", "10"], "'10' is not a class"),
    ]:
        target = png if str(png) in args else out
        r = run_cli(*args, *([] if target == png else ["-o", str(out)]), "--backend", "torch")
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and says in lines[0], (args, r.stderr)
        assert not out.exists()

    from vaezoo.store.cards import render
    from vaezoo.store.resolution import local_dir

    card = render(local_dir("cvae-mnist5k"))
    assert "vaezoo complete" in card and "vaezoo sample" not in card and "each held-out example on its half" in card


def test_commands_that_do_not_fit_the_condition_say_so(half_cvae, label_cvae):
    from vaezoo.errors import UsageError
    from vaezoo.runtime.pipeline import load_pipeline

    half, label = load_pipeline(str(half_cvae), "torch"), load_pipeline(str(label_cvae), "torch")
    x = np.zeros((2, 1, 28, 28), np.float32)
    for call in (lambda: half.sample(2), lambda: half.encode(x)):
        with pytest.raises(UsageError, match="use `vaezoo complete"):
            call()
    with pytest.raises(UsageError, match="give them with --classes"):
        label.analogies(x=x)
    with pytest.raises(UsageError, match="one per input"):
        label.analogies(x=x, labels=[3])
    assert label.sample(2, label=3).shape == (2, 1, 28, 28)


def test_style_transfer_with_analogies(label_cvae, tmp_path):
    """Each input is encoded with its own label and decoded with every label: in its own label's column
    the grid holds the input's reconstruction decode(mu(x, y), y)."""
    from vaezoo.io.images import load_inputs
    from vaezoo.runtime.pipeline import load_pipeline

    digits, labels = _digits(tmp_path / "digits", 3)
    r = run_cli("analogies", str(label_cvae), str(digits), "--classes", ",".join(map(str, labels)), "-o",
                str(tmp_path / "a.npy"), "--backend", "torch")
    assert r.returncode == 0, r.stderr
    grid = np.load(tmp_path / "a.npy")
    assert grid.shape == (3 * 10, 1, 28, 28)
    pipe = load_pipeline(str(label_cvae), "torch")
    x, _ = load_inputs([str(digits)], pipe.shape)
    mu, _ = pipe.backend.run("encoder", x, pipe.onehot(labels))
    for i, y in enumerate(labels):
        assert np.allclose(grid[i * 10 + y], pipe.decode(mu[i : i + 1], [y])[0], atol=1e-6)
    assert not np.allclose(grid[0], grid[1])   # the columns are different labels
    metrics = json.loads((label_cvae / "metrics.json").read_text())
    assert metrics["validation"]["conditioned_on"] == "each held-out example on its true label"
    from vaezoo.store.cards import render

    card = render(label_cvae)   # no classifier: the card shows what works, inputs with their classes
    assert "analogies" in card and "--classes 3,7" in card and "vaezoo encode" not in card


def test_completion_script_prints_its_table(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    r = subprocess.run([sys.executable, str(REPO / "scripts" / "cvae_completion.py"), "--steps", "4", "--nll-samples", "2",
                        "--keep", "top,right", "--per-input", "2", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    rows = [line.split("|") for line in r.stdout.splitlines() if line.startswith("| top") or line.startswith("| right")]
    assert len(rows) == 2 and all(0 <= float(c.strip().rstrip("%")) <= 100 for row in rows for c in row[2:4])
    res = json.loads((tmp_path / "cvae_completion.json").read_text())
    assert res["protocol"]["digits"] == 500 and set(res["runs"]["0"]) == {"top", "right"}
    assert res["runs"]["0"]["top"]["kept_half"] < res["protocol"]["whole_digit"]
