"""`vaezoo export-web`: a static web page that samples from a model in the browser (onnxruntime-web)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from vaezoo.cli.app import app
from vaezoo.cli.options import ForceOpt, JsonOpt, ModelArg, OfflineOpt, emit


@app.command("export-web")
def export_web(
    model: ModelArg,
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the site (created; a non-empty one needs --force).")],
    ort_web: Annotated[Optional[Path], typer.Option(
        "--ort-web", help="An npm-installed node_modules/onnxruntime-web (or its dist/). Default: `npm pack` the pinned "
                          "version once into $VAEZOO_HOME/cache.")] = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, max=256, help="Seeds 0..N-1 get numpy's noise (the same samples as `vaezoo sample --seed`).")] = 8,
    grid: Annotated[int, typer.Option("--grid", min=1, max=1024, help="Samples in the page's grid.")] = 64,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    offline: OfflineOpt = False,
) -> None:
    """Write a static page that runs the model's prior_inverse and decoder graphs in the browser: a sample grid from a seed, latent sliders, an interpolation."""
    from vaezoo.runtime.pipeline import load_pipeline
    from vaezoo.store.resolution import home
    from vaezoo.web import ortweb
    from vaezoo.web.site import check_model, check_target, site_files, write_site

    check_target(output, force)    # refusals first: the folder, the model, then onnxruntime-web (npm may download)
    pipe = check_model(load_pipeline(model, "onnx", "cpu", offline=offline))
    dist, version = ortweb.find(ort_web, home())
    size = write_site(site_files(pipe, seeds, grid, dist, version), output, force)
    emit({"model": pipe.id, "output": str(output), "ort_web": version, "seeds": seeds, "grid": grid, "bytes": size},
         as_json, f"wrote the page for {pipe.id} to {output} ({size / 2**20:.1f} MiB, onnxruntime-web {version}); "
                  f"serve it, e.g. `python -m http.server -d {output}`")
