"""Write a randomized checkpoint with realistic BatchNorm statistics and data-aligned filters
(ssdmobile.models.weights.realistic_random_) for a model with no trained weights here, e.g. to
pass as --weights to `ssdmobile sensitivity`, `quantize`, `export` or `validate`:

    python benchmarks/make_random_checkpoint.py --model ssdlite320_mobilenet_v3_large \
        --out runs/ssdlite320_mobilenet_v3_large_random.pth

Its outputs detect nothing: measure agreement with float on it (SQNR, matching raw outputs), not AP.
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import COCO128  # noqa: E402

from ssdmobile.models import create_model  # noqa: E402
from ssdmobile.models.weights import realistic_random_  # noqa: E402
from ssdmobile.quant.ptq import calibration_inputs  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(COCO128), help="COCO-format dataset root (its train2017 images)")
    ap.add_argument("--images", type=int, default=8, help="train2017 images for the statistics (default 8)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    det = create_model(args.model, None)
    realistic_random_(det, calibration_inputs(det, args.data, "train2017", args.images), seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(det.core.state_dict(), out)  # checkpoints hold the core's state_dict (models.load_into)
    print(f"wrote {out} ({args.model}, seed {args.seed}, statistics from the first {args.images} train2017 images "
          f"of {args.data}; random weights: agreement only, no AP)")


if __name__ == "__main__":
    main()
