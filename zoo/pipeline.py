"""The pipeline composes a model's parts; it is the only place that knows how.

    sample      = decode(prior_inverse(T * eps)),  eps ~ N(0, I) drawn with numpy from the seed
    encode      = encoder(x) -> (mu, logvar), optionally mapped to the generation space
    reconstruct = decode(encoder(x).mu)
    traverse / interpolate work in the generation space (eps) and map back through prior_inverse,
    which is the identity for the standard prior.

Noise is drawn outside every graph, so a seed gives the same samples from any backend.
All inputs and outputs are numpy float32; images are N x C x H x W in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vaezoo.errors import UsageError


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)  # overflow-free logistic


class Pipeline:
    def __init__(self, config: dict, backend, folder: Path | None = None):
        self.config = config
        self.backend = backend
        self.folder = folder
        self.shape = tuple(config["input"]["shape"])
        self.latent_dim = int(config["latent_dim"])
        self.decoder_output = config["output"]["decoder"]
        self.is_image = config["input"]["kind"] == "image"
        self.labels = list(config.get("labels", []))

    @property
    def id(self) -> str:
        return self.config["id"]

    # -- noise and latents
    def noise(self, n: int, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        if n < 1:
            raise UsageError("-n must be at least 1")
        if temperature < 0:
            raise UsageError("--temperature must be >= 0")
        rng = np.random.default_rng(seed)
        return (rng.standard_normal((n, self.latent_dim)) * temperature).astype(np.float32)

    def check_latents(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise UsageError(f"latents must have shape N x {self.latent_dim} for {self.id}, got {tuple(z.shape)}")
        if not np.issubdtype(z.dtype, np.floating):
            raise UsageError(f"latents must be floating point, got {z.dtype}")
        return z.astype(np.float32)

    def check_inputs(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim < 2 or tuple(x.shape[1:]) != self.shape:
            raise UsageError(f"inputs must have shape N x {' x '.join(map(str, self.shape))} for {self.id}, got {tuple(x.shape)}")
        return x.astype(np.float32)

    # -- the operations
    def decode(self, z: np.ndarray) -> np.ndarray:
        (out,) = self.backend.run("decoder", self.check_latents(z))
        if self.decoder_output == "logits":
            return sigmoid(out)
        return np.clip(out, 0.0, 1.0) if self.is_image else out.astype(np.float32)

    def from_generation(self, eps: np.ndarray) -> np.ndarray:
        (z,) = self.backend.run("prior_inverse", self.check_latents(eps))
        return z

    def to_generation(self, z: np.ndarray) -> np.ndarray:
        eps, _ = self.backend.run("prior_forward", self.check_latents(z))
        return eps

    def sample(self, n: int, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
        return self.decode(self.from_generation(self.noise(n, seed, temperature)))

    def encode(self, x: np.ndarray, space: str = "representation") -> tuple[np.ndarray, np.ndarray]:
        """(mu, logvar) of q(z|x); with space='generation', mu is mapped through the flow."""
        if space not in ("representation", "generation"):
            raise UsageError("--space must be 'representation' or 'generation'")
        mu, logvar = self.backend.run("encoder", self.check_inputs(x))
        if space == "generation":
            mu = self.to_generation(mu)
        return mu, logvar

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        mu, _ = self.encode(x)
        return self.decode(mu)

    def traverse(self, x: np.ndarray | None = None, seed: int = 0, dims: list[int] | None = None,
                 steps: int = 9, span: float = 2.5) -> np.ndarray:
        """One row per latent dimension: that generation-space coordinate swept over [-span, span].

        The base point is the encoding of ``x`` (its first example) or a prior draw from ``seed``.
        Returns (len(dims) * steps, ...) outputs in row-major order.
        """
        base = self.encode(x[:1], "generation")[0][0] if x is not None else self.noise(1, seed)[0]
        dims = list(range(self.latent_dim)) if dims is None else dims
        bad = [d for d in dims if not 0 <= d < self.latent_dim]
        if bad:
            raise UsageError(f"--dims {bad} out of range: {self.id} has latent dims 0..{self.latent_dim - 1}")
        if steps < 2:
            raise UsageError("--steps must be at least 2")
        eps = np.repeat(base[None, :], len(dims) * steps, axis=0)
        values = np.linspace(-span, span, steps, dtype=np.float32)
        for row, d in enumerate(dims):
            eps[row * steps : (row + 1) * steps, d] = values
        return self.decode(self.from_generation(eps))

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int = 10) -> np.ndarray:
        """Linear paths in the generation space between pairs of generation-space points a[i] -> b[i]."""
        if steps < 2:
            raise UsageError("--steps must be at least 2")
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)[None, :, None]
        eps = (a[:, None, :] * (1 - t) + b[:, None, :] * t).reshape(-1, self.latent_dim)
        return self.decode(self.from_generation(eps))


def load_pipeline(model: str, backend: str = "auto", device: str = "cpu") -> Pipeline:
    from vaezoo.backends import make_backend
    from vaezoo.checkpoint import read_config
    from vaezoo.store import resolve_model

    folder = resolve_model(model)
    config = read_config(folder)
    return Pipeline(config, make_backend(folder, backend, device), folder)
