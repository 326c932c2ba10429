"""The pipeline composes a model's parts; it is the only place that knows how.

    sample      = decode(prior_inverse(T * eps)),  eps ~ N(0, I) drawn with numpy from the seed
    encode      = encoder(x) -> (mu, logvar), optionally mapped to the generation space
    reconstruct = decode(encoder(x).mu)
    traverse / interpolate work in the generation space (eps) and map back through prior_inverse,
    which is the identity for the standard prior.
    complete    = kept + (1 - mask) * decode(prior_inverse(T * eps), kept, mask), for completion models
                  (kept = x * mask, mask = the kept half: vaezoo.completion)

Noise is drawn outside every graph, so a seed gives the same samples from any backend.
All inputs and outputs are numpy float32; images are N x C x H x W in [0, 1].
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np

from vaezoo.completion import half_mask
from vaezoo.errors import UsageError
from vaezoo.families import names_with
from vaezoo.parts import latent_shape

BATCH = 4096   # rows per graph call when a command streams its outputs


def models_with(fact: str) -> str:
    """The families with a fact, for messages: "m2, m1m2 and untapped models"."""
    names = names_with(fact)
    return (", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "".join(names)) + " models"


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)  # overflow-free logistic


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable), returned as float32."""
    z = logits.astype(np.float64)
    z -= z.max(1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def check_finite(a: np.ndarray, what: str) -> np.ndarray:
    """``a`` unchanged, or a UsageError naming the first row (``what`` row i) that holds NaN or inf."""
    if np.issubdtype(a.dtype, np.inexact) and a.ndim and len(a):
        bad = ~np.isfinite(a.reshape(len(a), -1)).all(axis=1)
        if bad.any():
            raise UsageError(f"{what} row {int(np.argmax(bad))} is not finite (NaN or inf)")
    return a


def check_number(value: float, option: str, minimum: float | None = None) -> float:
    """A finite number for ``option`` (>= ``minimum`` when given), or a one-line UsageError."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{option} must be a number, not {value!r}") from None
    if not math.isfinite(v):
        raise UsageError(f"{option} must be a finite number, not {value}")
    if minimum is not None and v < minimum:
        raise UsageError(f"{option} must be >= {minimum:g}")
    return v


class Pipeline:
    def __init__(self, config: dict, backend, folder: Path | None = None):
        self.config = config
        self.backend = backend
        self.folder = folder
        self.shape = tuple(config["input"]["shape"])
        self.latent_dim = int(config["latent_dim"])
        self.latent_shape = tuple(latent_shape(config))   # (latent_dim,), or (T, latent_dim): a latent per step
        self.decoder_output = config["output"]["decoder"]
        self.is_image = config["input"]["kind"] == "image"
        self.labels = list(config.get("labels", []))
        self.conditional = bool(config.get("conditional", False))  # decoder(z, y_onehot), encoder(x, y_onehot)
        self.completion = bool(config.get("completion", False))    # decoder(z, kept, mask), encoder(x, kept, mask)

    @property
    def id(self) -> str:
        return self.config["id"]

    # -- noise and latents
    def noise_batches(self, n: int, seed: int = 0, temperature: float = 1.0, batch: int = BATCH) -> Iterator[np.ndarray]:
        """eps = temperature * N(0, I), n x latent shape, in pieces of at most ``batch`` rows. numpy draws the
        stream in order, so the pieces are exactly the rows of one n-row draw (same seed, same samples
        whatever the batch). Arguments are checked at once, before the first piece."""
        if n < 1:
            raise UsageError("-n must be at least 1")
        temperature = check_number(temperature, "--temperature", minimum=0)
        rng = np.random.default_rng(seed)

        def pieces():
            for start in range(0, n, batch):
                yield (rng.standard_normal((min(batch, n - start), *self.latent_shape)) * temperature).astype(np.float32)

        return pieces()

    def noise(self, n: int, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        return np.concatenate(list(self.noise_batches(n, seed, temperature)))

    def check_latents(self, z: np.ndarray, what: str = "latents") -> np.ndarray:
        """N x latent shape real, finite codes as float32 (``what`` names them in errors)."""
        z = np.asarray(z)
        if z.ndim != 1 + len(self.latent_shape) or tuple(z.shape[1:]) != self.latent_shape:
            want = " x ".join(map(str, self.latent_shape))
            raise UsageError(f"{what} must have shape N x {want} for {self.id}, got {tuple(z.shape)}")
        if not np.issubdtype(z.dtype, np.floating):
            raise UsageError(f"{what} must be real floating point, got {z.dtype}")
        return check_finite(z.astype(np.float32), what)   # also catches float64 beyond the float32 range

    def check_inputs(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim < 2 or tuple(x.shape[1:]) != self.shape:
            raise UsageError(f"inputs must have shape N x {' x '.join(map(str, self.shape))} for {self.id}, got {tuple(x.shape)}")
        if np.iscomplexobj(x) or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
            raise UsageError(f"inputs must be real numbers, got {x.dtype}")
        return check_finite(x.astype(np.float32), "inputs")

    # -- labels (semi-supervised and other conditional models)
    def label_index(self, label, option: str = "--label") -> int:
        """A class index from an index or a label name (``3`` or ``"3"``)."""
        if not self.labels:
            raise UsageError(f"{self.id} has no classes")
        if str(label) in self.labels:
            return self.labels.index(str(label))
        try:
            i = int(label)
        except (TypeError, ValueError):
            i = -1
        if not 0 <= i < len(self.labels):
            raise UsageError(f"{option} {label!r} is not a class of {self.id} ({', '.join(self.labels)})")
        return i

    def onehot(self, y) -> np.ndarray:
        y = np.asarray(y, dtype=np.int64).reshape(-1)
        out = np.zeros((len(y), len(self.labels)), dtype=np.float32)
        out[np.arange(len(y)), y] = 1.0
        return out

    def classify_logits(self, x: np.ndarray) -> np.ndarray:
        """Classifier logits (N x K); x is N x C x H x W in [0, 1]."""
        if not self.has_classifier():
            raise UsageError(f"{self.id} has no classifier ({models_with('classifier')} have one)")
        (logits,) = self.backend.run("classifier", self.check_inputs(x))
        return logits

    def classify(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities q(y|x), N x K."""
        return softmax(self.classify_logits(x))

    def has_part(self, part: str) -> bool:
        """Whether the backend has ``part`` (a backend that cannot say is taken to have it)."""
        has = getattr(self.backend, "has", None)
        return has is None or has(part)

    def has_classifier(self) -> bool:
        return bool(self.labels) and self.has_part("classifier")

    def analogies(self, rows: int = 10, seed: int = 0, temperature: float = 1.0, x: np.ndarray | None = None,
                  labels: list | None = None) -> np.ndarray:
        """The paper's analogies: one z per row (prior draws, or the codes of ``x`` under their classes:
        ``labels``, one per input, or else the classifier's predictions), one class per column; returns
        rows * K images in row-major order."""
        if not self.conditional:
            raise UsageError(f"{self.id} is not a conditional model; analogies need one ({models_with('conditional')})")
        k = len(self.labels)
        if labels is not None and x is None:
            raise UsageError("--classes names the classes of input images: give the images too")
        if x is not None:
            x = self.check_inputs(x)
            if labels is not None:
                if len(labels) != len(x):
                    raise UsageError(f"--classes gives {len(labels)} classes for {len(x)} inputs: give one per input")
                y = np.array([self.label_index(v, "--classes") for v in labels])
            elif self.has_classifier():
                y = self.classify_logits(x).argmax(1)
            else:
                raise UsageError(f"{self.id} has no classifier to tell the inputs' classes: give them with --classes")
            z, _ = self.backend.run("encoder", x, self.onehot(y))
        else:
            z = self.from_generation(self.noise(rows, seed, temperature))
        z = np.repeat(z.astype(np.float32), k, axis=0)
        y = np.tile(np.arange(k), len(z) // k)
        return self.decode(z, y)

    # -- the operations
    def no_completion(self) -> None:
        if self.completion:
            raise UsageError(f"{self.id} generates from half an image: use `vaezoo complete {self.id} IMAGES --keep top`")

    def to_data(self, out: np.ndarray) -> np.ndarray:
        """Decoder output -> data: sigmoid of logits, or the mean (clipped to [0, 1] for images)."""
        if self.decoder_output == "logits":
            return sigmoid(out)
        return np.clip(out, 0.0, 1.0) if self.is_image else out.astype(np.float32)

    def decode(self, z: np.ndarray, y=None, part: str = "decoder") -> np.ndarray:
        """Decoder means; conditional models need class indices ``y`` (one per code). ``part="canvases"``:
        what a step-wise model has drawn after each step, T images per code (row-major)."""
        self.no_completion()
        z = self.check_latents(z)
        if self.conditional:
            if y is None:
                raise UsageError(f"{self.id} is conditional: give a class (--label)")
            y = np.broadcast_to(np.asarray(y, dtype=np.int64), (len(z),))
            (out,) = self.backend.run(part, z, self.onehot(y))
        else:
            (out,) = self.backend.run(part, z)
        return self.to_data(out.reshape(-1, *self.shape))

    def check_completion(self) -> None:
        """A one-line UsageError unless the model completes images (decoder(z, kept, mask))."""
        if not self.completion:
            raise UsageError(f"{self.id} does not condition on images, so --keep has nothing to keep "
                             f"(image completion needs one of the {models_with('completion')})")

    def complete(self, x: np.ndarray, keep: str, n: int = 1, seed: int = 0, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """(kept, completions): ``kept`` = x with the half ``keep`` kept and the rest zeroed (N x ...);
        completions N x n x ...: z = prior_inverse(T * eps), eps drawn with numpy from ``seed`` (row-major,
        input by input), decoded with (kept, mask), and the kept half pasted back over the decoder's mean."""
        self.check_completion()
        mask = half_mask(self.shape, keep)
        x = self.check_inputs(x)
        if n < 1:
            raise UsageError("-n must be at least 1")
        kept = x * mask
        z = self.from_generation(self.noise(len(x) * n, seed, temperature))
        rep = np.repeat(kept, n, axis=0)
        masks = np.ascontiguousarray(np.broadcast_to(mask, rep.shape))
        (out,) = self.backend.run("decoder", z, rep, masks)
        done = rep + (1.0 - masks) * self.to_data(out)
        return kept, done.reshape(len(x), n, *self.shape).astype(np.float32)

    def from_generation(self, eps: np.ndarray) -> np.ndarray:
        (z,) = self.backend.run("prior_inverse", self.check_latents(eps))
        return z

    def to_generation(self, z: np.ndarray) -> np.ndarray:
        eps, _ = self.backend.run("prior_forward", self.check_latents(z))
        return eps

    @property
    def canvas_steps(self) -> int:
        """T for a model that draws in T steps (its latent is T x latent_dim), else 0."""
        return self.latent_shape[0] if len(self.latent_shape) == 2 else 0

    def sample_batches(self, n: int, seed: int = 0, temperature: float = 1.0, label=None,
                       batch: int = BATCH, steps: bool = False) -> Iterator[np.ndarray]:
        """:meth:`sample` in pieces of at most ``batch`` rows (memory flat in n); arguments checked at once.
        ``steps``: the canvas after each step instead, T images per sample."""
        if steps and not (self.canvas_steps and self.has_part("canvases")):
            raise UsageError(f"{self.id} does not draw in steps; --canvas-steps needs a model with a latent per step "
                             "and a canvases part")
        part = "canvases" if steps else "decoder"
        if label is not None and not self.conditional:
            raise UsageError(f"{self.id} is not conditional; --label needs a conditional model ({models_with('conditional')})")
        fixed = self.label_index(label) if label is not None else None
        noise = self.noise_batches(n, seed, temperature, batch)

        def pieces():
            start = 0
            for eps in noise:
                z = self.from_generation(eps)
                if not self.conditional:
                    yield self.decode(z, part=part)
                else:  # a fixed class, or the classes in turn by sample index
                    y = np.full(len(eps), fixed) if fixed is not None else np.arange(start, start + len(eps)) % len(self.labels)
                    yield self.decode(z, y, part)
                start += len(eps)

        return pieces()

    def sample(self, n: int, seed: int = 0, temperature: float = 1.0, label=None) -> np.ndarray:
        """Samples; conditional models take a class (``label``), else cycle through the classes."""
        return np.concatenate(list(self.sample_batches(n, seed, temperature, label)))

    def condition(self, x: np.ndarray, label=None) -> np.ndarray:
        """The classes a conditional model encodes ``x`` under: ``label`` for every input, else the model's
        own prediction; a model without a classifier needs the label."""
        if label is not None:
            return np.full(len(x), self.label_index(label), dtype=np.int64)
        if not self.has_classifier():
            raise UsageError(f"{self.id} encodes an input together with its class and has no classifier to predict it: "
                             f"pass --label (one of {', '.join(self.labels)})")
        return self.classify_logits(x).argmax(1)

    def encode(self, x: np.ndarray, space: str = "representation", label=None) -> tuple[np.ndarray, np.ndarray]:
        """(mu, logvar) of q(z|x) (q(z|x, y) for conditional models, y from :meth:`condition`); with
        space='generation', mu is mapped through the flow."""
        if space not in ("representation", "generation"):
            raise UsageError("--space must be 'representation' or 'generation'")
        mu, logvar, _ = self._posterior(x, label)
        if space == "generation":
            mu = self.to_generation(mu)
        return mu, logvar

    def _posterior(self, x: np.ndarray, label=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(mu, logvar, y): q(z|x), and for conditional models the classes y it was taken under (else None),
        so that reconstruct decodes under the same y without classifying twice."""
        self.no_completion()
        x = self.check_inputs(x)
        if label is not None and not self.conditional:
            raise UsageError(f"--label is for conditional models; {self.id} encodes without one")
        if not self.conditional:
            return (*self.backend.run("encoder", x), None)
        y = self.condition(x, label)
        return (*self.backend.run("encoder", x, self.onehot(y)), y)

    def reconstruct(self, x: np.ndarray, label=None) -> np.ndarray:
        mu, _, y = self._posterior(x, label)
        return self.decode(mu) if y is None else self.decode(mu, y)

    def traverse_batches(self, x: np.ndarray | None = None, seed: int = 0, dims: list[int] | None = None,
                         steps: int = 9, span: float = 2.5, batch: int = BATCH) -> tuple[int, Iterator[np.ndarray]]:
        """(count, pieces) of :meth:`traverse`: len(dims) * steps outputs made ``batch`` rows at a time, so
        memory stays flat however many steps; arguments are checked at once."""
        span = check_number(span, "--span")
        size = math.prod(self.latent_shape)   # a T x latent code is swept coordinate by coordinate, flattened
        dims = list(range(size)) if dims is None else list(dims)
        bad = [d for d in dims if not 0 <= d < size]
        if bad:
            raise UsageError(f"--dims {bad} out of range: {self.id} has latent dims 0..{size - 1}")
        if steps < 2:
            raise UsageError("--steps must be at least 2")
        base = (self.encode(x[:1], "generation")[0][0] if x is not None else self.noise(1, seed)[0]).reshape(-1)
        total, dim_of, delta = len(dims) * steps, np.asarray(dims), 2.0 * span / (steps - 1)

        def pieces():
            for start in range(0, total, batch):
                rows = np.arange(start, min(start + batch, total))
                at = rows % steps   # np.linspace(-span, span, steps)'s values, computed for these rows only
                values = np.where(at == steps - 1, span, at * delta + -span).astype(np.float32)
                eps = np.repeat(base[None, :], len(rows), axis=0)
                eps[np.arange(len(rows)), dim_of[rows // steps]] = values
                yield self.decode(self.from_generation(eps.reshape(-1, *self.latent_shape)))

        return total, pieces()

    def traverse(self, x: np.ndarray | None = None, seed: int = 0, dims: list[int] | None = None,
                 steps: int = 9, span: float = 2.5) -> np.ndarray:
        """One row per latent dimension: that generation-space coordinate swept over [-span, span].

        The base point is the encoding of ``x`` (its first example) or a prior draw from ``seed``.
        Returns (len(dims) * steps, ...) outputs in row-major order.
        """
        return np.concatenate(list(self.traverse_batches(x, seed, dims, steps, span)[1]))

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int = 10) -> np.ndarray:
        """Linear paths in the generation space between pairs of generation-space points a[i] -> b[i]."""
        if steps < 2:
            raise UsageError("--steps must be at least 2")
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32).reshape(1, steps, *[1] * len(self.latent_shape))
        eps = (a[:, None] * (1 - t) + b[:, None] * t).reshape(-1, *self.latent_shape)
        return self.decode(self.from_generation(eps))


def load_pipeline(model: str, backend: str = "auto", device: str = "cpu", offline: bool = False) -> Pipeline:
    """Resolve ``model`` (registry id, checkpoint folder or ``hf-hub:org/name[@rev]``), fetching from the
    Hub only the files the backend needs, verify those files against config.json's manifest, and build
    the pipeline. ``offline`` (or HF_HUB_OFFLINE=1) uses only what is cached."""
    from vaezoo.runtime.backends import BACKENDS, make_backend
    from vaezoo.store.resolution import need_for_backend, resolve_model

    if backend not in BACKENDS:  # before any download
        raise UsageError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    folder = resolve_model(model, need=need_for_backend(backend), offline=offline)
    # each backend verifies the files it reads against the manifest (weights, or graphs), and the
    # pipeline uses the config the backend read with them
    runner = make_backend(folder, backend, device)
    return Pipeline(runner.config, runner, folder)
