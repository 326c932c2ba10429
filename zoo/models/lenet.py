"""The digit classifier behind FID-LeNet: a LeNet-5-like net whose penultimate features are FID's space.

    x (1x28x28) -> [conv 5x5 (pad 2) -> relu -> maxpool 2] per entry of ``channels`` -> flatten
      -> [linear -> relu] per entry of ``hidden`` -> linear -> relu: the features (``latent`` of them)
      -> linear: the class logits

One exportable part, ``features``: x -> (logits, features), so a single graph gives both the accuracy and
the Fréchet distance's features (vaezoo.evaluation). Every size comes from the recipe's [model] table.
"""

from __future__ import annotations

import torch
from torch import nn

from vaezoo.models.nets import _act
from vaezoo.models.loading import Pretrained
from vaezoo.models.metrics import classification_metrics
from vaezoo.models.registry import register_model
from vaezoo.parts import Part, Port, Signature

FEATURES = Signature((Port("x", "data"),), (Port("logits", "classes"), Port("features", "latent")))


class LeNetNet(nn.Module):
    def __init__(self, shape, channels, hidden, features, classes, act):
        super().__init__()
        c, side = shape[0], shape[1]
        layers: list[nn.Module] = []
        for out in channels:
            pad = 2 if not layers else 0          # LeNet-5: the first conv keeps 28x28, the next ones shrink
            layers += [nn.Conv2d(c, out, 5, padding=pad), _act(act), nn.MaxPool2d(2)]
            side = (side + 2 * pad - 4) // 2
            c = out
            if side < 1:
                raise ValueError(f"lenet: {len(channels)} conv layers do not fit data of shape {tuple(shape)}")
        dims = [c * side * side, *hidden, features]
        layers.append(nn.Flatten())
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), _act(act)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(features, classes)

    def forward(self, x):
        f = self.body(x)
        return self.head(f), f


@register_model("lenet")
class LeNet(Pretrained, nn.Module):
    def __init__(self, config: dict):
        super().__init__()
        m = config["recipe"]["model"]
        shape = tuple(config["input"]["shape"])
        classes = len(config.get("labels") or [])
        if len(shape) != 3 or classes < 2:
            raise ValueError(f"lenet needs labelled images (C x H x W with classes), not shape {shape} with {classes} classes")
        self.net = LeNetNet(shape, list(m["channels"]), list(m["hidden"]), int(m["latent"]), classes, m["activation"])

    def parts(self) -> dict[str, Part]:
        return {"features": Part(self.net, FEATURES)}

    def forward(self, x):
        return self.net(x)

    def classify_logits(self, x):
        return self.net(x)[0]

    @torch.no_grad()
    def validation_metrics(self, x, y, nll_samples: int = 0, batch: int = 500) -> dict:
        """Held-out error rate and cross-entropy (a classifier has no likelihood: ``nll_samples`` unused)."""
        self.eval()
        res = classification_metrics(self, x, y, batch)
        return {**res, "accuracy": 1 - res["error_rate"], "examples": x.shape[0],
                "protocol": "argmax of the logits against the true label on the held-out split; cross-entropy in nats"}
