"""Rebuild the bundled starter checkpoints with the project's own recipes.

    python scripts/build_starters.py [ID ...]                 # train, export, evaluate, card
    python scripts/build_starters.py --evaluate-only [ID ...] # the bundled weights as they are: evaluate, card

Trains each id on the bundled mnist5k digits into zoo/starters/<id>/ (config.json, model.safetensors,
metrics.json), exports its ONNX graphs with a parity check, evaluates it and writes its model card
(zoo/starters/<id>/README.md and model_cards/<id>.md). Deterministic on one machine.

`lenet-mnist5k` comes first: it is the digit classifier of FID-LeNet, bundled so that `vaezoo evaluate` works on
a fresh install. The others are evaluated with every default metric that applies to them
(`vaezoo.evaluation.suite.default_metrics`: FID-LeNet, FID-LP, sKL and NLL for the VAEs, FID-LeNet and the
error rate for M2), with the FID protocol of the dpVAE paper's REFERENCE: 10,000 generated samples (the CLI's
default is 5,000), numpy seed 0, the 4,500 mnist5k training digits as the real set. The results go into each
metrics.json under "evaluation", with their protocols, and from there onto the card.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLASSIFIER = "lenet-mnist5k"
STARTERS = [CLASSIFIER, "vae-mnist5k", "dp-vae-mnist5k", "factor-mnist5k", "dp-factor-mnist5k", "m2-mnist5k"]
FID_SAMPLES = 10_000


def run(*args: str) -> None:
    cmd = [sys.executable, "-c", "from vaezoo.cli import main; main()", *args]
    print("+ vaezoo " + " ".join(args), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def evaluate(folder: Path) -> None:
    """Every default metric of the starter, recorded into its metrics.json (in process: `vaezoo evaluate`
    leaves bundled checkpoints alone, and this script is what writes them)."""
    from vaezoo.evaluation import suite
    from vaezoo.runtime.pipeline import load_pipeline

    pipe = load_pipeline(str(folder), "onnx", "cpu")
    names = suite.default_metrics(pipe)
    proto = suite.Protocol(samples=FID_SAMPLES, seed=0, k=1, pool=10, classifier=str(REPO / "zoo" / "starters" / CLASSIFIER))

    def val_error_rate():
        from vaezoo.cli.classify_cmd import error_rate

        return error_rate(pipe, f"{pipe.config['recipe']['data']['name']}:val", None, 512)[0]

    print(f"+ evaluate {pipe.id}: {', '.join(names)}", file=sys.stderr, flush=True)
    results = suite.run(pipe, names, proto, offline=True, error_fn=val_error_rate)
    suite.record(folder, results, pipe.backend.name)
    for name, res in results.items():
        print(f"  {name}: {res['value']}", file=sys.stderr, flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ids", nargs="*", help=f"default: {' '.join(STARTERS)}")
    ap.add_argument("--evaluate-only", action="store_true", help="keep the bundled weights and graphs; evaluate and write the cards")
    args = ap.parse_args(argv)
    for mid in args.ids or STARTERS:
        out = REPO / "zoo" / "starters" / mid
        if not args.evaluate_only:
            run("train", mid, "--out", str(out), "--device", "cpu", "--force", "-q")
            run("export", str(out), "--check", "--force")
        if mid != CLASSIFIER:
            evaluate(out)
        for card in (REPO / "model_cards" / f"{mid}.md", out / "README.md"):
            run("card", str(out), "-o", str(card), "--force")


if __name__ == "__main__":
    main()
