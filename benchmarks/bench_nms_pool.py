"""What the in-graph NMS alone costs in ExecuTorch for each candidate pool, block and Cluster-NMS
round bound: the trade-off between its speed and how many candidates it can keep exact.

    python benchmarks/bench_nms_pool.py [--models ssdlite_mobilenet_v2_person
                                                  ssdlite320_mobilenet_v3_large]
                                        [--variants 512:128:12 384:128:12 256:128:12] [--runs 60]

Each variant is `TensorNMS` (export/_tensor_nms.py) by itself, the model's post-processing settings,
exported to an ExecuTorch program with the XNNPACK partitioner as the exporter does it, and fed
fixed synthetic boxes and scores of the model's shape (the program is fixed-shape: its work does not
depend on the values). Timed round-robin in one process, batch 1, --threads threads. This is the
NMS section only: the +nms programs also decode boxes and score logits in the graph (bench_nms.py
and bench_coco_scale.py time the whole program against its core).

A pool smaller than the default (512) is faster but exact only while the detections fit inside it:
the person detector needs up to 446 candidates for its 100 detections on coco128, and a pool below
max_detections (SSDlite320: 300) cannot return them all.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from ssdmobile.bench import machine_info, measure_interleaved
from ssdmobile.export._tensor_nms import TensorNMS
from ssdmobile.export.executorch import lower
from ssdmobile.models import create_model
from ssdmobile.table import print_table


def program(module: torch.nn.Module, inputs: tuple, path: Path):
    """The module as an XNNPACK-delegated ExecuTorch program, loaded: its forward method."""
    from executorch.runtime import Runtime  # lazy: heavy optional runtime

    path.write_bytes(lower(module, inputs).to_executorch().buffer)
    return Runtime.get().load_program(path).load_method("forward")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--models",
        nargs="+",
        default=["ssdlite_mobilenet_v2_person", "ssdlite320_mobilenet_v3_large"],
    )
    ap.add_argument(
        "--variants",
        nargs="+",
        default=["512:128:12", "384:128:12", "256:128:12", "512:128:8", "512:256:12"],
        help="pool:block:iterations (the default is 512:128:12)",
    )
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    out = Path(tempfile.mkdtemp(prefix="bench_nms_pool_"))
    fns, rows = {}, []
    for name in args.models:
        det = create_model(name).eval()
        pp, anchors, fg = det.spec.postprocess, det.anchors.shape[0], det.spec.num_classes - 1
        xy = torch.rand(anchors, 2) * 0.8
        boxes = torch.cat([xy, xy + torch.rand(anchors, 2) * 0.2], dim=1)
        scores = torch.rand(anchors, fg) ** 8
        for variant in args.variants:
            pool, block, iterations = (int(v) for v in variant.split(":"))
            module = TensorNMS(
                pp, anchors, fg, pool=pool, block=block, iterations=iterations
            ).eval()
            method = program(
                module, (boxes, scores), out / f"{name}_{pool}_{block}_{iterations}.pte"
            )
            fns[(name, variant)] = lambda m=method, b=boxes, s=scores: m.execute([b, s])
            rows.append((name, variant, module.pool, block, iterations, pp.max_detections))
    t = measure_interleaved(fns, args.runs, args.warmup, args.threads)
    m = machine_info()
    print(
        f"ExecuTorch (XNNPACK) programs of TensorNMS alone, median of {args.runs} runs "
        f"round-robin, {args.threads} threads; {m['cpu']} ({m['cores']} cores visible)"
    )
    table = [
        [name, str(pool), str(block), str(it), str(maxd), f"{t[(name, variant)].median_ms:.2f}"]
        for name, variant, pool, block, it, maxd in rows
    ]
    print_table(
        ["model", "pool", "block", "rounds", "max detections", "median ms"], table, markdown=True
    )


if __name__ == "__main__":
    main()
