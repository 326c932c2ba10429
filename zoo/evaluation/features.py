"""The FID-LeNet classifier through ONNX Runtime (no torch): its ``features`` graph gives logits and the
penultimate features of N x 1 x 28 x 28 digits in [0, 1].

The classifier is an ordinary checkpoint (``vaezoo train lenet-mnist5k`` then ``vaezoo export``), found
like any model argument: its id in the local store, a folder, or ``hf-hub:``. Its graph is read through
the manifest check and its metadata must describe the checkpoint, as for every other graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaezoo.errors import UsageError

PART = "features"
BATCH = 1000


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


def load_feature_net(spec: str, offline: bool = False) -> FeatureNet:
    from vaezoo.errors import VaezooError
    from vaezoo.store.resolution import resolve_model

    try:
        folder = resolve_model(spec, need="graphs", offline=offline)
    except VaezooError as exc:
        raise UsageError(f"FID classifier {spec!r}: {exc} (then `vaezoo export {spec}`; or pass --classifier FOLDER)") from None
    return FeatureNet(folder)
