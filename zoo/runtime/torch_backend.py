"""The torch backend: runs a checkpoint's parts (rebuilt from config.json, weights from safetensors)
over numpy arrays, ``run(part, *inputs) -> tuple of arrays``, like the ONNX backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vaezoo.models.loading import load_model
from vaezoo.runtime.device import pick_device


class TorchBackend:
    name = "torch"

    def __init__(self, folder: Path, device: str = "cpu"):
        self.device = pick_device(device)
        self.model, self.config = load_model(folder, self.device)
        self.parts = self.model.parts()

    def has(self, part: str) -> bool:
        return part in self.parts

    def run(self, part: str, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        module = self.parts[part].module
        with torch.inference_mode():
            outs = module(*(torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in inputs))
        if not isinstance(outs, tuple):
            outs = (outs,)
        return tuple(o.detach().cpu().numpy() for o in outs)
