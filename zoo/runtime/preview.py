"""The sample grid a checkpoint carries (``samples.png``, listed in its manifest, shown on its card), so
a reader of the card sees what the model draws before downloading it."""

from __future__ import annotations

from pathlib import Path

from vaezoo.io.files import read_json
from vaezoo.io.images import save_output
from vaezoo.store.checkpoint import CONFIG, MANIFEST_KEY, compute_manifest, write_config

PREVIEW = "samples.png"
COUNT, SEED = 64, 0   # what the card says the grid is: `vaezoo sample ID -n 64 --seed 0`


def write_preview(folder: Path, backend: str = "auto") -> Path | None:
    """Draw the grid with the pipeline, as `vaezoo sample` would, and add it to config.json's manifest.
    Image models that sample from the prior only (None otherwise: vectors, image completion, a classifier
    with no decoder such as FID-LeNet's); an existing
    grid is replaced (it is derived from the weights)."""
    from vaezoo.runtime.pipeline import load_pipeline

    folder = Path(folder)
    pipe = load_pipeline(str(folder), backend=backend)
    if not pipe.is_image or pipe.completion or not pipe.backend.has("decoder"):
        return None
    save_output(pipe.sample(COUNT, seed=SEED), folder / PREVIEW, force=True)
    config = read_json(folder / CONFIG)
    config[MANIFEST_KEY] = dict(sorted({**config[MANIFEST_KEY], **compute_manifest(folder, [PREVIEW])}.items()))   # only the grid is new
    write_config(folder, config)
    return folder / PREVIEW
