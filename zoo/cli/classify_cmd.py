"""Classification commands: classify (batch jobs), evaluate (error rate on labelled data), analogies.

None of them imports torch with ``--backend onnx`` (or auto with exported graphs).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, List, Optional

import numpy as np
import typer

from vaezoo.cli.app import app
from vaezoo.cli.options import (print_json, Backend, BackendOpt, BatchSizeOpt, DataDirOpt, DeviceOpt, FidClassifierOpt, ForceOpt, Format, JsonOpt, KnnOpt,
                                MetricsOpt, ModelArg, OfflineOpt, OutputOpt, PoolOpt, QuietOpt, SamplesOpt, SeedOpt, TemperatureOpt,
                                emit, require_output)

EXIT_SOME_FAILED = 3


@app.command()
def classify(
    model: ModelArg,
    inputs: Annotated[List[str], typer.Argument(help="Image files, folders (recursive, sorted), .npy arrays or IDX files.")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="preds.csv, preds.jsonl or logits.npy (default: CSV on stdout).")] = None,
    fmt: Annotated[Optional[Format], typer.Option("--format", help="csv or jsonl on stdout (default csv; -o picks by extension).")] = None,
    batch_size: BatchSizeOpt = 512,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Also write the k most likely classes and their probabilities.")] = 1,
    shard: Annotated[Optional[str], typer.Option("--shard", help="i/n: classify only the i-th of n contiguous parts of the input (1-based).")] = None,
    backend: BackendOpt = Backend.auto,
    device: DeviceOpt = "cpu",
    force: ForceOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    decode_threads: Annotated[int, typer.Option("--decode-threads", min=1, help="Image files decoded at once in a thread pool (the output is the same for any value; 1: no pool).")] = 1,
    offline: OfflineOpt = False,
) -> None:
    """Classify images in a batch job: one row per input item (source, index, label, probability, top-k).

    Streams: rows are written as batches finish, memory stays flat. An unreadable input becomes an
    error row and a line on stderr; the others are still classified, and the exit code is 3.
    """
    from vaezoo.runtime import classify as engine
    from vaezoo.errors import UsageError
    from vaezoo.io.files import atomic_path, check_writable
    from vaezoo.runtime.pipeline import load_pipeline

    engine.parse_shard(shard)
    if as_json and output is None:
        raise UsageError("--json prints the run's summary on stdout, where the rows go without -o: "
                         "give -o preds.csv (or .jsonl, .npy) for the rows")
    kind = fmt.value if fmt else "csv"
    if output is not None:
        ext = output.suffix.lower()
        kinds = {".csv": "csv", ".jsonl": "jsonl", ".npy": "npy"}
        if ext not in kinds:
            raise UsageError(f"unsupported output {output}: use .csv, .jsonl or .npy (logits)")
        kind = kinds[ext]
        check_writable(output, force)
    pipe = load_pipeline(model, backend.value, device, offline=offline)
    if top_k > len(pipe.labels) and kind != "npy" and pipe.labels:
        print(f"warning: --top-k {top_k} is more than the {len(pipe.labels)} classes of {pipe.id}; "
              f"writing all {len(pipe.labels)}", file=sys.stderr)

    def go(fh):
        writer = engine.NpyWriter(fh) if kind == "npy" else engine.RowWriter(fh, kind, pipe.labels, top_k)
        return engine.run(pipe, inputs, writer, batch_size=batch_size, shard=shard, progress=not quiet, threads=decode_threads)

    if output is None:
        summ = go(sys.stdout)
    else:
        with atomic_path(output) as tmp:
            mode = "wb" if kind == "npy" else "w"
            with open(tmp, mode, **({} if kind == "npy" else {"encoding": "utf-8", "newline": ""})) as fh:
                summ = go(fh)
    rate = summ.items / max(summ.seconds, 1e-9)
    where = f" -> {output}" if output else ""
    msg = (f"classified {summ.classified} of {summ.items} items"
           + (f" (shard {summ.shard[0]}/{summ.shard[1]} of {summ.total})" if summ.shard[1] > 1 else "")
           + (f", {summ.failed} FAILED" if summ.failed else "")
           + f" in {summ.seconds:.1f}s ({rate:.0f} items/s, backend {pipe.backend.name}){where}")
    print(msg, file=sys.stderr)
    if as_json:   # the rows went to the -o file (checked above), so stdout is free for the summary
        print_json({"model": pipe.id, "backend": pipe.backend.name, "items": summ.items, "total": summ.total,
                    "shard": list(summ.shard), "classified": summ.classified, "failed": summ.failed,
                    "seconds": round(summ.seconds, 3), "output": str(output)})
    if summ.failed:
        raise typer.Exit(EXIT_SOME_FAILED)


# ---------------------------------------------------------------- evaluate
class _EvalWriter:
    """Accumulates error and cross-entropy from the engine's rows; labels come from ``label_of``."""

    def __init__(self, label_of, k: int):
        self.label_of, self.k = label_of, k
        self.n = self.err = 0
        self.ce = 0.0
        self.failed: list[str] = []
        self.confusion = np.zeros((k, k), dtype=np.int64)

    def begin(self, n, k):
        pass

    def end(self):
        pass

    def add(self, logits: np.ndarray, y: np.ndarray) -> None:
        z = logits.astype(np.float64)
        z -= z.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        pred = logp.argmax(1)
        self.n += len(y)
        self.err += int((pred != y).sum())
        self.ce += float(-logp[np.arange(len(y)), y].sum())
        np.add.at(self.confusion, (y, pred), 1)

    def write(self, rows, logits) -> None:
        ys, rs = [], []
        for _, src, idx, r, err in rows:
            if err is not None:
                self.failed.append(src)
                continue
            y = self.label_of(src, idx)
            if y is None:
                self.failed.append(src)
                continue
            ys.append(y)
            rs.append(r)
        if rs:
            self.add(logits[rs], np.asarray(ys))


