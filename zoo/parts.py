"""What a model's exportable parts take and give: declared once, read by the torch backend, the exporter,
the graph metadata and the ONNX backend (torch-free).

A part is a module with plain tensor I/O and a :class:`Signature`: named ports whose shapes (after the
batch axis) follow from the checkpoint's config: ``data`` (the input shape), ``latent`` (the code of one
example: latent_dim, or T x latent_dim for a model with a latent per step), ``data_steps`` (T x the input
shape: what a step-wise model has drawn after each step), ``labels`` (one-hot, K classes), ``classes`` (K logits), ``scalar`` (one value per example) or a fixed
``vector`` size. The pipeline composes parts by name (see :mod:`vaezoo.runtime.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("data", "data_steps", "latent", "labels", "classes", "scalar", "vector")


def latent_shape(config: dict) -> list[int]:
    """The shape of one example's code: [latent_dim], or [T, latent_dim] when the recipe's model draws in
    ``time_steps`` steps with a latent per step (DRAW); the pipeline draws its noise in this shape."""
    steps = config["recipe"]["model"].get("time_steps")   # absent: one latent per example
    return [int(config["latent_dim"])] if steps is None else [int(steps), int(config["latent_dim"])]


@dataclass(frozen=True)
class Port:
    name: str
    kind: str
    size: int | None = None   # only for kind "vector"

    def __post_init__(self):
        if self.kind not in KINDS or (self.kind == "vector") != (self.size is not None):
            raise ValueError(f"bad port {self.name}: kind {self.kind!r}, size {self.size!r}")

    def shape(self, config: dict) -> list[int]:
        """The shape without the batch axis, for a checkpoint's config."""
        if self.kind == "data":
            return [int(s) for s in config["input"]["shape"]]
        if self.kind == "latent":
            return latent_shape(config)
        if self.kind == "data_steps":
            code = latent_shape(config)
            if len(code) != 2:
                raise ValueError(f"port {self.name}: the model has no time_steps, so it draws nothing per step")
            return [code[0], *(int(s) for s in config["input"]["shape"])]
        if self.kind in ("labels", "classes"):
            return [len(config.get("labels") or [])]
        if self.kind == "vector":
            return [int(self.size)]
        return []


@dataclass(frozen=True)
class Signature:
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]

    def input_specs(self, config: dict) -> list[tuple[str, list[int]]]:
        return [(p.name, p.shape(config)) for p in self.inputs]

    def output_names(self) -> list[str]:
        return [p.name for p in self.outputs]


@dataclass
class Part:
    """An exportable module and its signature (the module is a torch ``nn.Module``)."""

    module: object
    signature: Signature


# -- the signatures of the parts every model kind uses
def encoder(conditional: bool = False, code: Port | None = None) -> Signature:
    """x [, y] -> mu, logvar of q(z|x[, y]); ``code`` sizes the means when they are not the model's
    latent (M1's encoder inside M1+M2)."""
    ins = (Port("x", "data"),) + ((Port("y", "labels"),) if conditional else ())
    if code is None:
        return Signature(ins, (Port("mu", "latent"), Port("logvar", "latent")))
    return Signature(ins, (Port("mu", code.kind, code.size), Port("logvar", code.kind, code.size)))


def decoder(output: str, conditional: bool = False) -> Signature:
    """z [, y] -> ``output`` ("logits" for Bernoulli pixels, "mean" for a Gaussian)."""
    ins = (Port("z", "latent"),) + ((Port("y", "labels"),) if conditional else ())
    return Signature(ins, (Port(output, "data"),))


PRIOR_FORWARD = Signature((Port("z", "latent"),), (Port("eps", "latent"), Port("logdet", "scalar")))
PRIOR_INVERSE = Signature((Port("eps", "latent"),), (Port("z", "latent"),))
CLASSIFIER = Signature((Port("x", "data"),), (Port("logits", "classes"),))
