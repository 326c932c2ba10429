"""FID's feature networks through ONNX Runtime (no torch).

* FID-LeNet (1 x 28 x 28 digits): the ``features`` graph of a classifier checkpoint (``lenet-mnist5k``, bundled),
  found like any model argument (an id in the store, a folder, ``hf-hub:``), read through the manifest check; it
  gives logits and the penultimate features of digits in [0, 1].
* Inception (every other image model, or any model given ``--classifier FILE.onnx``): a bare ONNX feature graph,
  images N x 3 x H x W in [0, 1] -> N x F, by default the FID Inception-v3 that ``python -m vaezoo.export.inception``
  makes from pytorch-fid's weights at $VAEZOO_HOME/features/pt_inception-2015-12-05.onnx. vaezoo never downloads
  it; grey images are repeated to three channels; the graph's SHA-256 goes into the protocol.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from vaezoo.errors import UsageError

PART = "features"
BATCH = 1000
DIGITS = (1, 28, 28)   # the images FID-LeNet reads
DEFAULT_CLASSIFIER = "lenet-mnist5k"
INCEPTION_FILE = "pt_inception-2015-12-05.onnx"   # vaezoo.export.inception.FILE_NAME


class FeatureNet:
    def __init__(self, folder: Path):
        from vaezoo.runtime.onnx_backend import CPU_EP, check_metadata, graph_path, load_session, physical_cores, read_metadata
        from vaezoo.store.checkpoint import ONNX_DIR, read_config, read_verified

        self.folder = Path(folder)
        self.config = read_config(self.folder)
        path = graph_path(self.folder, PART)
        if not path.is_file():
            raise UsageError(f"{self.config['id']} has no {ONNX_DIR}/{PART}.onnx: not an exported FID classifier "
                             f"(`vaezoo export {self.config['id']}` if it is one; else `vaezoo train lenet-mnist5k && "
                             "vaezoo export lenet-mnist5k`)")
        name = f"{ONNX_DIR}/{PART}.onnx"
        data = read_verified(self.folder, [name], self.config)[name]
        self.session = load_session(path, [CPU_EP], physical_cores(), data=data)
        check_metadata(read_metadata(path, self.session), self.config, PART, path, self.folder)
        self.shape = tuple(self.config["input"]["shape"])
        self.labels = list(self.config["labels"])
        self.feature_dim = int(self.config["latent_dim"])

    @property
    def id(self) -> str:
        return self.config["id"]

    def check_images(self, shape: tuple, model_id: str) -> None:
        if tuple(shape) != self.shape:
            raise UsageError(f"the FID classifier {self.id} reads {self.shape} images; {model_id} makes {tuple(shape)}")

    def features(self, x: np.ndarray) -> np.ndarray:
        return self.run(x)[1]

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logits N x K, features N x D) of images N x C x H x W in [0, 1]."""
        x = np.asarray(x, dtype=np.float32)
        if tuple(x.shape[1:]) != self.shape:
            raise UsageError(f"the FID classifier {self.id} reads images of shape {self.shape}, not {tuple(x.shape[1:])}")
        logits, feats = [], []
        name = self.session.get_inputs()[0].name
        for s in range(0, len(x), BATCH):
            lo, fe = self.session.run(None, {name: np.ascontiguousarray(x[s : s + BATCH])})
            logits.append(lo)
            feats.append(fe)
        return np.concatenate(logits), np.concatenate(feats)


class GraphFeatures:
    """A bare ONNX feature graph (the FID Inception): images N x 3 x H x W in [0, 1] -> N x F features."""

    BATCH = 50   # 299 x 299 activations of 50 images: about 1 GB in the widest layers

    def __init__(self, path: Path, device: str = "cpu"):
        from vaezoo.runtime.onnx_backend import CPU_EP, CUDA_EP, import_onnxruntime, load_session, physical_cores

        self.path = Path(path)
        if not self.path.is_file():
            raise UsageError(f"no feature graph at {self.path}")
        ort = import_onnxruntime()
        cuda = device.startswith("cuda") and CUDA_EP in ort.get_available_providers()
        data = self.path.read_bytes()   # one read: the session and the protocol's digest
        self.digest = hashlib.sha256(data).hexdigest()
        try:
            self.session = load_session(self.path, [CUDA_EP, CPU_EP] if cuda else [CPU_EP], physical_cores(), data=data)
        except Exception as exc:   # not an ONNX file, or one ONNX Runtime cannot run
            raise UsageError(f"{self.path}: not a feature graph ONNX Runtime can run ({type(exc).__name__})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        dims = outputs[0].shape if outputs else []
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or len(dims) != 2 or not isinstance(dims[1], int):
            raise UsageError(f"{self.path}: a feature graph takes images N x 3 x H x W and gives N x F features; this one "
                             f"takes {[i.shape for i in inputs]} and gives {[o.shape for o in outputs]}")
        self.feature_dim = int(dims[1])
        self.meta = dict(self.session.get_modelmeta().custom_metadata_map)

    @property
    def id(self) -> str:
        return f"{self.meta.get('vaezoo.feature_net', 'feature graph')} {self.path.name} (sha256 {self.digest[:16]})"

    def check_images(self, shape: tuple, model_id: str) -> None:
        if len(shape) != 3 or shape[0] not in (1, 3):
            raise UsageError(f"the feature graph {self.path.name} reads 1- or 3-channel images; {model_id} makes {tuple(shape)}")

    def features(self, x: np.ndarray) -> np.ndarray:
        from vaezoo.io.progress import Progress

        x = np.asarray(x, dtype=np.float32)
        name = self.session.get_inputs()[0].name
        out = []
        bar = Progress(len(x), desc=f"{self.path.stem} features", unit="images", enabled=len(x) > self.BATCH)
        for s in range(0, len(x), self.BATCH):
            b = x[s : s + self.BATCH]
            b = np.repeat(b, 3, axis=1) if b.shape[1] == 1 else b
            out.append(self.session.run(None, {name: np.ascontiguousarray(b)})[0])
            bar.advance(len(b))
        bar.close()
        return np.concatenate(out)


def inception_path() -> Path:
    """Where `python -m vaezoo.export.inception` puts the FID Inception graph (the default for non-digit images)."""
    from vaezoo.store.resolution import home

    return home() / "features" / INCEPTION_FILE


def load_feature_net(spec: str | None, offline: bool = False, shape: tuple = DIGITS, device: str = "cpu"):
    """The FID feature network for images of ``shape``: ``spec`` (a classifier checkpoint, or a .onnx feature graph),
    else FID-LeNet for digits and the local Inception graph for every other image."""
    from vaezoo.errors import VaezooError
    from vaezoo.store.resolution import resolve_model

    if spec is None and tuple(shape) != DIGITS:
        path = inception_path()
        if not path.is_file():
            raise UsageError(f"FID of {'x'.join(map(str, shape))} images uses the Inception features, and there is no "
                             f"Inception graph at {path}: make it from pytorch-fid's weights file, which vaezoo does not "
                             "download (`python -m vaezoo.export.inception pt_inception-2015-12-05-6726825d.pth`), or pass "
                             "--classifier FILE.onnx")
        return GraphFeatures(path, device)
    if spec is not None and spec.endswith(".onnx"):
        return GraphFeatures(Path(spec), device)
    spec = spec or DEFAULT_CLASSIFIER
    try:
        folder = resolve_model(spec, need="graphs", offline=offline)
    except VaezooError as exc:
        raise UsageError(f"FID classifier {spec!r}: {exc} (then `vaezoo export {spec}`; or pass --classifier FOLDER)") from None
    return FeatureNet(folder)
