"""What a model's exportable parts take and give: declared once, read by the torch backend, the exporter,
the graph metadata and the ONNX backend (torch-free).

A part is a module with plain tensor I/O and a :class:`Signature`: named ports whose shapes (after the
batch axis) follow from the checkpoint's config: ``data`` (the input shape), ``latent`` (latent_dim),
``labels`` (one-hot, K classes), ``classes`` (K logits), ``scalar`` (one value per example) or a fixed
``vector`` size. The pipeline composes parts by name (see :mod:`vaezoo.runtime.pipeline`).
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("data", "latent", "labels", "classes", "scalar", "vector")


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
            return [int(config["latent_dim"])]
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
