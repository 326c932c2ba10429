"""Backends run a model's parts over numpy arrays: ``run(part, *inputs) -> tuple of arrays``, and say
which parts they have (``has(part)``). Two implement it: the ONNX Runtime backend (no torch) and the
torch backend; this module picks one. Neither is imported until it is chosen.
"""

from __future__ import annotations

from pathlib import Path

from vaezoo.errors import UsageError

BACKENDS = ("auto", "torch", "onnx")


def make_backend(folder: Path, backend: str = "auto", device: str = "cpu"):
    """torch or onnx backend; ``auto`` picks ONNX when the graphs exist (and onnxruntime is installed).

    ``device`` (cpu, cuda, cuda:N, auto) is checked by the backend: the ONNX one asks ONNX Runtime for the
    CUDA provider and verifies it is the one in use.
    """
    if backend not in BACKENDS:
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    graphs = _has_graphs(folder)
    if backend == "onnx" or (backend == "auto" and graphs and _installed("onnxruntime")):
        from vaezoo.runtime.onnx_backend import OnnxBackend

        return OnnxBackend(folder, device)
    try:
        import torch  # noqa: F401  (the torch backend needs it; one probe, where it is used)
    except ImportError:
        if backend == "torch":
            raise UsageError("the torch backend needs PyTorch (pip install 'vaezoo[torch]'), or use --backend onnx") from None
        if graphs:   # a bare `pip install vaezoo`: the graphs are there, their runtime is not
            raise UsageError("running the ONNX graphs needs ONNX Runtime: pip install 'vaezoo[cpu]' "
                             "(or 'vaezoo[gpu]' on a CUDA machine)") from None
        raise UsageError(f"{folder} has no ONNX graphs (onnx/*.onnx) and PyTorch is not installed: install "
                         "'vaezoo[torch]', or export the graphs where torch is installed (`vaezoo export MODEL`)") from None
    from vaezoo.runtime.torch_backend import TorchBackend

    return TorchBackend(folder, device)


def _has_graphs(folder: Path) -> bool:
    from vaezoo.runtime.onnx_backend import CORE_PARTS, graph_path

    return all(graph_path(folder, part).is_file() for part in CORE_PARTS)


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (torch takes seconds)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None
