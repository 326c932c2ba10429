"""Reduced-precision copies of the fp32 graphs, each with its measured error.

* ``<part>.fp16.onnx``: weights and compute in float16, inputs and outputs kept float32 (Cast nodes at
  the boundary), made by ``onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)``.
  Half the size; meant for GPUs (on CPU ONNX Runtime runs many fp16 ops through casts, so it is slower).
* ``<part>.int8.onnx``: dynamic quantization (``onnxruntime.quantization.quantize_dynamic``): int8 weights
  of MatMul / Gemm / Conv, activations quantized per batch at run time (DynamicQuantizeLinear,
  MatMulInteger, ConvInteger). About a quarter of the size. CPU only (ONNX Runtime's CUDA provider lacks
  these integer kernels).

Their error against torch fp32 is measured at export time (batch 64, same inputs as the fp32 check),
reported by ``vaezoo export`` and stored in the variant graph's own metadata (``measured_error``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

PRECISIONS = ("fp16", "int8")
NOTES = {
    "fp16": "fp16 weights and compute, fp32 inputs/outputs (onnxruntime.transformers.float16, keep_io_types=True); for GPUs",
    "int8": "dynamic int8 quantization of MatMul/Gemm/Conv weights (onnxruntime.quantization.quantize_dynamic, QInt8); CPU only",
}


def to_fp16(proto):
    """An fp16 copy of an fp32 graph, float32 I/O kept."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from vaezoo.export.graph import finalize_graph

    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    half = convert_float_to_float16(copy, keep_io_types=True, disable_shape_infer=False)
    finalize_graph(half)  # the converter appends its input casts at the end: sort, re-check
    return half


def to_int8(proto):
    """A dynamically quantized (int8 weights) copy of an fp32 graph."""
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from vaezoo.export.graph import finalize_graph

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic logs a "consider pre-processing" warning on the root logger
    try:
        with tempfile.TemporaryDirectory(prefix="vaezoo-int8-") as tmp:
            out = Path(tmp) / "int8.onnx"
            quantize_dynamic(proto, out, op_types_to_quantize=["MatMul", "Gemm", "Conv"], per_channel=False,
                             reduce_range=False, weight_type=QuantType.QInt8, use_external_data_format=False)
            quant = onnx.load(str(out))
    finally:
        root.setLevel(level)
    finalize_graph(quant)
    return quant


def make_variant(proto, precision: str):
    if precision == "fp16":
        return to_fp16(proto)
    if precision == "int8":
        return to_int8(proto)
    raise ValueError(f"unknown precision {precision!r} ({', '.join(PRECISIONS)})")
