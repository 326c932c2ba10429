"""Model cards: generated from the checkpoint and its recipe, valid Hub metadata, kept in model_cards/."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_cli
from fake_hub import fake_hub, tiny_ckpt, tiny_onnx_ckpt, validate_card_metadata  # noqa: F401 (fixtures)
from vaezoo.store import cards
from vaezoo.store.checkpoint import make_config
from vaezoo.io.files import write_json
from vaezoo.recipes import resolve

STARTERS = ("vae-mnist5k", "dp-vae-mnist5k", "dp-factor-mnist5k", "factor-mnist5k", "m2-mnist5k")


def fake_checkpoint(folder: Path, model_id: str) -> Path:
    """A checkpoint folder with a real config.json and metrics.json (no weights: cards do not read them)."""
    folder.mkdir(parents=True)
    write_json(folder / "config.json", make_config(resolve(model_id)))
    write_json(folder / "metrics.json", {
        "validation": {"split": "val", "neg_elbo": 101.5, "kl": 25.25, "recon": 76.25, "nll": 96.125,
                       "examples": 500, "nll_samples": 1000},
        "train": {"steps": 3000, "batch_size": 100, "epochs": 66.67, "examples": 4500, "seconds": 312.4,
                  "device": "cpu", "world_size": 1, "torch": "2.13.0+cpu", "hardware": "x86_64 16 cpus"},
    })
    return folder


def sections(text: str) -> list[str]:
    return re.findall(r"^## (.+)$", text, flags=re.M)


@pytest.mark.parametrize("model_id", STARTERS)
def test_card_has_valid_metadata_and_every_section(tmp_path, model_id):
    folder = fake_checkpoint(tmp_path / model_id, model_id)
    text = cards.render(folder)
    assert validate_card_metadata(text) == []
    meta = cards.card_metadata(text)
    assert meta["library_name"] == "vaezoo" and meta["license"] == "mit" and "vaezoo" in meta["tags"]
    assert meta["datasets"] == ["ylecun/mnist"]
    metrics = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert metrics == {"nll": 96.125, "neg_elbo": 101.5, "kl": 25.25, "recon": 76.25}
    assert sections(text) == ["Model", "Training", "Evaluation", "How to use", "Files",
                              "Limitations and intended use", "Licence and citation"]
    for needle in (f"vaezoo sample hf-hub:vaezoo/{model_id}", f'vaezoo.load("hf-hub:vaezoo/{model_id}"',
                   "import onnxruntime as ort", "x86_64 16 cpus", "5.2 min", "K = 1000", "arxiv.org"):
        assert needle in text, needle
    assert cards.is_generated(text)
    assert cards.render(folder) == text  # deterministic: the committed card only changes with the checkpoint

    # huggingface_hub's own parser reads the same metadata and results
    from huggingface_hub import ModelCard

    parsed = ModelCard(text)
    assert parsed.data.library_name == "vaezoo"
    assert {r.metric_type: r.metric_value for r in parsed.data.eval_results}["nll"] == 96.125


def test_family_specific_text(tmp_path):
    dp = cards.render(fake_checkpoint(tmp_path / "dp", "dp-factor-mnist5k"))
    assert "decoupled prior" in dp and "prior_inverse.onnx" in dp and "1911.10506" in dp and "1802.05983" in dp
    m2 = cards.render(fake_checkpoint(tmp_path / "m2", "m2-mnist5k"))
    assert "1406.5298" in m2 and "one-hot labels" in m2 and "vaezoo classify" in m2 and "semi-supervised" in m2
    assert "1000 of them labelled" in m2
    vae = cards.render(fake_checkpoint(tmp_path / "vae", "vae-mnist5k"))
    snippet = vae.split("### ONNX Runtime only")[1].split("```python")[1]
    assert "z = eps" in snippet and "prior_inverse" not in snippet


def test_edited_card_is_recognised():
    text = cards.stamp("---\nlicense: mit\n---\n# x\n")
    assert cards.is_generated(text)
    assert not cards.is_generated(text.replace("# x", "# y"))
    assert not cards.is_generated("# a card written by hand\n")


def test_card_command_writes_regenerates_and_keeps_hand_edits(tiny_ckpt, tmp_path):
    out = tmp_path / "card.md"
    proc = run_cli("card", str(tiny_ckpt), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert validate_card_metadata(text) == [] and cards.is_generated(text)
    assert "metrics.json" in text and "model.safetensors" in text  # the files table, from the manifest

    assert run_cli("card", str(tiny_ckpt), "-o", str(out)).returncode == 0  # a generated card is regenerated
    out.write_text(text.replace("## Limitations", "## My notes\n\nkeep me\n\n## Limitations"))
    proc = run_cli("card", str(tiny_ckpt), "-o", str(out))
    assert proc.returncode == 2 and "edited by hand" in proc.stderr and "keep me" in out.read_text()
    assert run_cli("card", str(tiny_ckpt), "-o", str(out), "--force").returncode == 0
    assert "keep me" not in out.read_text()

    proc = run_cli("card", str(tiny_ckpt), "--repo", "someone/tiny")
    assert proc.returncode == 0 and "hf-hub:someone/tiny" in proc.stdout and proc.stdout.startswith("---\n")


def test_onnxruntime_snippet_runs_without_vaezoo(tiny_onnx_ckpt, fake_hub, tmp_path):
    """The card's third way: the plain onnxruntime snippet, run as its own program against the pushed repo."""
    assert run_cli("push", str(tiny_onnx_ckpt), "org/snippet").returncode == 0
    readme = fake_hub.files("org/snippet")["README.md"].decode()
    code = readme.split("### ONNX Runtime only (no vaezoo)")[1].split("```python\n")[1].split("```")[0]
    assert 'repo = "org/snippet"' in code
    code += "\nnp.save('out.npy', x)\n"
    proc = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import numpy as np

    x = np.load(tmp_path / "out.npy")
    assert x.shape == (16, 1, 28, 28) and 0.0 <= x.min() and x.max() <= 1.0
    assert "vaezoo" not in proc.stderr


