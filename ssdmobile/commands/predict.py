"""`ssdmobile predict`: draw what a model or an artifact detects on images, or both side by side."""

import logging
from pathlib import Path

from ..errors import SSDMobileError
from ._args import add_model, add_threads, add_weights, existing_path, number, output_dir

NAME = "predict"
HELP = (
    "draw the detections of a model or an exported artifact on images (PNG); --compare draws float "
    "and artifact side by side, the boxes that differ highlighted. Images that cannot be decoded "
    "are skipped with one warning naming them (refused when none can be)"
)
DEFAULT_MODEL = "ssdlite_mobilenet_v2_person"
log = logging.getLogger(__name__)


def add_arguments(p):
    p.add_argument(
        "images",
        nargs="+",
        type=existing_path,
        metavar="IMAGE_OR_DIR",
        help="image files, or folders whose images are all drawn",
    )
    add_model(
        p,
        help=f"registered model name (default: the artifact's model with --compare, "
        f"else {DEFAULT_MODEL})",
    )
    add_weights(p, help="checkpoint for the float model (default: the model's registered weights)")
    p.add_argument(
        "--artifact", type=existing_path, help="an exported artifact, run in its own runtime"
    )
    p.add_argument(
        "--compare",
        action="store_true",
        help="float model (left) against --artifact (right) on each image: boxes only float shows "
        "in red, only the artifact shows in blue, the same ones thin",
    )
    p.add_argument(
        "--score-thresh",
        type=number(0.0),
        default=0.5,
        help="draw boxes scoring at least this (default 0.5)",
    )
    p.add_argument(
        "--iou",
        type=number(0.0, strict=True),
        default=0.5,
        help="--compare: a float and an artifact box of the same class are the same box at this "
        "IoU (default 0.5)",
    )
    add_threads(p)
    p.add_argument(
        "--out",
        default="runs/predict",
        type=output_dir,
        help="output folder (default runs/predict)",
    )


def _check(args) -> None:
    if args.score_thresh > 1 or args.iou > 1:
        raise SSDMobileError("--score-thresh and --iou are between 0 and 1")
    if args.compare and not args.artifact:
        raise SSDMobileError(
            "--compare draws the float model against an artifact: give --artifact PATH too"
        )
    if args.artifact and not args.compare and (args.model or args.weights):
        raise SSDMobileError("give --model/--weights or --artifact (both only with --compare)")


def run(args):
    import torch

    from ..data import image_files, load_image, undecodable
    from ..models import create_model, get_entry
    from ..sidecar import load_sidecar
    from ..targets.artifacts import load_predictor
    from ..visualize import boxes, compare_picture, draw_detections, save_png, with_caption

    _check(args)
    paths = image_files(args.images)
    # each picture stands alone: the ones that decode are drawn, the others named once, up front
    bad = undecodable(paths)
    if len(bad) == len(paths):
        raise SSDMobileError(f"no image can be decoded: {'; '.join(bad.values())}")
    if bad:
        log.warning(f"skipping {len(bad)} images that cannot be decoded: {'; '.join(bad.values())}")
        paths = [p for p in paths if p not in bad]
    stems = [p.stem for p in paths]
    twice = sorted({s for s in stems if stems.count(s) > 1})
    if twice:
        raise SSDMobileError(
            f"two images would be written as {twice[0]}.png; draw them into separate --out folders"
        )
    torch.set_num_threads(args.threads)
    predictor = load_predictor(args.artifact, threads=args.threads) if args.artifact else None
    detector = None
    if not args.artifact or args.compare:
        name = args.model or (load_sidecar(args.artifact).model if args.artifact else DEFAULT_MODEL)
        get_entry(name)
        detector = create_model(name, weights=args.weights or "default").eval()
        if predictor is not None and predictor.spec.name != detector.spec.name:
            raise SSDMobileError(
                f"{args.artifact} was exported from {predictor.spec.name!r}, not {name!r}"
            )
        _note_other_weights(detector, args.artifact)
    artifact_title = ""
    if predictor is not None:
        sc = predictor.runner.sidecar
        artifact_title = f"{sc.target}{' +nms' if sc.nms.in_graph else ''} {sc.precision}"
    for path in paths:
        image = load_image(path)
        out = args.out / f"{path.stem}.png"
        with torch.no_grad():
            ref = detector([image])[0] if detector is not None else None
            got = predictor([image])[0] if predictor is not None else None
        if args.compare:
            picture, d = compare_picture(
                image,
                ref,
                got,
                detector.spec.class_names,
                ref_title="float",
                got_title=artifact_title,
                score_thresh=args.score_thresh,
                iou=args.iou,
            )
            if d.same and d.matched == 0:
                what = f"no box >= {args.score_thresh:g} in either"
            else:
                what = (
                    "same boxes"
                    if d.same
                    else f"{d.float_only} float only, {d.artifact_only} artifact only"
                ) + f" ({d.matched} matched, >= {args.score_thresh:g})"
        else:
            det, spec = (got, predictor.spec) if predictor is not None else (ref, detector.spec)
            title = (
                f"{artifact_title} ({Path(args.artifact).name})"
                if args.artifact
                else f"{detector.spec.name} (float)"
            )
            n = int((det["scores"] >= args.score_thresh).sum())
            picture = with_caption(
                draw_detections(image, det, spec.class_names, score_thresh=args.score_thresh),
                f"{title}: {boxes(n)} >= {args.score_thresh:g}",
            )
            what = f"{boxes(n)} >= {args.score_thresh:g}"
        save_png(picture, out)
        print(f"wrote {out}: {what}")
    print(
        f"drew {len(paths)} images into {args.out}"
        + (f"; skipped {len(bad)} that cannot be decoded" if bad else "")
    )
    return 0


def _note_other_weights(detector, artifact) -> None:
    """A comparison against other weights than the artifact's is allowed (a QAT artifact against
    its float start), but said."""
    from ..sidecar import load_sidecar

    if not artifact or detector.weights is None:
        return
    checkpoint = load_sidecar(artifact).checkpoint
    recorded = checkpoint.sha256 if checkpoint else None
    if recorded and recorded != detector.weights.sha256:
        log.warning(
            f"note: {artifact} was exported from other weights (sha256 {recorded[:12]}) than "
            f"{detector.weights.path} ({detector.weights.sha256[:12]})"
        )
