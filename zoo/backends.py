"""Backends run a model's parts over numpy arrays: ``run(part, *inputs) -> tuple of arrays``.

The torch backend lives here; the ONNX Runtime backend sits beside it and needs no torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaezoo.errors import UsageError

BACKENDS = ("auto", "torch", "onnx")


class TorchBackend:
    name = "torch"

    def __init__(self, folder: Path, device: str = "cpu"):
        try:
            import torch
        except ImportError:
            raise UsageError("the torch backend needs PyTorch (pip install 'vaezoo[torch]'), or use --backend onnx") from None
        from vaezoo.checkpoint import load_model
        from vaezoo.train.trainer import pick_device

        self.torch = torch
        self.device = pick_device(device)
        self.model, self.config = load_model(folder, self.device)
        self.parts = self.model.parts()

    def has(self, part: str) -> bool:
        return part in self.parts

    def run(self, part: str, *inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        torch = self.torch
        module = self.parts[part]
        with torch.inference_mode():
            outs = module(*(torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in inputs))
        if not isinstance(outs, tuple):
            outs = (outs,)
        return tuple(o.detach().cpu().numpy() for o in outs)


def make_backend(folder: Path, backend: str = "auto", device: str = "cpu"):
    """torch or onnx backend; ``auto`` picks ONNX when the graphs exist (and onnxruntime is installed).

    ``device`` (cpu, cuda, cuda:N, auto) is checked by the backend: the ONNX one asks ONNX Runtime for the
    CUDA provider and verifies it is the one in use.
    """
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "onnx" or (backend == "auto" and _onnx_ready(folder)):
        from vaezoo.backend_onnx import OnnxBackend

        return OnnxBackend(folder, device)
    if backend == "auto":
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            raise UsageError(f"{folder} has no ONNX graphs (onnx/*.onnx) and PyTorch is not installed: install "
                             "'vaezoo[torch]', or export the graphs where torch is installed (`vaezoo export MODEL`)")
    return TorchBackend(folder, device)


def _onnx_ready(folder: Path) -> bool:
    """auto picks ONNX when the graphs exist (and onnxruntime is installed), else torch."""
    from vaezoo.backend_onnx import CORE_PARTS, graph_path

    if not all(graph_path(folder, part).is_file() for part in CORE_PARTS):
        return False
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None