@pytest.mark.parametrize("model_id", STARTERS + ("lenet-mnist5k",))
def test_every_bundled_starter_has_a_current_card(model_id):
    from vaezoo.store.resolution import bundled_dir

    folder = bundled_dir(model_id)
    if not (folder / "config.json").is_file():
        pytest.skip(f"{model_id} is not bundled yet")
    card = REPO / "model_cards" / f"{model_id}.md"
    assert card.is_file(), f"run `vaezoo card {model_id} -o model_cards/{model_id}.md`"
    text = card.read_text()
    assert validate_card_metadata(text) == []
    if cards.is_generated(text):  # a hand-edited card is kept as it is
        assert text == cards.render(folder), f"model_cards/{model_id}.md is stale: run `vaezoo card {model_id} -o {card}`"
    assert json.loads((folder / "config.json").read_text())["id"] == model_id


def test_m2_card_round_trips_its_error_rate_and_a_celeba_card_is_not_mit(tmp_path):
    from huggingface_hub import ModelCard

    folder = fake_checkpoint(tmp_path / "m2", "m2-mnist5k")
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["validation"].update(error_rate=0.038, cross_entropy=0.104)
    write_json(folder / "metrics.json", metrics)
    text = cards.render(folder)
    parsed = ModelCard(text)
    assert parsed.data.pipeline_tag == "image-classification"
    by_type = {r.metric_type: r for r in parsed.data.eval_results}
    assert by_type["error_rate"].metric_value == 0.038 and by_type["error_rate"].task_type == "image-classification"
    assert "held-out" in by_type["error_rate"].metric_name and "nats" in by_type["nll"].metric_name
    assert ModelCard(parsed.content).data.to_dict() == parsed.data.to_dict()   # YAML -> card -> YAML is stable
    assert "| error rate | 3.80 % |" in text and "not binarised" in text

    celeba = cards.render(fake_checkpoint(tmp_path / "celeba", "dp-factor-celeba"))
    meta = cards.card_metadata(celeba)
    assert meta["license"] == "other" and meta["license_link"].startswith("https://mmlab.ie.cuhk.edu.hk")
    assert "non-commercial research" in celeba and "Weights and code: MIT" not in celeba
    moons = cards.card_metadata(cards.render(fake_checkpoint(tmp_path / "moons", "vae-moons")))
    assert "pipeline_tag" not in moons and moons["license"] == "mit"
    dp = cards.render(fake_checkpoint(tmp_path / "dp", "dp-vae-mnist5k"))
    assert "not the dpVAE authors'" in dp


def test_training_writes_the_sample_grid_the_card_shows(tmp_path):
    from conftest import train_tiny
    from vaezoo.store.checkpoint import read_config, verify_files

    folder = train_tiny("dp-vae-mnist5k", tmp_path / "run")
    config = read_config(folder)
    assert "samples.png" in config["files"]
    verify_files(folder, ["samples.png"], config)                 # hashed like the weights
    r = run_cli("sample", str(folder), "-n", "64", "--seed", "0", "--backend", "torch", "-o", str(tmp_path / "again.png"))
    # the grid is what `vaezoo sample` draws from the same weights, as the card says
    assert r.returncode == 0 and (tmp_path / "again.png").read_bytes() == (folder / "samples.png").read_bytes()
    text = cards.render(folder)
    assert "![64 samples of dp-vae-mnist5k](samples.png)" in text and "--seed 0" in text


def test_the_fid_classifier_card_describes_a_classifier_not_a_vae():
    from vaezoo.store.resolution import bundled_dir

    text = cards.render(bundled_dir("lenet-mnist5k"))
    assert validate_card_metadata(text) == []
    meta = cards.card_metadata(text)
    assert meta["pipeline_tag"] == "image-classification" and "vae" not in meta["tags"]
    assert {m["type"] for m in meta["model-index"][0]["results"][0]["metrics"]} == {"error_rate", "cross_entropy"}
    assert "It is not a generative model" in text and "84 (the penultimate layer" in text
    for vae_word in ("likelihood", "prior", "vaezoo sample", "decoder"):
        assert vae_word not in text.split("## Training")[0], vae_word
