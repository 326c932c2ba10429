"""The discriminators of the adversarial objectives (VAE-GAN, the conditional GANs): the conv encoder's
stack (stride-2 4x4 convolutions, then a fully connected layer; DCGAN-like, without batch norm) with a
linear head of ``outputs`` logits, built from an objective table's ``disc_*`` settings."""

from __future__ import annotations

from torch import nn

from vaezoo.errors import UsageError
from vaezoo.models.nets import ACTIVATIONS, conv_stack


class Discriminator(nn.Module):
    """``forward(x, layer)`` returns (logits (B, outputs), or (B,) when outputs = 1; the flattened output of
    layer ``layer`` (1-based: the convolutions, then the fully connected layer), or None for layer 0)."""

    def __init__(self, shape, channels, hidden, act, outputs: int = 1):
        super().__init__()
        self.body = conv_stack(shape, channels, hidden, act)
        self.head = nn.Linear(hidden, outputs)
        self.layer_ends = [i for i, m in enumerate(self.body) if isinstance(m, (nn.ReLU, nn.LeakyReLU))]

    @property
    def layers(self) -> int:
        return len(self.layer_ends)

    def forward(self, x, layer: int = 0):
        feats, h = None, x
        for i, mod in enumerate(self.body):
            h = mod(h)
            if layer and i == self.layer_ends[layer - 1]:
                feats = h.flatten(1)
        logits = self.head(h)
        return (logits.squeeze(1) if logits.shape[1] == 1 else logits), feats


def build_discriminator(recipe: dict, outputs: int = 1) -> Discriminator:
    """The objective table's discriminator (``disc_channels``, ``disc_hidden``, ``disc_activation``), checked
    against the dataset's image shape."""
    from vaezoo.data import DATASETS

    cfg, where = recipe["objective"], f"recipe {recipe.get('id', '?')!r}"
    shape = tuple(DATASETS[recipe["data"]["name"]].shape)
    channels = list(cfg["disc_channels"])
    if len(shape) != 3 or shape[1] != shape[2] or shape[1] % 2 ** len(channels):
        raise UsageError(f"{where}: the discriminator's {len(channels)} stride-2 layers (objective.disc_channels) "
                         f"do not fit images of shape {shape}")
    if cfg["disc_activation"] not in ACTIVATIONS:
        raise UsageError(f"{where}: objective.disc_activation must be one of {', '.join(ACTIVATIONS)}, not {cfg['disc_activation']!r}")
    return Discriminator(shape, channels, int(cfg["disc_hidden"]), cfg["disc_activation"], outputs)
