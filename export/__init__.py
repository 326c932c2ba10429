"""vaezoo.export: ONNX export of a checkpoint's parts, parity checks, fp16/int8 variants, test data.

    from vaezoo.export import export_checkpoint
    report = export_checkpoint("path/to/checkpoint", check=True, fp16=True, int8=True)

Importing this package does not import torch (the exporter imports it when it runs).
"""

from vaezoo.export.onnx_export import DEFAULT_OPSET, EXPORTERS, MAX_OPSET, MIN_OPSET, export_checkpoint, export_part

__all__ = ["export_checkpoint", "export_part", "DEFAULT_OPSET", "MIN_OPSET", "MAX_OPSET", "EXPORTERS"]
