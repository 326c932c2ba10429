"""Model cards: ``README.md`` of a checkpoint and of its Hub repo, generated from the checkpoint.

The card is built from config.json (the resolved recipe), metrics.json (validation numbers, training
time and hardware) and the manifest (files, sizes, SHA-256). It has Hub metadata (library_name,
licence, tags, datasets, a ``model-index`` with the recorded metrics), what the model is and which
paper it follows, how it was trained, how it was evaluated, three ways to use it (CLI, Python API,
plain onnxruntime), and its limitations.

A generated card ends with a stamp holding the SHA-256 of the text above it, so a card edited by hand
is recognised (:func:`is_generated` is False) and not overwritten without being asked. Rendering is
deterministic: the same checkpoint gives the same card. No torch import.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from vaezoo.families import Published, lookup
from vaezoo.io.files import read_json
from vaezoo.store.checkpoint import METRICS, manifest_of, read_config

LICENSE = "mit"
_STAMP_RE = re.compile(r"\n<!-- vaezoo-card sha256:([0-9a-f]{64}) -->\n?\Z")

# vaezoo dataset -> (Hub dataset id or None, name, short name)
DATASETS = {
    "mnist": ("ylecun/mnist", "MNIST", "MNIST digits"),
    "mnist5k": ("ylecun/mnist", "MNIST (5,000-digit subset bundled with vaezoo)", "MNIST digits"),
    "svhn": ("ufldl-stanford/svhn", "SVHN", "SVHN house numbers"),
    "cifar10": ("uoft-cs/cifar10", "CIFAR-10", "CIFAR-10 images"),
    "celeba": (None, "CelebA (64x64 centre crops)", "64x64 CelebA faces"),
    "moons": (None, "two moons (scikit-learn make_moons, 2,000 points, noise 0.05)", "the two-moons points"),
}
METRIC_NAMES = {
    "nll": "NLL (nats, importance-sampled)",
    "neg_elbo": "negative ELBO (nats)",
    "kl": "KL(q(z|x) || p(z)) (nats)",
    "recon": "reconstruction -log p(x|z) (nats)",
    "accuracy": "classification accuracy",
    "error": "classification error",
}


# ---------------------------------------------------------------- stamp
def _digest(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def stamp(body: str) -> str:
    body = body.rstrip("\n") + "\n"
    return f"{body}\n<!-- vaezoo-card sha256:{_digest(body)} -->\n"


def is_generated(text: str) -> bool:
    """True when ``text`` is a card vaezoo generated and nobody has edited since."""
    m = _STAMP_RE.search(text)
    return bool(m) and _digest(text[: m.start()]) == m.group(1)


# ---------------------------------------------------------------- pieces
def _family(recipe: dict) -> Published | None:
    """The registry's facts of the recipe's family (None for a family this vaezoo does not know)."""
    return lookup(str(recipe.get("family")))


def _has(recipe: dict, fact: str) -> bool:
    pub = _family(recipe)
    return bool(pub and getattr(pub.family, fact))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e-2 or abs(v) >= 1e5 else f"{v:.4f}".rstrip("0").rstrip(".")
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _table(rows, header: tuple[str, str] = ("", "")) -> list[str]:
    """A two-column Markdown table; '|' inside cells is escaped."""
    def cell(v) -> str:
        return str(v).replace("|", "\\|")

    return [f"| {header[0]} | {header[1]} |", "|---|---|"] + [f"| {cell(k)} | {cell(v)} |" for k, v in rows]


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _numbers(d: dict) -> dict:
    return {k: v for k, v in (d or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


# licence of the weights by training data: CelebA's agreement allows non-commercial research only
LICENSES = {"celeba": {"license": "other", "license_name": "celeba-non-commercial-research",
                       "license_link": "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"}}
CLASSIFICATION = {"error_rate": "classification error rate (fraction of examples, argmax q(y|x))",
                  "cross_entropy": "classification cross-entropy -log q(y|x) (nats per example)"}


def _license(recipe: dict) -> dict:
    return LICENSES.get(recipe["data"]["name"], {"license": LICENSE})


def _pipeline_tag(config: dict) -> str | None:
    if config["input"]["kind"] != "image":
        return None
    return "image-classification" if _has(config["recipe"], "classifier") else "unconditional-image-generation"


def _eval_results(config: dict, metrics: dict | None) -> list:
    """The recorded validation numbers as huggingface_hub EvalResults, each named with its unit and protocol."""
    from huggingface_hub import EvalResult

    recipe = config["recipe"]
    val_all = (metrics or {}).get("validation", {})
    val = _numbers(val_all)
    ds = recipe["data"]["name"]
    hub_ds, ds_name, _ = DATASETS.get(ds, (None, ds, ds))
    where = dict(dataset_type=hub_ds or ds, dataset_name=ds_name, dataset_split=val_all.get("split", "val"))
    n, k = val.get("examples"), val.get("nll_samples")
    likelihood = recipe["model"]["likelihood"]
    protocol = f"{n} held-out examples, {likelihood} likelihood on {config['input']['pixel_scale']} inputs"
    if likelihood == "bernoulli" and config["input"]["kind"] == "image":
        protocol += " (grey levels, not binarised: not comparable with binarised-MNIST likelihoods)"
    image = config["input"]["kind"] == "image"
    results = []
    for key in ("nll", "neg_elbo", "kl", "recon"):
        if key in val:
            name = METRIC_NAMES[key] + (f", K={k}" if key == "nll" and k else "") + f"; {protocol}"
            results.append(EvalResult(task_type="unconditional-image-generation" if image else "density-estimation",
                                      task_name="Density estimation (held-out log-likelihood)", metric_type=key,
                                      metric_value=round(float(val[key]), 4), metric_name=name, **where))
    for key, text in CLASSIFICATION.items():
        if key in val:
            results.append(EvalResult(task_type="image-classification", task_name="Classification q(y|x)",
                                      metric_type=key, metric_value=round(float(val[key]), 4),
                                      metric_name=f"{text}; {n} held-out examples, neither labelled nor unlabelled in training",
                                      **where))
    return results


def _metadata(config: dict, metrics: dict | None, has_graphs: bool) -> str:
    """The card's YAML front matter, through huggingface_hub's ModelCardData (so the Hub reads it as its own)."""
    from huggingface_hub import ModelCardData

    recipe = config["recipe"]
    dp = recipe["prior"]["kind"] == "flow"
    hub_ds = DATASETS.get(recipe["data"]["name"], (None,))[0]
    tags = ["vaezoo", "vae", "variational-autoencoder", "generative-model", f"vaezoo-{recipe['family']}"]
    if dp:
        tags += ["decoupled-prior", "normalizing-flow"]
    if _has(recipe, "classifier"):
        tags.append("semi-supervised")
    tags += ["safetensors"] + (["onnx"] if has_graphs else [])
    results = _eval_results(config, metrics)
    data = ModelCardData(library_name="vaezoo", tags=tags, datasets=[hub_ds] if hub_ds else None,
                         pipeline_tag=_pipeline_tag(config), model_name=recipe["id"] if results else None,
                         eval_results=results or None, **_license(recipe))
    return "---\n" + data.to_yaml() + "\n---\n"


def _about(config: dict) -> list[str]:
    recipe = config["recipe"]
    pub = _family(recipe)
    kind = pub.summary if pub else f"a {recipe.get('family')} variational autoencoder"
    lines = [f"**{recipe['id']}** is {kind}."]
    if recipe["prior"]["kind"] == "flow":
        lines.append("")
        lines.append("The decoupled prior separates the representation space z, where the regulariser acts, from the "
                     f"generation space eps ~ N(0, I): an invertible RealNVP flow of {recipe['prior'].get('blocks')} affine "
                     "coupling blocks maps one to the other, so the regulariser shapes z without leaving holes that "
                     "sampling from N(0, I) would fall into. Samples are `decoder(g^-1(eps))`. The regulariser's "
                     "settings and the networks are this zoo's recipe for the family, not the dpVAE authors' released "
                     "configurations (those use a 2-d latent and their own conv nets).")
    if pub:
        lines.append("")
        lines.append("Follows: " + "; ".join(f"[{title}]({url})" if url else title for title, url in pub.papers) + ".")
    return lines


def _architecture(config: dict) -> list[str]:
    recipe = config["recipe"]
    m, prior, obj = recipe["model"], recipe["prior"], recipe["objective"]
    shape = "x".join(str(s) for s in config["input"]["shape"])
    rows = [
        ("input", f"{shape} {config['input']['kind']}, {config['input']['dtype']}, pixel scale `{config['input']['pixel_scale']}`"),
        ("encoder / decoder", f"{m['backbone']} backbone, hidden {_fmt(m.get('hidden', []))}"),
        ("latent", f"{config['latent_dim']} dimensions, Gaussian posterior q(z|x) = N(mu, diag(exp(logvar)))"),
        ("likelihood", f"{m['likelihood']}" + (f" (sigma {_fmt(m['sigma'])})" if "sigma" in m else "")
         + f"; the decoder outputs {config['output']['decoder']}"),
        ("prior", "standard normal N(0, I)" if prior["kind"] == "standard"
         else f"decoupled: RealNVP flow, {prior.get('blocks')} coupling blocks, hidden {prior.get('hidden')}"),
        ("objective", ", ".join(f"{k} = {_fmt(v)}" for k, v in obj.items())),
    ]
    if "classifier_hidden" in m:
        if m.get("classifier_backbone", "mlp") == "conv":
            text = (f"conv: 5x5 stride-2 convolutions with {_fmt(m['classifier_channels'])} channels, "
                    f"then hidden {_fmt(m['classifier_hidden'])}")
        else:
            text = f"mlp, hidden {_fmt(m['classifier_hidden'])}"
        if m.get("classifier_dropout"):
            text += f", dropout {_fmt(m['classifier_dropout'])} before the head"
        pub = _family(recipe)
        if pub and pub.family.classifier_reads:
            text += f", on {pub.family.classifier_reads}"
        rows.append(("classifier q(y|x)", text))
    if config.get("labels"):
        rows.append(("labels", ", ".join(config["labels"])))
    return _table(rows)


def _training(config: dict, metrics: dict | None) -> list[str]:
    from vaezoo.recipes import to_toml

    recipe = config["recipe"]
    t = recipe["train"]
    mt = (metrics or {}).get("train", {})
    ds = recipe["data"]["name"]
    lines = [f"Trained by `vaezoo train {recipe['id']}` from its recipe (shown in full below and recorded in "
             "`config.json`); re-running it reproduces the weights up to hardware nondeterminism.", ""]
    rows = [
        ("data", _dataset_text(ds) + (f"; {mt['examples']} training examples" if "examples" in mt else "")
         + (f", {recipe['data']['labels']} of them labelled" if recipe["data"].get("labels") else "")),
        ("steps", f"{t['steps']}" + (f" ({_fmt(mt['epochs'])} epochs)" if "epochs" in mt else "")),
        ("batch size", t["batch_size"]),
        ("optimiser", f"Adam, learning rate {_fmt(t['lr'])}"
         + (f", {t['lr_schedule']} schedule to {_fmt(t.get('lr_final', 0.0))} x lr" if t.get("lr_schedule", "constant") != "constant" else "")
         + (f", gradient clipping {_fmt(t['grad_clip'])}" if t.get("grad_clip") else "")),
        ("seed", t["seed"]),
    ]
    if recipe["objective"].get("shift"):
        rows.append(("augmentation", f"every training digit translated by a random offset of up to "
                                     f"{recipe['objective']['shift']} pixels each step (not in the paper)"))
    if mt:
        rows += [
            ("hardware", f"{mt.get('hardware', '?')}, device {mt.get('device', '?')}, {mt.get('world_size', 1)} process(es)"),
            ("wall time", _duration(float(mt["seconds"])) if "seconds" in mt else "not recorded"),
            ("software", f"vaezoo {config.get('vaezoo_version', '?')}, torch {mt.get('torch', '?')}"),
        ]
    lines += _table(rows)
    lines += ["", "<details><summary>Full recipe</summary>", "", "```toml", to_toml(recipe).rstrip(), "```", "", "</details>"]
    return lines


def _dataset_text(ds: str) -> str:
    try:
        from vaezoo.data import DATASETS as INFO

        return INFO[ds].citation
    except Exception:
        return DATASETS.get(ds, (None, ds, ds))[1]


def _evaluation(config: dict, metrics: dict | None) -> list[str]:
    val = (metrics or {}).get("validation")
    if not val:
        return ["No evaluation is recorded for this checkpoint (its folder has no metrics.json)."]
    n, k = val.get("examples"), val.get("nll_samples")
    lines = [
        f"Measured by `vaezoo train` at the end of training on {n} held-out examples of the `{val.get('split', 'val')}` "
        f"split of {config['recipe']['data']['name']}; every number is in nats per example, summed over the input's "
        "dimensions (lower is better). The NLL is the importance-sampled bound "
        f"-log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x) with K = {k} samples from q(z|x)"
        + (", p(z) evaluated through the flow" if config["recipe"]["prior"]["kind"] == "flow" else "") + "."
        + (f" Every term is conditioned on c (p(x|z, c), q(z|x, c)): {val['conditioned_on']}." if "conditioned_on" in val else ""),
        "",
    ]
    if config["recipe"]["model"]["likelihood"] == "bernoulli" and config["input"]["kind"] == "image":
        lines[0] += (" The Bernoulli likelihood is evaluated on grey levels in [0, 1], not on binarised images, so these "
                     "numbers do not compare with binarised-MNIST likelihoods in the literature.")
    nums = {k: v for k, v in _numbers(val).items() if k not in ("examples", "nll_samples")}
    rows = [(METRIC_NAMES.get(k, k), _fmt(float(v))) for k, v in nums.items() if k not in CLASSIFICATION]
    lines += _table(rows, ("metric", "value"))
    if any(k in nums for k in CLASSIFICATION):
        lines += ["", f"Classification by q(y|x) on the same {n} examples (none of them was used in training, "
                      "labelled or unlabelled):", ""]
        rows = [("error rate", f"{100 * nums['error_rate']:.2f} %")] if "error_rate" in nums else []
        if "cross_entropy" in nums:
            rows.append(("cross-entropy -log q(y|x)", f"{_fmt(float(nums['cross_entropy']))} nats"))
        lines += _table(rows, ("metric", "value"))
    return lines


def _sample_quality(metrics: dict | None) -> list[str]:
    """What `vaezoo evaluate --metrics` recorded (metrics.json "evaluation"), each with its protocol."""
    ev = (metrics or {}).get("evaluation")
    if not isinstance(ev, dict) or not ev:
        return []
    rows = []
    for name, res in ev.items():
        if not isinstance(res, dict) or "value" not in res:
            continue
        value = res["value"]
        shown = (", ".join(f"{r.get('level')}: {_fmt(r.get('leakage'))}" for r in value if isinstance(r, dict))
                 if isinstance(value, list) else _fmt(value))
        proto = res.get("protocol") if isinstance(res.get("protocol"), dict) else {}
        rows.append((name, f"{shown} ({'; '.join(f'{k} {v}' for k, v in proto.items())})"))
    return ["Measured by `vaezoo evaluate --metrics` (README, 'Evaluation'):", ""] + _table(rows, ("metric", "value (protocol)")) + [""]


def _usage(config: dict, repo: str, has_graphs: bool) -> list[str]:
    recipe = config["recipe"]
    classifier = _has(recipe, "classifier")
    spec = f"hf-hub:{repo}"
    image = config["input"]["kind"] == "image"
    n_lat = config["latent_dim"]
    shape = tuple(config["input"]["shape"])
    out_fmt = "grid.png" if image else "samples.npy"
    if _has(recipe, "completion"):
        return _completion_usage(config, spec, has_graphs)
    lines = [
        "### Command line", "",
        "```bash",
        'pip install "vaezoo[cpu]"',
        f"vaezoo sample {spec} -n 64 --seed 0 -o {out_fmt}" + ("   # ONNX Runtime, no torch needed" if has_graphs else ""),
    ]
    # a conditional model without a classifier cannot tell an input's class: its inputs come with their classes
    given_classes = _has(recipe, "conditional") and not classifier
    if given_classes:
        lines += [f"vaezoo sample {spec} --label 3 -n 16 -o threes.png",
                  f"vaezoo analogies {spec} a.png b.png --classes 3,7 -o styles.png   # each input's style under every class"]
    else:
        lines += [f"vaezoo encode {spec} inputs/ -o latents.csv",
                  f"vaezoo reconstruct {spec} inputs/ -o {'recon.png' if image else 'recon.npy'}"]
    if classifier:
        lines.append(f"vaezoo classify {spec} inputs/ -o predictions.csv")
    lines += [
        f"vaezoo pull {spec}            # prefetch; afterwards add --offline to any command",
        "```", "",
        f"Pin a revision for reproducible results: `{spec}@<commit>`." + (
            f" The registry id `{recipe['id']}` resolves to the revision pinned in vaezoo's recipe." if repo == recipe.get("hub", {}).get("repo") else ""),
        "", "### Python", "",
        "```python",
        "import vaezoo",
        "",
        f'pipe = vaezoo.load("{spec}", backend="{"onnx" if has_graphs else "torch"}")',
        f"x = pipe.sample(16, seed=0)          # numpy float32, shape (16, {', '.join(map(str, shape))})" + (", in [0, 1]" if image else ""),
    ]
    if given_classes:
        lines.append("grid = pipe.analogies(x=x[:2], labels=[0, 1])   # rows: the inputs' styles; columns: the classes")
    else:
        lines += ["mu, logvar = pipe.encode(x)          # posterior means and log-variances",
                  "x_hat = pipe.reconstruct(x)"]
    if classifier:
        lines.append("probs = pipe.classify(x)             # class probabilities")
    lines += ["```", ""]
    lines += ["### ONNX Runtime only (no vaezoo)", ""]
    if not has_graphs:
        lines += ["This checkpoint has no ONNX graphs yet; `vaezoo export` writes them into `onnx/` "
                  "(one graph per part: encoder, decoder, prior, classifier).", ""]
    flow = recipe["prior"]["kind"] == "flow"
    code = [
        "```python",
        "import numpy as np",
        "import onnxruntime as ort",
        "from huggingface_hub import hf_hub_download",
        "",
        f'repo = "{repo}"',
        'decoder = ort.InferenceSession(hf_hub_download(repo, "onnx/decoder.onnx"))',
    ]
    if flow:
        code.append('prior_inverse = ort.InferenceSession(hf_hub_download(repo, "onnx/prior_inverse.onnx"))')
    code += ["", f"eps = np.random.default_rng(0).standard_normal((16, {n_lat})).astype(np.float32)  # generation space"]
    if flow:
        code.append("z = prior_inverse.run(None, {prior_inverse.get_inputs()[0].name: eps})[0]       # through the flow")
    else:
        code.append("z = eps                                   # standard prior: z = eps")
    code.append("feeds = {decoder.get_inputs()[0].name: z}")
    if config.get("conditional") and config.get("labels"):
        k = len(config["labels"])
        code.append(f"feeds[decoder.get_inputs()[1].name] = np.eye({k}, dtype=np.float32)[np.arange(16) % {k}]  # one-hot labels")
    code.append("out = decoder.run(None, feeds)[0]")
    if config["output"]["decoder"] == "logits":
        code.append(f"x = 1.0 / (1.0 + np.exp(-out))           # Bernoulli logits -> pixel means, shape (16, {', '.join(map(str, shape))})")
    elif image:
        code.append("x = np.clip(out, 0.0, 1.0)                 # Gaussian means, pixels in [0, 1]")
    else:
        code.append("x = out                                   # Gaussian means")
    code.append("```")
    lines += code
    lines += ["", "Each graph also carries its description (model id, part, input shape, pixel scale, likelihood, "
              "labels) in its ONNX metadata, so a lone `.onnx` file can be used on its own."]
    return lines


def _completion_usage(config: dict, spec: str, has_graphs: bool) -> list[str]:
    """How to use a model that completes half images: its parts take (kept, mask) beside z or x."""
    n_lat = config["latent_dim"]
    shape = " x ".join(map(str, config["input"]["shape"]))
    post = "(1.0 / (1.0 + np.exp(-out)))" if config["output"]["decoder"] == "logits" else "np.clip(out, 0.0, 1.0)"
    return [
        "### Command line", "",
        "```bash",
        'pip install "vaezoo[cpu]"',
        f"vaezoo complete {spec} inputs/ --keep top -n 4 --seed 0 -o completed.png"
        + ("   # ONNX Runtime, no torch needed" if has_graphs else ""),
        "# one row per input: the input, its kept half (the rest zeroed), then 4 completions; --keep top|bottom|left|right",
        f"vaezoo pull {spec}            # prefetch; afterwards add --offline to any command",
        "```", "",
        "### Python", "",
        "```python",
        "import vaezoo",
        "",
        f'pipe = vaezoo.load("{spec}", backend="{"onnx" if has_graphs else "torch"}")',
        f'kept, done = pipe.complete(x, "top", n=4, seed=0)   # x: N x {shape} in [0, 1]; done: N x 4 x {shape}',
        "```", "",
        "### ONNX Runtime only (no vaezoo)", "",
        "The condition is the kept half and its mask, both shaped like the image: `mask` is 1 on the kept half "
        "(the top 14 rows for `--keep top`), `kept = x * mask`.", "",
        "```python",
        "import numpy as np",
        "import onnxruntime as ort",
        "",
        'decoder = ort.InferenceSession("onnx/decoder.onnx")',
        f"mask = np.zeros((len(x), {', '.join(map(str, config['input']['shape']))}), np.float32); mask[:, :, :{config['input']['shape'][1] // 2}] = 1   # keep the top half",
        f"z = np.random.default_rng(0).standard_normal((len(x), {n_lat})).astype(np.float32)",
        "out = decoder.run(None, {\"z\": z, \"kept\": x * mask, \"mask\": mask})[0]",
        f"completed = x * mask + (1 - mask) * {post}",
        "```",
    ]


def _limitations(config: dict) -> list[str]:
    recipe = config["recipe"]
    ds = recipe["data"]["name"]
    lines = [
        "- Intended for research, teaching and as a building block (sampling, representation learning, "
        "anomaly scores from the ELBO); it is not a production image generator.",
        "- VAE samples are blurry compared with GANs or diffusion models; the NLL numbers are only comparable "
        "between models evaluated with the same protocol on the same split.",
        "- The model only knows its training distribution: inputs unlike "
        f"{DATASETS.get(ds, (None, ds, ds))[2]} (another size, colour or scaling than `{config['input']['pixel_scale']}`) "
        "give meaningless codes and reconstructions.",
    ]
    if ds == "mnist5k":
        lines.append("- Trained on a 4,500-image subset of MNIST so that it trains in minutes on a CPU; a model trained "
                     "on the full MNIST is better.")
    if ds == "celeba":
        lines.append("- Trained on celebrity faces: do not use it to identify people or infer personal attributes; "
                     "it inherits the demographic biases of CelebA.")
    if _has(recipe, "adversarial"):
        lines.append("- The decoder was trained on a discriminator's features and against it, not on the pixel likelihood: "
                     "the ELBO and NLL above use that likelihood all the same, so they score it as a density model it was "
                     "not trained to be and do not compare with a VAE's. The discriminator is training state, not part "
                     "of this checkpoint.")
    if _has(recipe, "disentangling"):
        lines.append("- Disentanglement is encouraged by the objective, not guaranteed: check traversals "
                     "(`vaezoo traverse`) before relying on a latent dimension's meaning.")
    return lines


def _files(manifest: dict | None) -> list[str]:
    if not manifest:
        return ["This checkpoint's config.json has no file manifest (it was written by an older vaezoo)."]
    lines = ["`config.json` lists every file below with its SHA-256; vaezoo verifies them before loading and "
             "refuses a file that does not match.", "", "| file | bytes | sha256 |", "|---|---:|---|"]
    for name, entry in sorted(manifest.items()):
        lines.append(f"| `{name}` | {entry['size']} | `{entry['sha256']}` |")
    return lines


# ---------------------------------------------------------------- the card
def render(folder: Path, repo_id: str | None = None) -> str:
    """The model card (Markdown with YAML metadata and a stamp) of the checkpoint in ``folder``.

    ``repo_id`` is the Hub repo the card's usage examples point at (default: the recipe's hub.repo).
    """
    folder = Path(folder)
    config = read_config(folder)
    recipe = config["recipe"]
    metrics = None
    if (folder / METRICS).is_file():
        try:
            metrics = read_json(folder / METRICS)
        except (ValueError, OSError):
            metrics = None
    manifest = manifest_of(config, str(folder / "config.json")) or {}
    has_graphs = any(n.startswith("onnx/") and n.endswith(".onnx") for n in manifest)
    repo = repo_id or recipe.get("hub", {}).get("repo") or f"vaezoo/{recipe['id']}"
    body = [_metadata(config, metrics, has_graphs), f"# {recipe['id']}", ""]
    desc = recipe.get("description")
    body += _about(config) + ([""] + [f"Data: {desc}."] if desc else []) + [""]
    if "samples.png" in manifest:   # written by vaezoo.runtime.preview at the end of training
        body += [f"![64 samples of {recipe['id']}](samples.png)", "",
                 f"*64 samples: `vaezoo sample {recipe['id']} -n 64 --seed 0` (temperature 1), the file `samples.png`.*", ""]
    body += ["## Model", ""] + _architecture(config) + [""]
    body += ["## Training", ""] + _training(config, metrics) + [""]
    body += ["## Evaluation", ""] + _evaluation(config, metrics) + [""] + _sample_quality(metrics)
    body += ["## How to use", ""] + _usage(config, repo, has_graphs) + [""]
    body += ["## Files", ""] + _files(manifest) + [""]
    body += ["## Limitations and intended use", ""] + _limitations(config) + [""]
    body += ["## Licence and citation", "",
             _licence_text(recipe),
             "If you use this model, cite the paper(s) above and vaezoo."]
    return stamp("\n".join(body))


def _licence_text(recipe: dict) -> str:
    data = f"Data: {_dataset_text(recipe['data']['name'])}."
    lic = _license(recipe)
    if lic["license"] == LICENSE:
        return f"Weights and code: MIT (vaezoo). {data}"
    return (f"Code: MIT (vaezoo). Weights: trained on data whose terms allow non-commercial research only "
            f"({lic['license_link']}); they carry those terms. {data}")


def card_metadata(text: str) -> dict:
    """The YAML metadata of a card, as a dict (empty when there is none)."""
    import yaml

    if not text.startswith("---\n"):
        return {}
    head = text[4:].split("\n---\n", 1)[0]
    meta = yaml.safe_load(head)
    return meta if isinstance(meta, dict) else {}

