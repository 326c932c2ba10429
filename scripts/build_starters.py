"""Rebuild the bundled starter checkpoints with the project's own recipes.

    python scripts/build_starters.py [ID ...]

Trains each id on the bundled mnist5k digits into zoo/starters/<id>/ (config.json,
model.safetensors, metrics.json), exports its ONNX graphs with a parity check, and writes its
model card (zoo/starters/<id>/README.md and model_cards/<id>.md). Deterministic on one machine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STARTERS = ["vae-mnist5k", "dp-vae-mnist5k", "dp-factor-mnist5k", "m2-mnist5k"]


def run(*args: str) -> None:
    cmd = [sys.executable, "-c", "from vaezoo.cli import main; main()", *args]
    print("+ vaezoo " + " ".join(args), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def main(ids: list[str]) -> None:
    for mid in ids or STARTERS:
        out = REPO / "zoo" / "starters" / mid
        run("train", mid, "--out", str(out), "--device", "cpu", "--force", "-q")
        run("export", str(out), "--check")
        for card in (REPO / "model_cards" / f"{mid}.md", out / "README.md"):
            run("card", str(out), "-o", str(card), "--force")


if __name__ == "__main__":
    main(sys.argv[1:])
