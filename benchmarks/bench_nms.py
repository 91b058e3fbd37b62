"""What NMS costs, in the graph and on the host, for the person detector and SSDlite320 MobileNetV3,
in one run, printed as one table.

    python benchmarks/bench_nms.py [--precisions fp32 int8] [--runs 50] [--threads 2] [--out DIR]
                                   [--reuse] [--exactness] [--profile RUNS]

Per model x target (ExecuTorch .pte, TorchScript lite .ptl, ONNX Runtime) x precision: the artifact
without NMS (core: raw outputs) and the same artifact with NMS in the graph, timed round-robin in
one process with the host's decode + NMS (Detector.decode + Detector.nms on the float core's
outputs), on one real image, batch 1. NMS ms = (+nms) - core, the in-graph decode included.

Models:
  person         ssdlite_mobilenet_v2_person, the real TF graph (1 class, 1917 anchors,
                 100 detections)
  coco           ssdlite320_mobilenet_v3_large (90 classes, 3234 anchors, 300 detections),
                 randomized (no trained weights here) with trained-like scores: see trained_like_
  coco-worst     the same randomized checkpoint as is: every score passes 0.001 (fp32 only)
int8 artifacts come from ssdmobile.quant (calibrated on --calib-images train2017 images); a target
that cannot make one is a row saying why. --exactness also compares every fp32 in-graph NMS with the
eager NMS on all val2017 images of the person detector (see exactness()). The ops each ExecuTorch
+nms program leaves outside the XNNPACK delegate are listed (from its sidecar); --profile RUNS adds
ExecuTorch's own per-op profile (ETRecord + ETDump + Inspector) of the fp32 programs, core and +nms.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch

from ssdmobile.bench import machine_info, measure_interleaved
from ssdmobile.data import load_image
from ssdmobile.export._common import ExportRequest, artifact_stem, example_input
from ssdmobile.export._tensor_nms import traceable
from ssdmobile.export.executorch import lower
from ssdmobile.models import create_model
from ssdmobile.models.weights import randomize_
from ssdmobile.quant.ptq import Calibration
from ssdmobile.sidecar import load_sidecar
from ssdmobile.table import print_table
from ssdmobile.targets import TARGETS
from ssdmobile.targets.artifacts import load_predictor, load_runner
from ssdmobile.targets.pipeline import export
from ssdmobile.validate import detections_match

from _shared import COCO128, PERSON_GRAPH, VAL_IMAGES

TARGET_ORDER = ("executorch", "torchscript", "onnx")
# trained_like_ defaults: fitted on coco128 train2017, checked on val2017 (see score_statistics)
LOGIT_SCALE, BACKGROUND_BIAS = 1.2, 26.0
THRESHOLDS = (1e-3, 1e-2, 0.05, 0.1, 0.3, 0.5)


# the real person detector's share of anchors whose score passes each of THRESHOLDS, on the first 32
# val2017 images (this script's score table): what trained_like_(images=...) fits a model to
PERSON_SHARES = (0.1387, 0.0294, 0.0099, 0.0059, 0.0025, 0.0016)


def trained_like_(
    detector, scale: float = LOGIT_SCALE, background_bias: float = BACKGROUND_BIAS, images=None
):
    """A randomized SSDlite320 whose scores are distributed like a trained detector's: the last
    classification convs' weights x `scale`, their bias `background_bias` for the background and 0
    for the 90 classes, so background dominates. The class mass of an anchor goes mostly to one
    random class, as in a trained model.

    The defaults were fitted for randomize_'s weights: per image of coco128, the share of anchors
    whose best class passes each of THRESHOLDS then matches the real person detector's (10% pass
    0.001 for both; at the higher thresholds the COCO model has 1.3 to 3x more: more high-scoring
    boxes for NMS to sort out, not fewer). Other randomizations (realistic_random_) give logits of
    another scale, for which they leave no anchor above the threshold: given `images` (preprocessed
    [1, 3, H, W] inputs), scale and bias are instead fitted on them, by a grid over the scale and a
    bisection of the bias that puts the share at 0.001 on the person detector's, keeping the scale
    whose shares at the other thresholds are closest to PERSON_SHARES (in log)."""
    num_classes = detector.spec.num_classes
    convs = [block[-1] for block in detector.core.head.classification_head.module_list]
    with torch.no_grad():
        if images is not None:
            for conv in convs:
                conv.bias.zero_()
            # [anchors, classes]
            logits = torch.cat([detector.forward_core(x)[1][0] for x in images])
            scale, background_bias = _fit_scores(logits)
        for conv in convs:
            conv.weight.mul_(scale)
            bias = torch.zeros(conv.out_channels // num_classes, num_classes)
            bias[:, 0] = background_bias
            conv.bias.copy_(bias.reshape(-1))
    return detector


def _fit_scores(logits: torch.Tensor) -> tuple[float, float]:
    target = torch.tensor(PERSON_SHARES).clamp_min(1e-4).log()

    def shares(s: float, b: float) -> torch.Tensor:
        z = logits * s
        z[:, 0] += b
        best = z.softmax(-1)[:, 1:].amax(1)
        return torch.stack([(best > t).float().mean() for t in THRESHOLDS])

    best = None
    for s in torch.logspace(-1, 2, 31).tolist():
        lo, hi = -100.0, 500.0  # the share above 0.001 falls as the background bias grows
        for _ in range(40):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if shares(s, mid)[0] > PERSON_SHARES[0] else (lo, mid)
        err = float(((shares(s, hi).clamp_min(1e-4).log() - target) ** 2).sum())
        if best is None or err < best[0]:
            best = (err, s, hi)
    return best[1], best[2]


MODELS = {
    "person": lambda: create_model("ssdlite_mobilenet_v2_person", weights=PERSON_GRAPH),
    "coco": lambda: trained_like_(
        randomize_(create_model("ssdlite320_mobilenet_v3_large"), seed=0)
    ).eval(),
    "coco-worst": lambda: randomize_(create_model("ssdlite320_mobilenet_v3_large"), seed=0).eval(),
}


def build_models(names) -> dict:
    return {name: MODELS[name]() for name in names}


@torch.no_grad()
def score_statistics(models: dict, images: list) -> list[list]:
    """Per model, over the images: the share of anchors whose best foreground score passes each
    threshold (mean), candidates (anchor, class) above the model's score threshold per image,
    and detections after the eager NMS."""
    rows = []
    for name, det in models.items():
        pp = det.spec.postprocess
        shares, cands, dets = [], [], []
        for img in images:
            boxes, scores = det.decode(*det.forward_core(det.preprocess([img])))
            fg = scores[0, :, 1:]
            best = fg.max(1).values
            shares.append(torch.stack([(best > t).float().mean() for t in THRESHOLDS]))
            cands.append(int((fg > pp.score_thresh).sum()))
            dets.append(len(det.nms(boxes, scores, [tuple(img.shape[-2:])])[0]["scores"]))
        share = torch.stack(shares).mean(0)
        cands_t = torch.tensor(cands, dtype=torch.float)
        rows.append(
            [
                name,
                f"{pp.score_thresh:g}",
                " / ".join(f"{100 * v:.2f}" for v in share.tolist()),
                f"{cands_t.median():.0f} / {cands_t.max():.0f}",
                f"{sorted(dets)[len(dets) // 2]}",
            ]
        )
    return rows


def artifact_path(
    det, target: str, precision: str, out: Path, nms: bool, reuse: bool, calib_images: int = 16
) -> Path:
    """Export (or with reuse, find) the artifact; TorchScript's is the lite interpreter's file."""
    lite = target == "torchscript"  # the lite interpreter's file, as phones run it
    suffix = TARGETS[target].suffixes[-1 if lite else 0]
    stem = artifact_stem(det.spec.name, target, ExportRequest(precision, out, nms))
    path = out / f"{stem}{'_lite' if lite else ''}{suffix}"
    if not (reuse and path.exists()):
        calibration = (
            Calibration(str(COCO128), "train2017", calib_images) if precision == "int8" else None
        )
        written = export(
            det, target, precision, out, nms=nms, calibration=calibration, progress=False
        )
        path = next(a.path for a in written if a.path.suffix == suffix)
    print(f"  {path}", file=sys.stderr, flush=True)
    return path


def outside_delegate(pte: Path) -> str:
    """The ops an ExecuTorch program runs outside the XNNPACK
    delegate, as its sidecar records them."""
    d = load_sidecar(pte).to_dict()["executorch"]["delegation"]
    ops = ", ".join(
        f"{re.sub(r'^aten_|_default$', '', op)} x{n}" for op, n in d["non_delegated_by_op"].items()
    )
    return (
        f"{d['non_delegated_ops']} ops outside, {d['delegated_subgraphs']} "
        f"delegated subgraphs: {ops}"
    )


def etdump_profile(det, nms: bool, runs: int, out: Path) -> list[list]:
    """ExecuTorch's own profile of the program (ETRecord + ETDump + Inspector): the median ms of
    every XNNPACK delegate call and of each op kind that runs outside the delegate. The Python
    runtime writes ETDumps when it is built with the event tracer, as the pip wheel is."""
    from executorch.devtools import Inspector  # lazy: heavy optional runtime
    from executorch.runtime import Runtime  # lazy: heavy optional runtime

    out.mkdir(parents=True, exist_ok=True)
    x = example_input(det)
    program = lower(traceable(det, nms), (x,), generate_etrecord=True).to_executorch()
    (out / "program.pte").write_bytes(program.buffer)
    program.get_etrecord().save(str(out / "etrecord.bin"))
    loaded = Runtime.get().load_program(out / "program.pte", enable_etdump=True)
    method = loaded.load_method("forward")
    for _ in range(runs):
        method.execute((x,))
    loaded.write_etdump_result_to_file(str(out / "etdump.etdp"), str(out / "debug.bin"))
    df = Inspector(
        etdump_path=str(out / "etdump.etdp"), etrecord=str(out / "etrecord.bin")
    ).to_dataframe()
    rows = [
        (name, sorted(raw)[len(raw) // 2] if len(raw) else 0.0, delegated)
        for name, raw, delegated in df[["event_name", "raw", "is_delegated_op"]].itertuples(
            index=False
        )
    ]
    table, delegate, ops = [], 0, defaultdict(list)
    for name, ms, _delegated in rows:
        if name == "DELEGATE_CALL":
            table.append([f"XNNPACK delegate call {delegate}", "1", f"{ms:.3f}"])
            delegate += 1
        elif str(name).startswith("native_call_"):
            ops[name[len("native_call_") :]].append(ms)
    table += [
        [f"portable: {op}", str(len(v)), f"{sum(v):.3f}"]
        for op, v in sorted(ops.items(), key=lambda kv: -sum(kv[1]))
    ]
    table += [
        ["Method::execute", "1", f"{ms:.3f}"] for name, ms, _ in rows if name == "Method::execute"
    ]
    return table


def exactness(person, out: Path, images: list, reuse: bool) -> list[list]:
    """Every fp32 in-graph NMS of the person detector against the eager NMS on every image:
    'matched' is validate's rule (same labels, scores within 1e-3, boxes within 0.5 px; ties at the
    cut may differ) against the float eager model; 'same as own core' compares with the eager NMS
    run on the same runtime's raw-output artifact (count and labels equal, scores and boxes within
    1e-5), which separates the NMS from the runtimes' float differences in the core."""
    eager = []
    with torch.no_grad():
        for img in images:
            eager.append(person([img])[0])
    rows = []
    for target in TARGET_ORDER:
        raw = load_predictor(artifact_path(person, target, "fp32", out, False, reuse))
        with_nms = load_predictor(artifact_path(person, target, "fp32", out, True, reuse))
        matched = same = 0
        for img, ref in zip(images, eager):
            got = with_nms([img])[0]
            own = raw([img])[0]
            matched += detections_match(ref, got, person.spec.postprocess.max_detections)
            same += (
                len(own["scores"]) == len(got["scores"])
                and torch.equal(own["labels"], got["labels"])
                and torch.allclose(own["scores"], got["scores"], rtol=0, atol=1e-5)
                and torch.allclose(own["boxes"], got["boxes"], rtol=1e-5, atol=1e-3)
            )
        rows.append([target, f"{matched}/{len(images)}", f"{same}/{len(images)}"])
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--precisions", nargs="+", default=["fp32", "int8"])
    ap.add_argument("--targets", nargs="+", default=list(TARGET_ORDER))
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--calib-images", type=int, default=16)
    ap.add_argument(
        "--stat-images", type=int, default=32, help="val2017 images for the score statistics"
    )
    ap.add_argument("--out", help="artifact directory (default: a temporary one)")
    ap.add_argument(
        "--reuse", action="store_true", help="run artifacts already in --out instead of exporting"
    )
    ap.add_argument(
        "--exactness",
        action="store_true",
        help="also check the fp32 in-graph NMS on all val2017 images",
    )
    ap.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="RUNS",
        help="also profile the fp32 ExecuTorch programs with ETDump + Inspector over RUNS runs",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_nms_"))
    val = sorted(VAL_IMAGES.glob("*.jpg"))
    models = build_models(args.models)
    stats = score_statistics(models, [load_image(p) for p in val[: args.stat_images]])

    img = load_image(val[0])
    fns, rows, delegation = {}, [], []
    for name, det in models.items():
        x = det.preprocess([img])
        raw = det.forward_core(x)
        fns[(name, "host")] = lambda det=det, raw=raw: det.nms(
            *det.decode(*raw), [tuple(img.shape[-2:])]
        )
        for target in args.targets:
            for precision in args.precisions:
                if name == "coco-worst" and precision != "fp32":
                    continue
                sub = out / name
                try:
                    runners = [
                        load_runner(
                            artifact_path(
                                det, target, precision, sub, nms, args.reuse, args.calib_images
                            ),
                            threads=args.threads,
                        )
                        for nms in (False, True)
                    ]
                except Exception as e:  # a target without int8 for this model: say so in its row
                    rows.append(
                        (name, target, precision, f"not measured: {str(e).splitlines()[0][:110]}")
                    )
                    continue
                if target == "executorch":
                    pte = artifact_path(det, target, precision, sub, True, True, args.calib_images)
                    delegation.append([name, precision, outside_delegate(pte)])
                for nms, r in zip((False, True), runners):
                    fns[(name, target, precision, nms)] = lambda r=r, x=x: r.run(x)
                rows.append((name, target, precision, None))
    print(f"timing {len(fns)} candidates round-robin ...", file=sys.stderr, flush=True)
    with torch.no_grad():
        t = measure_interleaved(fns, args.runs, args.warmup, args.threads)

    table = []
    for name, target, precision, failed in rows:
        if failed:
            table.append([name, target, precision, "-", "-", "-", "-", failed])
            continue
        core, nms = (
            t[(name, target, precision, False)].median_ms,
            t[(name, target, precision, True)].median_ms,
        )
        table.append(
            [
                name,
                target,
                precision,
                f"{core:.2f}",
                f"{nms:.2f}",
                f"{nms - core:.2f}",
                f"{100 * (nms - core) / core:.0f}%",
                "ok" if nms - core <= 0.25 * core else "over 25%",
            ]
        )
    for name in models:
        table.append(
            [
                name,
                "host: decode + NMS (eager)",
                "fp32",
                "-",
                "-",
                f"{t[(name, 'host')].median_ms:.2f}",
                "-",
                "ok" if t[(name, "host")].median_ms <= 5 or name != "coco" else "over 5 ms",
            ]
        )
    m = machine_info()
    print(
        f"batch 1, {args.threads} threads, median of {args.runs} runs after {args.warmup} "
        "warm-up, all timed "
        f"round-robin in one process; {m['cpu']} ({m['cores']} cores visible), load average "
        f"{os.getloadavg()[0]:.1f}, {platform.system()}, torch {m['torch']}; image {val[0].name}"
    )
    print(
        "\nScores on the first",
        args.stat_images,
        "val2017 images (coco models: randomized weights):",
    )
    print_table(
        [
            "model",
            "score threshold",
            "% anchors best score > " + " / ".join(f"{x:g}" for x in THRESHOLDS),
            "candidates > threshold per image (median / max)",
            "detections (median)",
        ],
        stats,
        markdown=True,
    )
    print()
    print_table(
        ["model", "target", "precision", "core ms", "+nms ms", "NMS ms", "NMS % of core", "status"],
        table,
        markdown=True,
    )
    if delegation:
        print(
            "\nExecuTorch +nms programs, ops left to the portable kernels "
            "(from the export's sidecar):"
        )
        print_table(
            ["model", "precision", "outside the XNNPACK delegate"], delegation, markdown=True
        )
    for name in [n for n in ("person", "coco") if n in models] if args.profile else ():
        for nms in (False, True):
            print(
                f"\nETDump profile, {name} fp32 {'+nms' if nms else 'core'}, median of "
                f"{args.profile} runs:"
            )
            print_table(
                ["event", "count", "ms"],
                etdump_profile(
                    models[name], nms, args.profile, out / "profile" / f"{name}_{int(nms)}"
                ),
                markdown=True,
            )
    if args.exactness and "person" in models:
        images = [load_image(p) for p in val]
        print(f"\nfp32 in-graph NMS vs eager NMS, person detector, {len(images)} val2017 images:")
        print_table(
            ["target", "matched (validate's rule)", "same as eager NMS on own core"],
            exactness(models["person"], out / "person", images, args.reuse),
            markdown=True,
        )


if __name__ == "__main__":
    main()
