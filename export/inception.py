"""The FID Inception network as an ONNX feature graph, made from weights the user has locally.

    python -m vaezoo.export.inception pt_inception-2015-12-05-6726825d.pth          # -> $VAEZOO_HOME/features/
    python -m vaezoo.export.inception WEIGHTS.pth -o inception.onnx --force

Standard FID (Heusel et al. 2017) uses the pool features (2048) of the 2015-12-05 TensorFlow Inception-v3; pytorch-fid
ships a port of those weights (``pt_inception-2015-12-05-6726825d.pth``). vaezoo downloads nothing at run time: a
user who has that file turns it into ``$VAEZOO_HOME/features/pt_inception-2015-12-05.onnx`` with this module, and
``vaezoo evaluate --metrics fid`` then uses it for every image model that is not a 1 x 28 x 28 digit model (those use
FID-LeNet). The graph is self-contained: images N x 3 x H x W in [0, 1] -> resize to 299 x 299 -> 2x - 1 -> Inception
-> global average pool -> N x 2048 (the network: vaezoo.models.inception). Needs torch (``vaezoo[torch]``) to
convert; the graph then runs on ONNX Runtime alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FILE_NAME = "pt_inception-2015-12-05.onnx"   # vaezoo.evaluation.features.INCEPTION_FILE


def export(weights: Path, out: Path, force: bool = False) -> Path:
    """Write the feature graph atomically (metadata: the weight file's name and SHA-256)."""
    import onnx
    import torch

    from vaezoo.io.files import atomic_path, check_writable, write_bytes
    from vaezoo.models.inception import FEATURES, load_weights

    out = Path(out)
    check_writable(out, force)
    net, digest = load_weights(weights)
    with atomic_path(out) as tmp:   # the exporter's own file, read back to add the metadata
        torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), str(tmp), input_names=["images"], output_names=["features"],
                          dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"}, "features": {0: "batch"}},
                          opset_version=18, dynamo=False)
        model = onnx.load(str(tmp))
    for key, value in {"vaezoo.feature_net": "fid-inception-v3", "vaezoo.weights": Path(weights).name,
                       "vaezoo.weights_sha256": digest, "vaezoo.features": str(FEATURES)}.items():
        model.metadata_props.add(key=key, value=value)
    write_bytes(out, model.SerializeToString())
    return out


def main(argv=None) -> int:
    from vaezoo.errors import VaezooError
    from vaezoo.store.resolution import home

    ap = argparse.ArgumentParser(prog="python -m vaezoo.export.inception", description=__doc__.splitlines()[0])
    ap.add_argument("weights", type=Path, help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (or the same keys)")
    ap.add_argument("-o", "--out", type=Path, default=None, help=f"the graph (default $VAEZOO_HOME/features/{FILE_NAME})")
    ap.add_argument("--force", action="store_true", help="replace an existing graph")
    args = ap.parse_args(argv)
    try:
        if not args.weights.is_file():
            raise VaezooError(f"{args.weights}: no such file")
        out = args.out
        if out is None:
            out = home() / "features" / FILE_NAME
            out.parent.mkdir(parents=True, exist_ok=True)
        out = export(args.weights, out, args.force)
    except VaezooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
