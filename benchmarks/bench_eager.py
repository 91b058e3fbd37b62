"""Float eager latency per image: ssdmobile's SSDlite320 MobileNetV3-Large, stage by stage (core,
decode, NMS), next to torchvision's own model end to end. Same weights in both (randomized so NMS
has real work: thousands of candidates, as an untrained model gives).

    python benchmarks/bench_eager.py [--threads 2] [--runs 30]
"""

import argparse
from pathlib import Path

import torch
import torchvision

from ssdmobile.bench import machine_info, measure
from ssdmobile.data import load_image
from ssdmobile.models import create_model
from ssdmobile.models.weights import randomize_
from ssdmobile.table import print_table

from _shared import VAL_IMAGES


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--image", default=str(sorted(VAL_IMAGES.glob("*.jpg"))[0]))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    tv = randomize_(
        torchvision.models.detection.ssdlite320_mobilenet_v3_large(
            weights=None, weights_backbone=None
        )
    ).eval()
    ours = create_model("ssdlite320_mobilenet_v3_large")
    ours.core.load_state_dict(tv.state_dict())
    img = load_image(args.image)
    x = ours.preprocess([img])
    size = [tuple(img.shape[-2:])]
    with torch.inference_mode():
        enc, logits = ours.forward_core(x)
        boxes, scores = ours.decode(enc, logits)
        stages = {
            "preprocess": lambda: ours.preprocess([img]),
            "core": lambda: ours.forward_core(x),
            "decode": lambda: ours.decode(enc, logits),
            "nms": lambda: ours.nms(boxes, scores, size),
            "ssdmobile end to end": lambda: ours([img]),
            "torchvision end to end": lambda: tv([img.float() / 255]),
        }
        t = {
            name: measure(fn, runs=args.runs, warmup=5, threads=args.threads)
            for name, fn in stages.items()
        }
        n_dets = len(ours([img])[0]["scores"])
    base = t["torchvision end to end"].median_ms
    print(
        f"SSDlite320 MobileNetV3-Large, float eager, 1 image ({Path(args.image).name}, "
        f"{n_dets} detections), "
        f"{args.threads} threads, median of {args.runs} runs after 5 warm-up; "
        f"{machine_info()['cpu']}"
    )
    print_table(
        ["stage", "median ms", "p90 ms", "vs torchvision e2e"],
        [
            [k, f"{v.median_ms:.2f}", f"{v.p90_ms:.2f}", f"{v.median_ms / base:.2f}x"]
            for k, v in t.items()
        ],
        markdown=True,
    )


if __name__ == "__main__":
    main()
