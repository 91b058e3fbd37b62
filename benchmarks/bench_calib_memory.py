"""Peak resident memory of ONNX int8 calibration (ssdmobile.quant.onnx_int8) as calibration images
grow, streamed in chunks (the default) against onnxruntime's one pass that keeps every image's
intermediate outputs, with the calibrated ranges and the int8 artifact's AP compared between the
two. Each measurement is a fresh process (ru_maxrss is a process's peak); the person detector's
real weights, real train2017 images (past 128 they repeat, flipped: memory does not care which
pixels), person AP on the 128 val2017 images.

    python benchmarks/bench_calib_memory.py [--images 32 128 256] [--one-pass 32 128]
        [--results docs/results/calib_memory.json]
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from ssdmobile.results import Table, write_results
from ssdmobile.table import print_table

from _shared import COCO128

MODEL = "ssdlite_mobilenet_v2_person"

# one measurement in its own process: export fp32 (once, shared), calibrate and quantize, write
# the int8 file's sidecar, report the peak
WORKER = """
import json, resource, sys
from pathlib import Path
import ssdmobile.quant.onnx_int8 as onnx_int8
from ssdmobile.data import CocoDataset
from ssdmobile.fileio import sha256_file
from ssdmobile.models import create_model
from ssdmobile.sidecar import load_sidecar, write_sidecar
from ssdmobile.targets.pipeline import export

n, observer, chunk, out, coco = sys.argv[1:]
n, chunk, out = int(n), int(chunk), Path(out)
onnx_int8.CALIBRATION_CHUNK = chunk
det = create_model("ssdlite_mobilenet_v2_person", "default")
fp32 = next((out / "fp32").glob("*.onnx"), None)
fp32 = fp32 or export(det, "onnx", "fp32", out / "fp32", progress=False)[0].path
images = [s.image for s in CocoDataset(coco, "train2017", max_images=min(n, 128))]
repeated = (images * (n // len(images) + 1))[:n]
inputs = [det.preprocess([im if i < len(images) else im.flip(-1)]) for i, im in enumerate(repeated)]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
dst = out / f"int8_{n}_{observer}_{chunk}.onnx"
record = onnx_int8.quantize_onnx_file(fp32, dst, inputs, observer)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sidecar = {**load_sidecar(fp32).to_dict(), "precision": "int8", "artifact": dst.name,
           "artifact_sha256": sha256_file(dst), "quantization": record}
write_sidecar(dst.with_suffix(".json"), sidecar)
print(json.dumps({"peak_kb": peak, "before_kb": before, "path": str(dst)}))
"""


def measure(n: int, observer: str, chunk: int, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, str(n), observer, str(chunk), str(out), str(COCO128)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.strip().splitlines()[-1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def scales(path) -> dict[str, float]:
    """Activation scale of every per-tensor QuantizeLinear: the calibrated ranges."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    init = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    return {
        n.input[0]: float(init[n.input[1]])
        for n in m.graph.node
        if n.op_type == "QuantizeLinear" and n.input[1] in init and init[n.input[1]].size == 1
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, nargs="+", default=[32, 128, 256])
    ap.add_argument(
        "--one-pass",
        type=int,
        nargs="*",
        default=[32, 128],
        help="image counts also measured in onnxruntime's one pass (128: ~16 GB)",
    )
    ap.add_argument("--observers", nargs="+", default=["histogram", "minmax"])
    ap.add_argument("--results", help="write the results JSON here (docs/results/NAME.json)")
    args = ap.parse_args()
    from ssdmobile.data import CocoDataset
    from ssdmobile.quant.onnx_int8 import CALIBRATION_CHUNK
    from ssdmobile.targets.artifacts import evaluate_artifact

    val = CocoDataset(COCO128, "val2017")
    rows, agreement = [], []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for observer in args.observers:
            for n in sorted(set(args.images) | set(args.one_pass)):
                runs = {}
                for label, chunk, wanted in (
                    ("streamed", CALIBRATION_CHUNK, args.images),
                    ("one pass", 10**9, args.one_pass),
                ):
                    if n not in wanted:
                        continue
                    r = runs[label] = measure(n, observer, chunk, out)
                    rows.append(
                        [
                            observer,
                            str(n),
                            label,
                            f"{r['peak_kb'] / 1e6:.2f} GB",
                            f"{(r['peak_kb'] - r['before_kb']) / 1e6:.2f} GB",
                        ]
                    )
                    print(rows[-1], flush=True)
                if len(runs) == 2:
                    one, streamed = (runs[k]["path"] for k in ("one pass", "streamed"))
                    a, b = scales(one), scales(streamed)
                    ratio = [b[k] / a[k] for k in a]
                    ap1, ap2 = (
                        evaluate_artifact(p, val, classes=["person"], progress=False).ap
                        for p in (one, streamed)
                    )
                    agreement.append(
                        [
                            observer,
                            str(n),
                            str(len(a)),
                            f"{min(ratio):.4f} .. {max(ratio):.4f}",
                            f"{ap1:.4f}",
                            f"{ap2:.4f}",
                            f"{ap2 - ap1:+.4f}",
                        ]
                    )
                    print(agreement[-1], flush=True)
    h1 = ["observer", "calibration images", "calibration", "peak RSS", "added by quantizing"]
    h2 = [
        "observer",
        "calibration images",
        "activation scales",
        "streamed / one-pass scale",
        "AP one pass",
        "AP streamed",
        "ΔAP",
    ]
    print_table(h1, rows)
    if agreement:
        print_table(h2, agreement)
    if args.results:
        tables = [
            Table(
                title=f"{MODEL}: ONNX int8 calibration peak memory, chunks of "
                f"{CALIBRATION_CHUNK} images streamed vs onnxruntime's one pass",
                headers=h1,
                rows=rows,
            )
        ]
        if agreement:
            tables.append(
                Table(
                    title="ranges and person AP (128 val2017 images): streamed against one pass",
                    headers=h2,
                    rows=agreement,
                )
            )
        write_results(
            args.results,
            tables,
            threads=None,
            images=128,
            notes=[
                "Peak RSS (ru_maxrss) of a fresh process that loads the model, exports fp32, "
                "preprocesses the images and quantizes; 'added by quantizing' is the peak minus "
                "the peak before quantize_static.",
                "Past 128 images the train2017 images repeat, flipped (memory does not depend on "
                "the pixels).",
            ],
        )


if __name__ == "__main__":
    main()
