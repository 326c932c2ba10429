"""Small ONNX graph utilities shared by the exporter and its variants (onnx only, no torch)."""

from __future__ import annotations


def min_ir_version(proto) -> int:
    """The lowest IR version that supports the model's opsets (ONNX Runtime 1.31 accepts IR <= 13)."""
    import onnx

    return int(onnx.helper.find_min_ir_version_for(list(proto.opset_import), ignore_unknown=True))


def finalize_graph(proto, batch: str = "batch") -> None:
    """Clean an exported graph in place: inline local functions, name the batch axis, drop per-node
    metadata (the exporter's stack traces carry local paths), drop value_info of initializers (it confuses shape inference after rewrites), topologically sort, and set the IR version
    to the minimum the opsets need."""
    import onnx

    if len(proto.functions):
        from onnx import inliner

        inlined = inliner.inline_local_functions(proto)
        proto.CopyFrom(inlined)
    graph = proto.graph
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims):
            dims[0].ClearField("dim_value")
            dims[0].dim_param = batch
    for node in graph.node:  # the dynamo exporter records stack traces (local paths) and fx details per node
        del node.metadata_props[:]
        node.ClearField("doc_string")
    inits = {i.name for i in graph.initializer}
    keep = [v for v in graph.value_info if v.name not in inits]
    del graph.value_info[:]
    graph.value_info.extend(keep)
    topo_sort(graph)
    proto.ir_version = min_ir_version(proto)
    onnx.checker.check_model(proto, full_check=True)


def topo_sort(graph) -> None:
    """Order the nodes of ``graph`` so each node comes after the producers of its inputs (in place)."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    nodes = list(graph.node)
    ordered = []
    pending = nodes
    while pending:
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ValueError("graph has a cycle or an input that no node produces: " + ", ".join(n.name or n.op_type for n in rest[:3]))
        pending = rest
    if [id(n) for n in ordered] != [id(n) for n in nodes]:
        copies = [type(n)() for n in ordered]
        for c, n in zip(copies, ordered):
            c.CopyFrom(n)
        del graph.node[:]
        graph.node.extend(copies)
