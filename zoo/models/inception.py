"""The FID Inception-v3 (pool features, 2048) as a torch module, loaded from pytorch-fid's port of the 2015-12-05
TensorFlow weights (``pt_inception-2015-12-05-6726825d.pth``), which the user has locally: vaezoo downloads nothing.

The network is written here from the Inception-v3 layer table, with torchvision's module names (so the weight file's
keys load as they are) and the FID port's differences: average pools that do not count the padding, and a max pool in
the last block's pool branch. Input: images N x 3 x H x W in [0, 1], resized to 299 x 299 (bilinear, half-pixel
centres, as F.interpolate(align_corners=False)) and mapped to [-1, 1] inside the module. ``vaezoo.export.inception``
turns it into the ONNX feature graph that `vaezoo evaluate` runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

FEATURES = 2048
SIZE = 299


class Conv(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU: the `.conv` / `.bn` keys of every weight."""

    def __init__(self, c_in: int, c_out: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)   # TF's average ignores the padding


class BlockA(nn.Module):   # 35 x 35
    def __init__(self, c_in: int, pool: int):
        super().__init__()
        self.branch1x1 = Conv(c_in, 64, 1)
        self.branch5x5_1, self.branch5x5_2 = Conv(c_in, 48, 1), Conv(48, 64, 5, padding=2)
        self.branch3x3dbl_1, self.branch3x3dbl_2 = Conv(c_in, 64, 1), Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = Conv(96, 96, 3, padding=1)
        self.branch_pool = Conv(c_in, pool, 1)

    def forward(self, x):
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          self.branch_pool(_avg_pool(x))], 1)


class BlockB(nn.Module):   # 35 -> 17
    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3 = Conv(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1, self.branch3x3dbl_2 = Conv(c_in, 64, 1), Conv(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = Conv(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                          F.max_pool2d(x, 3, stride=2)], 1)


def _row(c_in, c_out):   # 1 x 7
    return Conv(c_in, c_out, (1, 7), padding=(0, 3))


def _col(c_in, c_out):   # 7 x 1
    return Conv(c_in, c_out, (7, 1), padding=(3, 0))


class BlockC(nn.Module):   # 17 x 17, factorised 7 x 7
    def __init__(self, c_in: int, c7: int):
        super().__init__()
        self.branch1x1 = Conv(c_in, 192, 1)
        self.branch7x7_1, self.branch7x7_2, self.branch7x7_3 = Conv(c_in, c7, 1), _row(c7, c7), _col(c7, 192)
        self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3 = Conv(c_in, c7, 1), _col(c7, c7), _row(c7, c7)
        self.branch7x7dbl_4, self.branch7x7dbl_5 = _col(c7, c7), _row(c7, 192)
        self.branch_pool = Conv(c_in, 192, 1)

    def forward(self, x):
        seven = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        dbl = x
        for k in range(1, 6):
            dbl = getattr(self, f"branch7x7dbl_{k}")(dbl)
        return torch.cat([self.branch1x1(x), seven, dbl, self.branch_pool(_avg_pool(x))], 1)


class BlockD(nn.Module):   # 17 -> 8
    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3_1, self.branch3x3_2 = Conv(c_in, 192, 1), Conv(192, 320, 3, stride=2)
        self.branch7x7x3_1, self.branch7x7x3_2 = Conv(c_in, 192, 1), _row(192, 192)
        self.branch7x7x3_3, self.branch7x7x3_4 = _col(192, 192), Conv(192, 192, 3, stride=2)

    def forward(self, x):
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):   # 8 x 8, split 3 x 3
    def __init__(self, c_in: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool   # the FID port's last block pools by max (a quirk of the TF graph, kept for FID)
        self.branch1x1 = Conv(c_in, 320, 1)
        self.branch3x3_1 = Conv(c_in, 384, 1)
        self.branch3x3_2a, self.branch3x3_2b = Conv(384, 384, (1, 3), padding=(0, 1)), Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1, self.branch3x3dbl_2 = Conv(c_in, 448, 1), Conv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = Conv(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = Conv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = Conv(c_in, 192, 1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(a), self.branch3x3_2b(a),
                          self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d), self.branch_pool(pooled)], 1)


class FIDInception(nn.Module):
    """Images N x 3 x H x W in [0, 1] -> the 2048 pool features of the FID Inception-v3."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = Conv(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = Conv(32, 32, 3)
        self.Conv2d_2b_3x3 = Conv(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = Conv(64, 80, 1)
        self.Conv2d_4a_3x3 = Conv(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = BlockA(192, 32), BlockA(256, 64), BlockA(288, 64)
        self.Mixed_6a = BlockB(288)
        self.Mixed_6b, self.Mixed_6c = BlockC(768, 128), BlockC(768, 160)
        self.Mixed_6d, self.Mixed_6e = BlockC(768, 160), BlockC(768, 192)
        self.Mixed_7a = BlockD(768)
        self.Mixed_7b, self.Mixed_7c = BlockE(1280, max_pool=False), BlockE(2048, max_pool=True)

    def forward(self, x):
        x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False) * 2 - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, stride=2)))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean(dim=(2, 3))


# keys of the weight file this network has no use for: the classifier head and the auxiliary classifier
UNUSED = ("fc.", "AuxLogits.")


def load_weights(path: Path) -> tuple[FIDInception, str]:
    """(the network with the file's weights, the file's SHA-256); a file that does not fit is a one-line error."""
    from vaezoo.errors import UsageError

    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:   # not a torch file, or one that holds more than tensors
        raise UsageError(f"{path}: not a torch state dict ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    if not isinstance(state, dict):
        raise UsageError(f"{path}: holds a {type(state).__name__}, not a state dict of Inception weights")
    net = FIDInception()
    own = net.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(UNUSED)}
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    extra = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or extra or wrong:
        bad = (f"{len(missing)} missing (e.g. {missing[0]})" if missing else
               f"{len(extra)} unknown (e.g. {extra[0]})" if extra else f"{wrong[0]} of shape {tuple(state[wrong[0]].shape)}")
        raise UsageError(f"{path}: not the FID Inception-v3 weights (pytorch-fid's pt_inception-2015-12-05): {bad} keys")
    net.load_state_dict({**own, **state})
    return net.eval(), digest
