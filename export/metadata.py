"""What each exported graph says about itself (``metadata_props``), so a lone ``.onnx`` file is usable.

Key ``vaezoo`` holds one JSON object (schema ``vaezoo-onnx/1``)::

    format, vaezoo_version, model_id, family, part, precision ("fp32", "fp16", "int8"),
    description   one line: inputs -> outputs, and how to turn the output into data
    inputs        [{name, shape (first dim "batch"), dtype, meaning}]
    outputs       [{name, shape, dtype, meaning}]
    data          the data the model works on: shape (C x H x W or D), kind ("image"/"vector"),
                  pixel_scale ("x/255": uint8 pixels / 255 -> float32 in [0, 1]), dtype, layout
    likelihood    "bernoulli" or "gaussian";  decoder_output  "logits" or "mean"
    postprocess   what turns the decoder output into data: "sigmoid" (logits) or "clip01" / "none" (mean)
    latent_dim, prior ("standard" or "flow"), labels, conditional
    sampling      how to sample with this model's graphs (noise drawn outside the graphs)
    weights_sha256  SHA-256 of the model.safetensors the graph was exported from
    opset, exporter, parity / measured_error  (max abs differences measured at export time)

plus flat string copies under ``vaezoo.*`` keys (:data:`vaezoo.runtime.onnx_backend.FLAT_KEYS`) for viewers that
show metadata as a table. Torch-free: the ONNX backend reads what this module writes.
"""

from __future__ import annotations

import json

from vaezoo.parts import latent_shape
from vaezoo.version import __version__
from vaezoo.runtime.onnx_backend import FLAT_KEYS, META_FORMAT, META_KEY

MEANINGS = {
    "x": "data, N x {data}: {scale}",
    "y": "one-hot class labels, N x {k} (order of 'labels')",
    "z": "latent code in the representation space (what the encoder's mu lives in), N x {d}",
    "eps": "latent code in the generation space, N x {d}: eps ~ N(0, I) for sampling",
    "kept": "the kept half of each image (the rest zero-filled), N x {data}: x * mask (vaezoo.completion)",
    "mask": "1 on the kept half of each image, 0 on the half to generate, N x {data}",
    "mu": "mean of q(z|x), N x {d}",
    "logvar": "log-variance of q(z|x), N x {d}",
    "logdet": "log |det d eps / d z| of the prior flow, N (zero for the standard prior)",
    "logits": "Bernoulli logits of the pixels, N x {data}: pixels = sigmoid(logits)",
    "mean": "mean of p(x|z), N x {data}{clip}",
    "class_logits": "class logits, N x {k} (order of 'labels'): probabilities = softmax(logits)",
}


def _meaning(name: str, part: str, config: dict, shape: list) -> str:
    data = config["input"]["shape"]
    is_image = config["input"]["kind"] == "image"
    scale = "pixels in [0, 1] (uint8 / 255), layout N x C x H x W" if is_image else "float32 vectors"
    key = "class_logits" if (name == "logits" and part == "classifier") else name
    if key in ("mu", "logvar") and shape and len(shape) == 2 and shape[1] != config["latent_dim"]:
        return f"{key} of q(.|x) of this stage, N x {shape[1]}"
    template = MEANINGS.get(key, f"{name}, N x " + " x ".join(str(s) for s in shape[1:]))
    return template.format(data=" x ".join(map(str, data)), scale=scale, k=len(config.get("labels", [])),
                           d=" x ".join(map(str, latent_shape(config))), clip="; clip to [0, 1] for pixels" if is_image else "")


def postprocess(config: dict) -> str:
    if config["output"]["decoder"] == "logits":
        return "sigmoid"
    return "clip01" if config["input"]["kind"] == "image" else "none"


def graph_metadata(config: dict, part: str, inputs: list[tuple[str, list]], outputs: list[tuple[str, list]], *,
                   precision: str = "fp32", weights_sha256: str | None = None, opset: int | None = None,
                   exporter: str = "", extra: dict | None = None) -> dict:
    """The ``vaezoo`` metadata object of one graph. ``inputs``/``outputs``: (name, shape with "batch")."""
    prior = config["recipe"].get("prior", {}).get("kind", "standard")
    io_in = [{"name": n, "shape": s, "dtype": "float32", "meaning": _meaning(n, part, config, s)} for n, s in inputs]
    io_out = [{"name": n, "shape": s, "dtype": "float32", "meaning": _meaning(n, part, config, s)} for n, s in outputs]
    desc = f"{config['id']} {part}: " + ", ".join(n for n, _ in inputs) + " -> " + ", ".join(n for n, _ in outputs)
    if part == "decoder":
        desc += f"; data = {postprocess(config)}({outputs[0][0]})" if postprocess(config) != "none" else ""
    meta = {
        "format": META_FORMAT,
        "vaezoo_version": __version__,
        "model_id": config["id"],
        "family": config["recipe"].get("family", ""),
        "part": part,
        "precision": precision,
        "description": desc,
        "inputs": io_in,
        "outputs": io_out,
        "data": {**{k: config["input"][k] for k in ("shape", "kind", "pixel_scale", "dtype") if k in config["input"]},
                 "layout": "NCHW" if config["input"]["kind"] == "image" else "ND"},
        "likelihood": config["output"]["likelihood"],
        "decoder_output": config["output"]["decoder"],
        "postprocess": postprocess(config),
        "latent_dim": int(config["latent_dim"]),
        "prior": prior,
        "labels": list(config.get("labels", [])),
        "conditional": bool(config.get("conditional", False)),
        "sampling": (f"eps = temperature * N(0, I) of shape N x {' x '.join(map(str, latent_shape(config)))} (drawn outside the graphs, e.g. "
                     "numpy.random.default_rng(seed).standard_normal); z = prior_inverse(eps); "
                     f"data = {postprocess(config)}(decoder(z))"),
        "weights_sha256": weights_sha256,
        "opset": opset,
        "exporter": exporter,
    }
    meta.update(extra or {})
    return meta


def flat_metadata(meta: dict) -> dict[str, str]:
    """The flat ``vaezoo.*`` string keys (a readable subset of the JSON object)."""
    flat = {
        "vaezoo.model_id": meta["model_id"],
        "vaezoo.part": meta["part"],
        "vaezoo.version": meta["vaezoo_version"],
        "vaezoo.input_shape": ",".join(map(str, meta["data"]["shape"])),
        "vaezoo.pixel_scale": meta["data"].get("pixel_scale", "none"),
        "vaezoo.likelihood": meta["likelihood"],
        "vaezoo.decoder_output": meta["decoder_output"],
        "vaezoo.latent_dim": str(meta["latent_dim"]),
        "vaezoo.labels": json.dumps(meta["labels"]),
        "vaezoo.precision": meta["precision"],
    }
    assert tuple(flat) == FLAT_KEYS
    return flat


def set_metadata(proto, meta: dict) -> None:
    """Write ``meta`` (JSON under ``vaezoo``, plus the flat keys) into an onnx ModelProto, replacing old entries."""
    props = {**flat_metadata(meta), META_KEY: json.dumps(meta, sort_keys=False)}
    keep = [(p.key, p.value) for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    for key, value in keep + list(props.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = meta["description"]
