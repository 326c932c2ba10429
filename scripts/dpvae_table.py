"""The dpVAE paper's MNIST table (FID / FID-LP / sKL / NLL, with and without the decoupled prior), measured on mnist5k.

    python scripts/dpvae_table.py                      # the bundled starters: vae, dp-vae, factor, dp-factor (-mnist5k)
    python scripts/dpvae_table.py --train              # the six pairs trained on mnist5k (recipe lengths) into $VAEZOO_HOME/dpvae
    python scripts/dpvae_table.py --train --seeds 0,1,2 --models info,dp-info   # some of them, three training seeds
    python scripts/dpvae_table.py --train --models tc,dp-tc --tc-dimwise prior  # beta-TCVAE's dimension-wise term on g^-1(z0) samples
    python scripts/dpvae_table.py --train --authors --steps 3000   # the dpVAE authors' settings (their 100k steps shortened)

Finished runs are reused (with the numbers `vaezoo evaluate` recorded in them under the same protocol) and killed
ones resumed, so the table can be built up over several calls. Every number
comes from ``vaezoo evaluate MODEL --metrics fid,fid-lp,skl --samples N --seed S`` (see vaezoo.evaluation.suite
for the protocol): FID-LeNet between N prior samples and the 4,500 mnist5k training digits, FID-LP on the N
lowest-aggregate-posterior of 10 N prior draws, sKL by the 1-NN estimator between N prior and N aggregate-posterior
draws (the 500 validation digits, N / 500 draws each) in the space the prior lives in; the NLL is training's own
(metrics.json: the 500 validation digits, K = 1000, grey levels under the Bernoulli likelihood). The FID classifier is
``lenet-mnist5k`` (trained and exported into $VAEZOO_HOME first when it is not there). With several training seeds a
cell is mean +- standard deviation over them. ``--grids DIR`` writes 64 prior samples and 64 LP samples (sample seed 0)
of each model's first seed.

Ours, not the paper's: mnist5k (4,500 training digits, not 60,000), the recipes' MLP nets with latent 16
and a Bernoulli likelihood (the authors: the beta-VAE conv net, latent 2, MSE, 100k iterations,
augmentation), our LeNet's features (not their FID code, which wrote one batch only), sKL in 16
dimensions. So only the orderings (with vs without the decoupled prior) compare with the paper. ``--authors`` trains
from train/recipes/dpvae_authors/ instead: the authors' latent 2, MSE weights, hyper-parameters, batches, learning
rates and augmentation, with our conv28 net (those files say what is theirs and what is ours); their 100k iterations
are --steps away, and the NLL is then under their Gaussian (MSE) likelihood, not comparable with the Bernoulli one. The paper
gives numbers for three of the six pairs (REFERENCE.md); the others print "-".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

PAPER = {  # REFERENCE.md, the dpVAE paper's MNIST numbers: FID / FID-LP / sKL
    "vae": (137.4, 165.0, 1.26), "dp-vae": (129.0, 153.1, 0.88),
    "factor": (130.5, 191.2, 1.04), "dp-factor": (120.8, 121.3, 0.85),
    "info": (128.7, 133.2, 2.89), "dp-info": (110.1, 110.5, 1.70),
}
FAMILIES = ["vae", "beta-h", "beta-b", "tc", "factor", "info"]
BUNDLED = ["vae", "dp-vae", "factor", "dp-factor"]
AUTHORS = Path(__file__).resolve().parent.parent / "train" / "recipes" / "dpvae_authors"


def vaezoo(*args: str, capture: bool = False) -> str:
    cmd = [sys.executable, "-c", "from vaezoo.cli import main; main()", *args]
    print("+ vaezoo " + " ".join(args), file=sys.stderr, flush=True)
    res = subprocess.run(cmd, check=True, text=True, stdout=subprocess.PIPE if capture else None)
    return res.stdout if capture else ""


def ensure_classifier(name: str, threads: int) -> None:
    from vaezoo.store.resolution import local_dir

    if Path(name).is_dir():   # a checkpoint folder given as --classifier: used as it is
        return
    folder = local_dir(name)
    if not (folder / "onnx" / "features.onnx").is_file():
        if not (folder / "model.safetensors").is_file():
            vaezoo("train", name, "--threads", str(threads), "-q")
        vaezoo("export", name, "--check")


def override_file(model: str, args, folder: Path) -> str | None:
    """The recipe override file a run trains from (None: the registry's recipe): the authors' settings, the
    other dimension-wise estimator for tc. With --steps, beta-B's capacity still reaches C_max at the last step."""
    from vaezoo import toml
    from vaezoo.recipes import to_toml

    fam = model.removeprefix("dp-")
    table: dict = {}
    if args.authors:
        with open(AUTHORS / f"{model}.toml", "rb") as f:
            table = toml.load(f)
        if args.steps and "capacity_steps" in table.get("objective", {}):
            table["objective"]["capacity_steps"] = args.steps
    if args.tc_dimwise and fam == "tc":
        table = {"family": model, "dataset": "mnist5k", **table}
        table.setdefault("objective", {})["dimwise"] = args.tc_dimwise
    if not table:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{model}.toml"
    path.write_text(to_toml(table))
    return str(path)


def trained(model: str, seed: int, args) -> Path:
    """The checkpoint folder of one model and training seed, trained and exported unless it is there."""
    from vaezoo.store.resolution import home

    fam = model.removeprefix("dp-")
    dimwise = args.tc_dimwise if fam == "tc" else None
    name = f"{model}-mnist5k" + (f"-dimwise-{dimwise}" if dimwise else "")
    out = home() / "dpvae" / ("authors" if args.authors else "") / f"seed{seed}" / name
    if (out / "onnx" / "decoder.onnx").is_file():
        return out
    recipe = override_file(model, args, out.parent / "recipes") or f"{model}-mnist5k"
    again = "--resume" if (out / "train_state.safetensors").is_file() else "--force"
    vaezoo("train", recipe, "--out", str(out), "--threads", str(args.threads), "--seed", str(seed), again, "-q",
           *(["--steps", str(args.steps)] if args.steps else []))
    vaezoo("export", str(out), "--check", "--force")
    return out


def recorded(folder: Path, args) -> dict | None:
    """The numbers `vaezoo evaluate` recorded in a run's metrics.json, when they were made with this protocol."""
    ev = json.loads((folder / "metrics.json").read_text()).get("evaluation", {})
    try:
        fid_ok = all(ev[k]["protocol"]["generated"] == args.samples and ev[k]["protocol"]["seed"] == args.seed
                     and ev[k]["protocol"]["classifier"] == Path(args.classifier).name for k in ("fid", "fid-lp"))
        skl_ok = ev["skl"]["protocol"]["prior"].startswith(f"{args.samples} draws") and f"seed {args.seed})" in ev["skl"]["protocol"]["prior"]
    except (KeyError, TypeError):
        return None
    return {k: ev[k]["value"] for k in ("fid", "fid-lp", "skl")} if fid_ok and skl_ok else None


def measure(model: str, args) -> dict:
    """FID / FID-LP / sKL from `vaezoo evaluate` (for a trained run, what it already recorded with this protocol, so
    a table printed again with more seeds or models measures only what is new); the NLL from training's metrics.json."""
    from vaezoo.store.resolution import resolve_model

    folder = resolve_model(model)
    found = recorded(folder, args) if Path(model).is_dir() else None
    if found is None:
        res = json.loads(vaezoo("evaluate", model, "--metrics", "fid,fid-lp,skl", "--samples", str(args.samples),
                                "--seed", str(args.seed), "--classifier", args.classifier, "--json", capture=True))
        found = {k: res["metrics"][k]["value"] for k in ("fid", "fid-lp", "skl")}
    nll = json.loads((folder / "metrics.json").read_text())["validation"]["nll"]
    return {**found, "nll": nll}


def figure(folder: Path, models: list[str], stems: list[str]) -> Path:
    """One PNG of every model's prior and LP samples (the first 16 of each 8 x 8 grid): a row per family, columns
    prior / LP, then the dp variant's."""
    from PIL import Image, ImageDraw

    def quarter(path):
        im = Image.open(path).convert("L")
        return im.crop((0, 0, im.size[0] // 2 + 1, im.size[1] // 2 + 1))   # 4 x 4 tiles and their padding

    grids = {m: [quarter(folder / f"{s}-{r}.png") for r in ("prior", "lp")] for m, s in zip(models, stems)}
    fams = list(dict.fromkeys(m.removeprefix("dp-") for m in models))
    side, label = next(iter(grids.values()))[0].size[0], 50
    sheet = Image.new("L", (label + 4 * (side + 6), 20 + len(fams) * (side + 6)), 255)
    draw = ImageDraw.Draw(sheet)
    for c, head in enumerate(("prior", "LP", "dp: prior", "dp: LP")):
        draw.text((label + c * (side + 6) + 4, 4), head, fill=0)
    for r, fam in enumerate(fams):
        y = 20 + r * (side + 6)
        draw.text((4, y + side // 2), fam, fill=0)
        for k, model in enumerate((fam, f"dp-{fam}")):
            for j, im in enumerate(grids.get(model, [])):
                sheet.paste(im, (label + (2 * k + j) * (side + 6), y))
    out = folder / "pairs.png"
    sheet.save(out)
    return out


def cell(values: list[float], digits: int) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", action="store_true", help="train every pair into $VAEZOO_HOME/dpvae (else: the bundled starters)")
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds (with --train)")
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0, help="the evaluation's seed")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--classifier", default="lenet-mnist5k")
    ap.add_argument("--tc-dimwise", choices=["posterior", "prior"], default=None,
                    help="train tc / dp-tc with this objective.dimwise (default: the recipe's)")
    ap.add_argument("--authors", action="store_true",
                    help="train with the dpVAE authors' settings (train/recipes/dpvae_authors/*.toml) instead of the recipes'")
    ap.add_argument("--grids", type=Path, default=None, help="write prior and LP sample grids of each model here")
    ap.add_argument("--models", default=None, help="comma-separated models (default: the six pairs with --train, else the bundled four)")
    args = ap.parse_args(argv)
    if args.authors and not args.train:
        ap.error("--authors trains (add --train)")

    ensure_classifier(args.classifier, args.threads)
    models = args.models.split(",") if args.models else (
        [m for f in FAMILIES for m in (f, f"dp-{f}")] if args.train else BUNDLED)
    seeds = [int(s) for s in args.seeds.split(",")] if args.train else [None]
    rows, stems = [], []
    for model in models:
        folders = [trained(model, s, args) if args.train else f"{model}-mnist5k" for s in seeds]
        runs = [measure(str(f), args) for f in folders]
        if args.grids:
            args.grids.mkdir(parents=True, exist_ok=True)
            stems.append(Path(str(folders[0])).name)   # the first seed's run: its grids' file names
            for region in ("prior", "lp"):
                vaezoo("sample", str(folders[0]), "-n", "64", "--seed", "0", "--force",
                       "-o", str(args.grids / f"{stems[-1]}-{region}.png"), *(["--region", region] if region == "lp" else []))
        rows.append((model, runs))
    if args.grids:
        print(f"figure: {figure(args.grids, [r[0] for r in rows], stems)}", file=sys.stderr)
    tag = f"trained here, seeds {args.seeds}" if args.train else "bundled starters"
    tag += ", the dpVAE authors' settings" if args.authors else ""
    tag += f", {args.steps} steps" if args.steps else ""
    dimwise = f", tc dimwise {args.tc_dimwise}" if args.tc_dimwise else ""
    print(f"mnist5k, {tag}{dimwise}, --samples {args.samples} --seed {args.seed}, classifier {args.classifier}\n")
    print("| model | FID-LeNet | FID-LP | sKL | val NLL (nats) | paper (MNIST) FID / FID-LP / sKL |")
    print("|---|---|---|---|---|---|")
    means = {}
    for model, runs in rows:
        paper = " / ".join(map(str, PAPER[model])) if model in PAPER else "-"
        cols = [cell([r[k] for r in runs], d) for k, d in (("fid", 1), ("fid-lp", 1), ("skl", 2), ("nll", 2))]
        means[model] = {k: statistics.mean(r[k] for r in runs) for k in ("fid", "fid-lp", "skl")}
        print(f"| {model} | {' | '.join(cols)} | {paper} |")
    pairs = [m for m in means if not m.startswith("dp-") and f"dp-{m}" in means]
    if pairs:
        print()
        for k in ("fid", "fid-lp", "skl"):
            wins = [m for m in pairs if means[f"dp-{m}"][k] < means[m][k]]
            print(f"{k}: the decoupled prior lower in {len(wins)} of {len(pairs)} pairs ({', '.join(wins) or 'none'})")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