def _labelled_arrays(spec: str, pipe):
    """dataset[:split] or an .npz with x and y -> (x uint8/float array, y int array, description)."""
    from vaezoo.data import DATASETS, load_dataset
    from vaezoo.errors import UsageError

    name, _, split = spec.partition(":")
    if name in DATASETS:
        ds = load_dataset(name, split or "test")
        if ds.y is None:
            raise UsageError(f"{name} has no labels")
        return ds.x, ds.y, f"{name} split {ds.split} ({len(ds)} examples)"
    path = Path(spec)
    if path.suffix.lower() == ".npz" and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            if "x" not in z or "y" not in z:
                raise UsageError(f"{path} must hold arrays 'x' (images) and 'y' (labels)")
            return z["x"], z["y"], f"{path} ({len(z['y'])} examples)"
    return None


def error_rate(pipe, data: str, labels: Optional[Path], batch_size: int) -> tuple[dict, list]:
    """(result, unreadable sources) of the classifier q(y|x) on labelled data (the --data forms)."""
    from vaezoo.runtime import classify as engine
    from vaezoo.errors import UsageError

    if not pipe.labels:
        raise UsageError(f"{pipe.id} has no classifier")
    k = len(pipe.labels)
    arrays = _labelled_arrays(data, pipe) if labels is None else None
    if arrays is not None:
        x, y, desc = arrays
        ev = _EvalWriter(None, k)
        layout = engine.fit_array_shape(x.shape, pipe.shape)
        if layout is None:
            raise UsageError(f"{data}: images of shape {x.shape[1:]} do not fit {pipe.id} ({pipe.shape})")
        scale = 1 / 255.0 if x.dtype == np.uint8 or float(np.max(x[:1000])) > 1 else 1.0
        for s in range(0, len(x), batch_size):
            xb = engine.to_model_rows(x[s : s + batch_size], layout, pipe.shape, scale)
            ev.add(pipe.classify_logits(xb), np.asarray(y[s : s + batch_size], dtype=np.int64))
    else:
        root = Path(data)
        if labels is not None:
            ent = engine.inspect(labels, "idx" if engine.sniff(labels) == "idx" else "npy")
            if ent.error:
                raise UsageError(ent.error)
            lab = np.load(labels) if ent.kind == "npy" else np.asarray(engine.Reader((1, 1, 1), engine.Notes())._open_array(ent)[0:ent.count])
            lab = np.asarray(lab).reshape(-1).astype(np.int64)
            label_of = lambda src, idx: int(lab[idx]) if idx is not None and idx < len(lab) else None  # noqa: E731
            desc = f"{data} with labels {labels}"
        elif root.is_dir():
            index = {name: i for i, name in enumerate(pipe.labels)}

            def label_of(src, idx):
                rel = Path(src).relative_to(root).parts
                return index.get(rel[0]) if len(rel) > 1 else None

            subs = [p.name for p in root.iterdir() if p.is_dir()]
            if not any(s in index for s in subs):
                raise UsageError(f"{root}: expected subfolders named by class ({', '.join(pipe.labels)})")
            desc = f"folder {root} (labels from subfolder names)"
        else:
            raise UsageError(f"--data {data!r}: not a dataset name, a folder, an .npz, or IDX/.npy images with --labels")
        ev = _EvalWriter(label_of, k)
        engine.run(pipe, [str(root)], ev, batch_size=batch_size, progress=False)
    if ev.n == 0:
        raise UsageError(f"no labelled examples were read from {data}")
    res = {"model": pipe.id, "data": desc, "examples": ev.n, "error_rate": ev.err / ev.n, "errors": ev.err,
           "cross_entropy": ev.ce / ev.n, "failed": len(ev.failed), "backend": pipe.backend.name,
           "protocol": "argmax of q(y|x) from the exported classifier part; cross-entropy in nats per example",
           "per_class_error": [round(1 - ev.confusion[c, c] / max(ev.confusion[c].sum(), 1), 4) for c in range(k)],
           "confusion": ev.confusion.tolist()}
    return res, ev.failed


