"""ONNX Model Zoo-style test data next to the graphs.

Layout (one data set per graph, since a checkpoint's ``onnx/`` folder holds several graphs)::

    onnx/encoder.onnx
    onnx/test_data/encoder/test_data_set_0/input_0.pb     x       (TensorProto, name = graph input name)
    onnx/test_data/encoder/test_data_set_0/output_0.pb    mu      (torch's fp32 output: the reference)
    onnx/test_data/encoder/test_data_set_0/output_1.pb    logvar
    onnx/test_data/decoder/test_data_set_0/...

``input_k`` / ``output_k`` follow the graph's input / output order. Run one with
``onnx_test_runner``-style tools, or :func:`read_test_data` + onnxruntime, and compare within 1e-4.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TEST_DATA = "test_data"
SET = "test_data_set_0"
BATCH = 4


def test_data_dir(out_dir: Path, part: str) -> Path:
    return Path(out_dir) / TEST_DATA / part / SET


def encode_test_data(inputs: list[tuple[str, np.ndarray]], outputs: list[tuple[str, np.ndarray]]) -> dict[str, bytes]:
    """{file name: serialized TensorProto} for one data set."""
    from onnx import numpy_helper

    files = {}
    for kind, pairs in (("input", inputs), ("output", outputs)):
        for k, (name, arr) in enumerate(pairs):
            files[f"{kind}_{k}.pb"] = numpy_helper.from_array(np.ascontiguousarray(arr), name).SerializeToString()
    return files


def read_test_data(folder: Path) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """([(name, array)] inputs, [(name, array)] outputs) of one ``test_data_set_*`` folder."""
    from onnx import TensorProto, numpy_helper

    def load(kind: str) -> list[tuple[str, np.ndarray]]:
        out = []
        k = 0
        while (path := Path(folder) / f"{kind}_{k}.pb").is_file():
            t = TensorProto()
            t.ParseFromString(path.read_bytes())
            out.append((t.name, numpy_helper.to_array(t)))
            k += 1
        return out

    return load("input"), load("output")
