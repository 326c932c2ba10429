"""data.augment (the dpVAE authors' "colour jitter + random affine") and their settings as recipe override files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import REPO, run_cli
from vaezoo.data import load_dataset
from vaezoo.train import augment

AUTHORS = REPO / "train" / "recipes" / "dpvae_authors"


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("mnist5k", "train")
    return torch.from_numpy(ds.x[:2000]).float() / 255.0


def test_half_the_images_are_moved_and_half_jittered_reproducibly(digits):
    recipe = {"data": {"augment": "affine-jitter"}}
    assert augment.augmented([digits], {"data": {}})[0] is digits   # no key: the batch as it is
    torch.manual_seed(5)
    out = augment.augmented([digits], recipe)[0]
    torch.manual_seed(5)
    again = augment.augmented([digits], recipe)[0]
    assert torch.equal(out, again)                                 # torch's generator decides: a resume draws the same
    assert out.shape == digits.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    unchanged = (out - digits).abs().flatten(1).amax(1) < 1e-6
    assert 0.2 < float(unchanged.float().mean()) < 0.3             # neither transform: 0.5 x 0.5 of the images
    torch.manual_seed(6)
    moved = augment.affine(digits)
    ink_ratio = moved.flatten(1).sum(1) / digits.flatten(1).sum(1)
    # scale 0.9-1.1 changes the ink by at most its square; shifts of 10 % keep a centred digit inside the frame
    assert float(ink_ratio.min()) > 0.75 and float(ink_ratio.max()) < 1.25


def test_jitter_scales_brightness_and_contrast_within_its_range():
    x = torch.full((400, 1, 4, 4), 0.5)
    x[:, :, :2] = 0.25
    torch.manual_seed(7)
    y = augment.jitter(x)
    changed = (y - x).abs().flatten(1).amax(1) > 1e-6
    assert 0.4 < float(changed.float().mean()) < 0.6
    ratio = y[changed].flatten(1).mean(1) / x[changed].flatten(1).mean(1)   # the mean moves by the brightness factor
    assert float(ratio.min()) >= 0.8 - 1e-5 and float(ratio.max()) <= 1.2 + 1e-5


def test_a_run_trains_with_it_and_bad_settings_are_refused_before_writing(tmp_path):
    (tmp_path / "aug.toml").write_text('family = "vae"\ndataset = "mnist5k"\n[data]\naugment = "affine-jitter"\n'
                                       '[eval]\nnll_samples = 4\nmax_examples = 8\n')
    res = run_cli("train", str(tmp_path / "aug.toml"), "--steps", "3", "--out", str(tmp_path / "run"), "-q")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "run" / "config.json").read_text())["recipe"]["data"]["augment"] == "affine-jitter"
    for name, text in (("bad", 'family = "vae"\ndataset = "mnist5k"\n[data]\naugment = "mixup"\n'),
                       ("m2", 'family = "m2"\ndataset = "mnist5k"\n[data]\naugment = "affine-jitter"\n')):
        (tmp_path / f"{name}.toml").write_text(text)
        res = run_cli("train", str(tmp_path / f"{name}.toml"), "--steps", "2", "--out", str(tmp_path / name))
        assert res.returncode != 0 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert "data.augment" in res.stderr and not (tmp_path / name).exists()


@pytest.mark.parametrize("path", sorted(AUTHORS.glob("*.toml")), ids=lambda p: p.stem)
def test_the_authors_settings_load_and_build(path: Path):
    from vaezoo.models import build_model
    from vaezoo.recipes import load_recipe_file
    from vaezoo.store.checkpoint import make_config

    recipe = load_recipe_file(str(path))
    assert recipe["family"] == path.stem and recipe["model"]["latent"] == 2 and recipe["data"]["augment"] == "affine-jitter"
    assert recipe["model"]["likelihood"] == "gaussian" and recipe["model"]["backbone"] == "conv28"
    model = build_model(make_config(recipe))
    mu, _ = model.encoder(torch.zeros(2, 1, 28, 28))
    assert mu.shape == (2, 2) and np.isfinite(mu.detach().numpy()).all()
    assert (recipe["prior"]["kind"] == "flow") == path.stem.startswith("dp-")
    from vaezoo.store import cards

    assert cards._whose_settings(recipe).startswith("The settings are the dpVAE authors' released MNIST configuration")


def test_there_is_a_file_for_each_of_the_twelve_models():
    fams = ["vae", "beta-h", "beta-b", "tc", "factor", "info"]
    assert sorted(p.stem for p in AUTHORS.glob("*.toml")) == sorted(fams + [f"dp-{f}" for f in fams])