@app.command()
def evaluate(
    model: ModelArg,
    data: Annotated[Optional[str], typer.Option("--data", help="Labelled data for the error rate: dataset[:split] (e.g. mnist5k:val, mnist:test), a folder of class-named subfolders (3/x.png), an .npz with x and y, or IDX images with --labels (with --metrics: default the model's dataset, split val).")] = None,
    labels: Annotated[Optional[Path], typer.Option("--labels", help="IDX label file for IDX (or .npy) images given in --data.")] = None,
    metrics: MetricsOpt = None,
    samples: SamplesOpt = 5000,
    seed: SeedOpt = 0,
    k: KnnOpt = 1,
    pool: PoolOpt = 10,
    classifier: FidClassifierOpt = None,
    data_dir: DataDirOpt = None,
    batch_size: BatchSizeOpt = 512,
    backend: BackendOpt = Backend.auto,
    device: DeviceOpt = "cpu",
    as_json: JsonOpt = False,
    offline: OfflineOpt = False,
) -> None:
    """Measure a model: by default every metric that applies to it (digit models: FID-LeNet, FID-LP, sKL, NLL;
    classifiers: the error rate; sprites: MIG, the FactorVAE score and DCI), or those named by --metrics (also
    the leakage curve), each with its protocol, recorded into the checkpoint's metrics.json. With --data and
    no --metrics: the error rate and cross-entropy of the classifier q(y|x) on that labelled data alone."""
    from vaezoo.errors import UsageError
    from vaezoo.runtime.pipeline import load_pipeline

    if metrics is None and data is not None:   # the classifier's error rate alone, on the data given
        pipe = load_pipeline(model, backend.value, device, offline=offline)
        res, failed = error_rate(pipe, data, labels, batch_size)
        emit(res, as_json, f"{pipe.id} on {res['data']}: error {100 * res['error_rate']:.2f}% ({res['errors']}/{res['examples']}), "
                           f"cross-entropy {res['cross_entropy']:.4f} nats" + (f", {len(failed)} unreadable/unlabelled" if failed else ""))
        if failed:
            raise typer.Exit(EXIT_SOME_FAILED)
        return
    from vaezoo.evaluation import suite

    names = suite.parse_metrics(metrics) if metrics is not None else None
    if names is not None and (data is not None or labels is not None) and "error" not in names:
        raise UsageError("--data and --labels are the labelled data of the error metric; add error to --metrics")
    if labels is not None and data is None:
        raise UsageError("--labels names the labels of IDX or .npy images given in --data")
    pipe = load_pipeline(model, backend.value, device, offline=offline)
    if names is None:
        names = suite.default_metrics(pipe)
        if not names:
            raise UsageError(f"no metric of `vaezoo evaluate` applies to {pipe.id} by default; name them with --metrics")
    spec = data or f"{pipe.config['recipe']['data']['name']}:val"
    proto = suite.Protocol(samples=samples, seed=seed, k=k, pool=pool, classifier=classifier, data_dir=data_dir)
    results = suite.run(pipe, names, proto, offline=offline, error_fn=lambda: error_rate(pipe, spec, labels, batch_size)[0])
    recorded = _record(pipe, results)
    summary = {"model": pipe.id, "backend": pipe.backend.name, "metrics": results, "recorded": recorded}
    lines = [f"{pipe.id} (backend {pipe.backend.name})" + (f"; recorded in {recorded}" if recorded else "; not recorded (a bundled or cached checkpoint is read-only)")]
    for name, res in results.items():
        value = res["value"]
        if name == "leakage":
            shown = ", ".join(f"{r['level']:g}: {r['leakage']:.3f}" for r in value)
        else:   # a number, or named numbers (dci)
            shown = ", ".join(f"{k} {v:.4g}" for k, v in value.items()) if isinstance(value, dict) else f"{value:.4g}"
        lines.append(f"{name:<8} {shown}   [" + "; ".join(f"{key} {val}" for key, val in res["protocol"].items()) + "]")
    emit(summary, as_json, "\n".join(lines))


