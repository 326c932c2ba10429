"""Which torch device a ``--device`` value means (torch is imported by the caller's first use)."""

from __future__ import annotations

from vaezoo.errors import UsageError, VaezooError


def pick_device(device: str):
    """``auto`` (cuda when torch sees one), ``cpu``, ``cuda`` or ``cuda:N`` -> a torch.device."""
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, not {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VaezooError(f"--device {device}: no CUDA device is available to torch (use --device cpu or auto)")
    return torch.device(device)
