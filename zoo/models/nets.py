"""Encoder and decoder backbones with plain tensor I/O (ready for ONNX export).

encoder(x) -> (mu, logvar);  decoder(z) -> logits (Bernoulli) or mean (Gaussian).
Backbones: ``mlp`` (any shape, flattened), ``conv28`` (1x28x28), ``conv32`` (3x32x32), ``conv64`` (3x64x64).
"""

from __future__ import annotations

import math

from torch import nn

# Conv backbones by the image side they are meant for; ``model.channels`` (filled per backbone from
# base.toml's [backbones] table) is the stride-2 stack, each layer halving the side (28->14->7).
CONV_BACKBONES = ("conv28", "conv32", "conv64")
ACTIVATIONS = ("relu", "leaky_relu")


def _act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r} ({', '.join(ACTIVATIONS)})")
    return nn.LeakyReLU(0.2) if name == "leaky_relu" else nn.ReLU()


class MLPEncoder(nn.Module):
    def __init__(self, shape, hidden, latent, act="relu"):
        super().__init__()
        dims = [math.prod(shape), *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), _act(act)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(dims[-1], 2 * latent)

    def forward(self, x):
        mu, logvar = self.head(self.body(x)).chunk(2, dim=1)
        return mu, logvar


class MLPDecoder(nn.Module):
    def __init__(self, shape, hidden, latent, act="relu"):
        super().__init__()
        self.shape = tuple(shape)
        dims = [latent, *reversed(hidden)]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), _act(act)]
        layers.append(nn.Linear(dims[-1], math.prod(shape)))
        self.body = nn.Sequential(*layers)

    def forward(self, z):
        return self.body(z).reshape((-1, *self.shape))


def conv_stack(shape, channels, hidden, act="relu") -> nn.Sequential:
    """Stride-2 4x4 convolutions (each halving the side), then a fully connected layer of ``hidden``,
    each followed by its activation: the conv encoder's body, and the DCGAN-like VAE-GAN discriminator's."""
    c, h, _ = shape
    layers: list[nn.Module] = []
    for out in channels:
        layers += [nn.Conv2d(c, out, 4, stride=2, padding=1), _act(act)]
        c, h = out, h // 2
    layers += [nn.Flatten(), nn.Linear(c * h * h, hidden), _act(act)]
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    def __init__(self, shape, channels, hidden, latent, act="relu"):
        super().__init__()
        self.body = conv_stack(shape, channels, hidden, act)
        self.head = nn.Linear(hidden, 2 * latent)

    def forward(self, x):
        mu, logvar = self.head(self.body(x)).chunk(2, dim=1)
        return mu, logvar


class ConvDecoder(nn.Module):
    def __init__(self, shape, channels, hidden, latent, act="relu"):
        super().__init__()
        c_in, h, _ = shape
        side = h // 2 ** len(channels)
        self.start = (channels[-1], side, side)
        self.fc = nn.Sequential(nn.Linear(latent, hidden), _act(act), nn.Linear(hidden, channels[-1] * side * side), _act(act))
        layers: list[nn.Module] = []
        outs = list(reversed(channels[:-1])) + [c_in]
        c = channels[-1]
        for i, out in enumerate(outs):
            layers.append(nn.ConvTranspose2d(c, out, 4, stride=2, padding=1))
            if i < len(outs) - 1:
                layers.append(_act(act))
            c = out
        self.body = nn.Sequential(*layers)

    def forward(self, z):
        return self.body(self.fc(z).reshape((-1, *self.start)))


def build_backbone(model_cfg: dict, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
    """(encoder, decoder) for a recipe's [model] table and the data shape."""
    kind = model_cfg["backbone"]
    latent = int(model_cfg["latent"])
    hidden = list(model_cfg["hidden"])
    act = model_cfg["activation"]
    if kind == "mlp":
        return MLPEncoder(shape, hidden, latent, act), MLPDecoder(shape, hidden, latent, act)
    if kind in CONV_BACKBONES:
        ch = list(model_cfg["channels"])
        if len(shape) != 3 or shape[1] != shape[2] or shape[1] % 2 ** len(ch):
            raise ValueError(f"backbone {kind} with {len(ch)} stride-2 layers does not fit data of shape {shape}")
        return ConvEncoder(shape, ch, hidden[0], latent, act), ConvDecoder(shape, ch, hidden[0], latent, act)
    raise ValueError(f"unknown backbone {kind!r} (mlp, conv28, conv32, conv64)")