def _record(pipe, results: dict) -> Optional[str]:
    """Record into the checkpoint's metrics.json when it is the user's own (the local store or a folder)."""
    from vaezoo.evaluation.suite import record
    from vaezoo.store.hub import cache_dir
    from vaezoo.store.resolution import bundled_dir

    folder = Path(pipe.folder).resolve()
    if folder == bundled_dir(pipe.id).resolve() or folder.is_relative_to(cache_dir().resolve()):   # read-only copies
        return None
    record(folder, results, pipe.backend.name)
    return str(folder / "metrics.json")


# ---------------------------------------------------------------- analogies
@app.command()
def analogies(
    model: ModelArg,
    rows: Annotated[int, typer.Option("--rows", "-n", min=1, help="Rows: one latent z each (prior draws from --seed).")] = 10,
    inputs: Annotated[Optional[List[str]], typer.Argument(help="Images whose styles (z under their class: --classes, or the predicted one) give the rows.")] = None,
    classes: Annotated[Optional[str], typer.Option("--classes", help="The inputs' classes, comma-separated, one per input (models without a classifier need them).")] = None,
    seed: SeedOpt = 0,
    temperature: TemperatureOpt = 1.0,
    output: OutputOpt = None,
    backend: BackendOpt = Backend.auto,
    device: DeviceOpt = "cpu",
    force: ForceOpt = False,
    as_json: JsonOpt = False,
    offline: OfflineOpt = False,
) -> None:
    """The M2 paper's analogies grid for conditional models: one row per z, one column per class (style transfer)."""
    from vaezoo.io.images import load_inputs, save_output
    from vaezoo.runtime.pipeline import load_pipeline

    output = require_output(output)
    pipe = load_pipeline(model, backend.value, device, offline=offline)
    x = load_inputs(inputs, pipe.shape)[0] if inputs else None
    out = pipe.analogies(rows, seed, temperature, x, None if classes is None else [v.strip() for v in classes.split(",")])
    save_output(out, output, force=force, nrow=len(pipe.labels))
    emit({"model": pipe.id, "output": str(output), "rows": len(out) // len(pipe.labels), "backend": pipe.backend.name},
         as_json, f"wrote a {len(out) // len(pipe.labels)} x {len(pipe.labels)} analogies grid to {output}")
