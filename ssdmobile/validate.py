"""`ssdmobile validate`: export every target x precision (x NMS in graph or not), run each artifact
in its own runtime on real images, and measure it against the float eager model it came from:
AP and ΔAP (same preprocessing, same AP code), max abs difference of the raw outputs, whether
the detections match image by image, file size, how much of an ExecuTorch program XNNPACK runs,
and latency. The result is typed (ValidateResult); ssdmobile.report renders it.

Every artifact sees the very same preprocessed tensors as the eager model (preprocessing is
host-side for every runnable target), so differences are the runtime's alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from .bench import Timing, machine_info, measure_interleaved
from .data import open_dataset, refuse_shared_images
from .errors import PrecisionNotAvailable, SSDMobileError
from .evaluate import coco_eval
from .export import Artifact
from .fileio import WriteFault, sha256_file, size_bytes
from .quant import Calibration
from .runtime import Predictor, check_sidecar
from .sidecar import Latency, Metrics, load_sidecar, sidecar_path, write_sidecar
from .targets import (
    PRECISIONS,
    TARGETS,
    check_precision,
    get_target,
    int8_formats_for,
    target_for_path,
)
from .targets.artifacts import load_runner
from .targets.pipeline import export

log = logging.getLogger(__name__)

BOX_TOL_PX = 0.5
SCORE_TOL = 1e-3
# --max-drift for fp16 rows is at least this: fp16 rounds the logits (about 0.01 at 15-20) and
# moves AP by about 1e-3 whatever runs the program (person detector, 32 val2017 images: the raw
# fp16 ML Program -0.0011, the NMS pipeline -0.0011); the fp16 goal is 0.002 of float
FP16_MAX_DRIFT = 0.002
GALLERY_SCORE = (
    0.5  # the gallery shows boxes scoring at least this, on images where float shows one
)


@dataclass(frozen=True)
class ValidateOptions:
    """What to measure and how. targets=None: every target; precisions=None: each target's default;
    artifacts: already-exported artifacts of this model (a QAT .pte, a float-fallback export...)
    measured in the same run, after the exported ones (targets=[] measures only those).
    int8_formats: int8 rows in each of these formats for targets whose int8 comes in several
    (TARGETS[t].int8.formats: onnx's QDQ and QOperator variants); empty: each target's default."""

    targets: Sequence[str] | None = None
    precisions: Sequence[str] | None = None
    nms_modes: Sequence[bool] = (False, True)
    classes: Sequence[str] | None = None
    threads: int = 2
    runs: int = 50
    warmup: int = 5
    max_drift: float | None = None
    calibration: Calibration | None = None
    artifacts: Sequence[str | os.PathLike] = ()
    progress: bool = True
    int8_formats: Sequence[str] = ()
    gallery: int = (
        4  # images whose detections the report draws, float against each artifact (see _Run)
    )


@dataclass
class Row:
    target: str
    precision: str
    nms: bool
    artifact: str | None = None
    runtime: str = ""  # what ran it ("lite interpreter (torch.jit.mobile)"...)
    size_mb: float | None = None
    ap: float | None = None
    delta_ap: float | None = None
    max_abs_diff: float | None = None
    det_match: str | None = None  # "matched/images"
    delegation: dict | None = None  # ExecuTorch: ops delegated to XNNPACK vs not (sidecar's record)
    mobile: dict | None = None  # ONNX / .ort: ONNX Runtime's mobile usability check (sidecar's)
    latency_median_ms: float | None = None
    latency_p90_ms: float | None = None
    speedup: float | None = None
    status: str = "ok"
    seconds: float = 0.0
    notes: dict = field(default_factory=dict)
    variant: str = (
        ""  # "lite" for TorchScript's lite-interpreter file; for --artifacts what the name adds
    )
    sha256: str | None = None  # of the artifact file: what device results are matched by

    @property
    def label(self) -> str:
        return (
            f"{self.target}{' +nms' if self.nms else ''} "
            f"{self.precision}{' ' + self.variant if self.variant else ''}"
        )

    @property
    def failed(self) -> bool:
        return self.status.startswith(("failed", "DRIFT"))

    def to_dict(self) -> dict:
        return {**asdict(self), "label": self.label}


@dataclass
class EagerSummary:
    ap: float
    ap50: float
    latency: Timing
    latency_nms: Timing

    def to_dict(self) -> dict:
        return {
            "ap": self.ap,
            "ap50": self.ap50,
            "latency": self.latency.to_dict(),
            "latency_nms": self.latency_nms.to_dict(),
        }


@dataclass
class Gallery:
    """What the report draws (not serialized): a few images (the first on which float shows a box),
    the float detections on them, and each measured row's on the same images (key: the row's index
    in `rows`)."""

    names: list[str]
    images: list[torch.Tensor]  # uint8 [3, H, W]
    reference: list[dict]
    rows: dict[int, list[dict]]
    class_names: list[str]


@dataclass
class ValidateResult:
    rows: list[Row]
    eager: EagerSummary
    # model, images, classes, threads, runs, warmup, max_drift, machine, seconds, load_average...
    meta: dict
    gallery: Gallery | None = None

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.failed]

    def to_dict(self) -> dict:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "eager": self.eager.to_dict(),
            "meta": self.meta,
        }


def detections_match(
    ref: dict,
    got: dict,
    max_detections: int,
    box_tol: float = BOX_TOL_PX,
    score_tol: float = SCORE_TOL,
) -> bool:
    """Every reference detection has its own counterpart (same label, score within score_tol, box
    corners within box_tol pixels), and nothing extra. Near-ties at the max_detections cut-off may
    fall either side of it, so those (score within score_tol of the cut) are allowed to differ."""
    ka, kb = len(ref["scores"]), len(got["scores"])
    if ka == 0 or kb == 0:
        return ka == kb
    ok = (
        (ref["labels"][:, None] == got["labels"][None, :])
        & ((ref["scores"][:, None] - got["scores"][None, :]).abs() <= score_tol)
        & ((ref["boxes"][:, None, :] - got["boxes"][None, :, :]).abs().amax(-1) <= box_tol)
    )
    used = torch.zeros(kb, dtype=torch.bool)
    unmatched_ref = []
    for i in range(ka):
        cand = (ok[i] & ~used).nonzero()
        if len(cand):
            used[cand[0, 0]] = True
        else:
            unmatched_ref.append(i)
    cut = min(float(ref["scores"].min()), float(got["scores"].min())) + score_tol
    full = ka >= max_detections or kb >= max_detections
    near_cut = lambda s: full and float(s) <= cut  # noqa: E731
    return all(near_cut(ref["scores"][i]) for i in unmatched_ref) and all(
        near_cut(got["scores"][j]) for j in (~used).nonzero()[:, 0].tolist()
    )


class _Run:
    """One validate run: the model, the images preprocessed once, the eager reference (raw outputs,
    detections, AP) every artifact is compared with, and the options."""

    def __init__(self, detector, dataset, out_dir: Path, opts: ValidateOptions):
        self.detector, self.dataset, self.opts = detector, dataset, opts
        self.art_dir = out_dir / "artifacts"
        samples = list(dataset)
        if not samples:
            raise SSDMobileError("the dataset has no images")
        self.sizes = [tuple(s.image.shape[-2:]) for s in samples]
        # the same tensors for every runtime
        self.inputs = [detector.preprocess([s.image]) for s in samples]
        self.ids = [s.image_id for s in samples]
        self.max_det = detector.spec.postprocess.max_detections
        self.raw, self.dets = [], []
        with torch.no_grad():
            for x, size in tqdm(
                list(zip(self.inputs, self.sizes)),
                desc="eager",
                leave=False,
                disable=not opts.progress,
            ):
                raw = detector.forward_core(x)
                self.raw.append(raw)
                self.dets.extend(detector.nms(*detector.decode(*raw), [size]))
        # coco_eval scores exactly the images it is given predictions for
        self.reference = coco_eval(
            dataset, dict(zip(self.ids, self.dets)), detector.spec.class_names, opts.classes
        )
        # the gallery: the first images on which float shows a box (pictures of nothing show
        # nothing), then the first others if too few do
        boxed = [i for i, d in enumerate(self.dets) if bool((d["scores"] >= GALLERY_SCORE).any())]
        others = sorted(set(range(len(samples))) - set(boxed))
        shown = sorted((boxed + others)[: opts.gallery])
        self.gallery_ids = [self.ids[i] for i in shown]
        self.gallery = Gallery(
            [samples[i].path.name for i in shown],
            [samples[i].image for i in shown],
            [self.dets[i] for i in shown],
            {},
            list(detector.spec.class_names),
        )

    def measure(self, row: Row, path: Path):
        """Run an artifact on every image in its runtime and compare with eager. -> (the loaded
        runner, its detections on the gallery's images), or (None, None) where the runtime cannot
        run here (its file is verified instead)."""
        row.artifact, row.size_mb = str(path), size_bytes(path) / 1e6
        sidecar = load_sidecar(path)
        row.sha256 = sidecar.artifact_sha256 or sha256_file(path)
        row.delegation = sidecar.executorch.delegation.model_dump() if sidecar.executorch else None
        row.mobile = sidecar.ort_mobile.model_dump() if sidecar.ort_mobile else None
        target = target_for_path(path)
        if not target.runs_here():
            row.notes["verified"] = target.verify(path)
        runner = load_runner(path, threads=self.opts.threads)
        row.runtime = sidecar.runtime or ""
        if getattr(runner, "reference", False):
            # Core ML off macOS: ssdmobile.mlprogram evaluates the saved program (no latency)
            row.runtime = row.status = runner.label
        predictor = Predictor(runner)
        dets, max_diff, matched = {}, 0.0, 0
        for i, (x, size, image_id) in enumerate(
            tqdm(
                list(zip(self.inputs, self.sizes, self.ids)),
                desc=row.label,
                leave=False,
                disable=not self.opts.progress,
            )
        ):
            outputs = runner.run(x)
            if not row.nms:
                max_diff = max(
                    max_diff,
                    max(float((a.float() - b).abs().max()) for a, b in zip(outputs, self.raw[i])),
                )
            det = predictor.detections(outputs, [size])[0]
            dets[image_id] = det
            matched += detections_match(self.dets[i], det, self.max_det)
        result = coco_eval(self.dataset, dets, predictor.spec.class_names, self.opts.classes)
        row.ap, row.delta_ap = result.ap, result.ap - self.reference.ap
        row.max_abs_diff = None if row.nms else max_diff
        row.det_match = f"{matched}/{len(self.ids)}"
        row.notes.update(images=len(self.ids), classes=result.classes)
        return runner, [dets[i] for i in self.gallery_ids]


@contextlib.contextmanager
def _guarded(row: Row, max_drift: float | None):
    """One place for what goes wrong with one artifact: a user-facing error or a runtime crash
    becomes the row's status (the other rows still run); drift beyond the gate marks the row."""
    t0 = time.perf_counter()
    try:
        yield
    except WriteFault:  # the disk, not the artifact: every other row and the report would fail too
        raise
    except SSDMobileError as e:
        row.status = f"failed: {e}"
    except Exception as e:  # a runtime crash on one artifact must not hide the others
        row.status = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    limit = drift_limit(row.precision, max_drift)
    if limit is not None and row.delta_ap is not None and abs(row.delta_ap) > limit:
        row.status = f"DRIFT |ΔAP| {abs(row.delta_ap):.4f} > {limit}"
    elif limit is not None and row.delta_ap is not None and abs(row.delta_ap) > max_drift:
        row.status += f"; fp16 gate {limit} (|ΔAP| {abs(row.delta_ap):.4f} > {max_drift})"
    row.seconds = time.perf_counter() - t0
    log.info(
        f"    {row.status}"
        + (f", AP {row.ap:.4f} (Δ {row.delta_ap:+.4f})" if row.ap is not None else "")
    )


def drift_limit(precision: str, max_drift: float | None) -> float | None:
    """The |ΔAP| gate of a row: --max-drift, and for fp16 rows at least FP16_MAX_DRIFT."""
    if max_drift is None:
        return None
    return max(max_drift, FP16_MAX_DRIFT) if precision == "fp16" else max_drift


def _row_for(artifact: Artifact, int8_format: str | None = None) -> Row:
    variant = " ".join(
        v
        for v in ({".ptl": "lite", ".ort": "ort"}.get(artifact.path.suffix, ""), int8_format or "")
        if v
    )
    return Row(
        artifact.target, artifact.precision, artifact.nms, runtime=artifact.runtime, variant=variant
    )


def check_options(model: str, dataset, opts: ValidateOptions) -> list[tuple[Path, Row]]:
    """Everything about the options that can be wrong, before any model loads: -> the given
    artifacts. int8 calibration images must not be the images scored (compared by content)."""
    for t in opts.targets if opts.targets is not None else ():
        get_target(t)
    for p in opts.precisions or ():
        if p not in PRECISIONS:
            raise SSDMobileError(f"unknown precision {p!r}; choose from {', '.join(PRECISIONS)}")
    if opts.int8_formats:
        if "int8" not in (opts.precisions or ()):
            raise SSDMobileError(
                "int8 formats need int8 among the precisions (--precisions ... int8)"
            )
        int8_formats_for(list(TARGETS if opts.targets is None else opts.targets), opts.int8_formats)
    if opts.calibration is not None and "int8" in (opts.precisions or ()):
        c = opts.calibration
        refuse_shared_images(open_dataset(c.data, c.split, c.num_images), dataset)
    return [_given_artifact(a, model) for a in opts.artifacts]


def validate(
    detector,
    dataset,
    out_dir: str | os.PathLike,
    opts: ValidateOptions = ValidateOptions(),
    given: list[tuple[Path, Row]] | None = None,
) -> ValidateResult:
    """Artifacts are written to out_dir/artifacts; the measured
    drift goes into each one's sidecar. `given`: what check_options returned for these same
    options, model and dataset, when the caller checked them before loading the model (the CLI
    does; checking again would read and hash the calibration images twice)."""
    t_start = time.perf_counter()
    detector = detector.eval()
    torch.set_num_threads(opts.threads)
    if given is None:
        given = check_options(detector.spec.name, dataset, opts)
    targets = list(TARGETS if opts.targets is None else opts.targets)
    int8_formats = int8_formats_for(targets, opts.int8_formats)
    log.info(f"eager float reference on {len(dataset)} images ({opts.threads} threads)")
    run = _Run(detector, dataset, Path(out_dir), opts)
    log.info(f"eager: AP {run.reference.ap:.4f}")
    rows: list[Row] = []
    timed: list[tuple[Row, object]] = []  # (row, loaded runner)

    def measure(row: Row, path: Path) -> None:
        rows.append(row)
        log.info(f"[{len(rows)}] {row.label}: {path.name}")
        with _guarded(row, opts.max_drift):
            runner, shown = run.measure(row, path)
            if runner is not None:
                # a reference evaluator's time means nothing: its row's latency stays blank
                if not getattr(runner, "reference", False):
                    timed.append((row, runner))
                run.gallery.rows[len(rows) - 1] = shown

    for target in targets:
        t = get_target(target)
        for precision in opts.precisions or (t.default_precision,):
            try:
                check_precision(t, precision)
            except PrecisionNotAvailable as e:
                rows.append(Row(target, precision, False, status=f"not available: {e}"))
                continue
            for nms in opts.nms_modes:
                for fmt in int8_formats[target] if precision == "int8" else [None]:
                    failed = Row(target, precision, nms, variant=fmt or "")
                    log.info(f"[{len(rows) + 1}] {failed.label}: export")
                    with _guarded(failed, None):
                        artifacts = export(
                            detector,
                            target,
                            precision,
                            run.art_dir,
                            nms=nms,
                            calibration=opts.calibration,
                            progress=opts.progress,
                            int8_format=fmt,
                        )
                    if failed.status != "ok":
                        rows.append(failed)
                        continue
                    for artifact in artifacts:
                        measure(_row_for(artifact, fmt), artifact.path)
    for path, row in given:
        measure(row, path)
    eager = _time_everything(detector, run, timed, opts)
    for row, _ in timed:
        _record_metrics(row, run.reference.ap, opts)
    return ValidateResult(
        rows,
        eager,
        {
            "model": detector.spec.name,
            "images": len(run.ids),
            "threads": opts.threads,
            "runs": opts.runs,
            "warmup": opts.warmup,
            "max_drift": opts.max_drift,
            "classes": run.reference.classes,
            "machine": machine_info(),
            "seconds": time.perf_counter() - t_start,
            # latency on a shared machine means little without it
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "box_tol_px": BOX_TOL_PX,
            "score_tol": SCORE_TOL,
        },
        run.gallery,
    )


def _time_everything(detector, run: _Run, timed, opts: ValidateOptions) -> EagerSummary:
    """Latency last, every candidate round-robin on the same real
    image (see measure_interleaved)."""
    log.info(
        f"latency: {len(timed) + 2} candidates x {opts.runs} runs, round-robin, "
        f"{opts.threads} threads"
    )
    x, size = run.inputs[0], [run.sizes[0]]
    fns = {
        "eager": lambda: detector.forward_core(x),
        "eager +nms": lambda: detector.nms(*detector.decode(*detector.forward_core(x)), size),
    }
    fns.update({row.label: (lambda r=runner: r.run(x)) for row, runner in timed})
    with torch.no_grad():
        timings = measure_interleaved(fns, opts.runs, opts.warmup, opts.threads)
    eager = EagerSummary(
        run.reference.ap, run.reference.ap50, timings["eager"], timings["eager +nms"]
    )
    for row, _ in timed:
        t = timings[row.label]
        row.latency_median_ms, row.latency_p90_ms = t.median_ms, t.p90_ms
        row.speedup = (eager.latency_nms if row.nms else eager.latency).median_ms / t.median_ms
    return eager


def _given_artifact(path, model: str) -> tuple[Path, Row]:
    """An artifact passed to validate: it must exist, carry its sidecar and come from this model."""
    path = Path(path)
    if not path.exists():
        raise SSDMobileError(f"artifact not found: {path}")
    target = target_for_path(path)
    target.check_file(path)  # not what its suffix says, or truncated: before any work
    sc = load_sidecar(path)
    check_sidecar(path, sc, target.name)
    if sc.model != model:
        raise SSDMobileError(
            f"{path} was exported from {sc.model!r}, not from {model!r} (pass --model "
            f"{sc.model} and its --weights)"
        )
    stem, base = path.name.split(".")[0], f"_{sc.target}_{sc.precision}"
    variant = stem.split(base, 1)[1].strip("_") if base in stem else stem
    return path, Row(sc.target, sc.precision, sc.nms.in_graph, variant=variant or "given")


def _record_metrics(row: Row, ap_eager: float, opts: ValidateOptions) -> None:
    """The sidecar carries the measured drift, so apps and users see it beside the artifact."""
    path = Path(row.artifact)
    metrics = Metrics(
        ap=row.ap,
        ap_eager=ap_eager,
        delta_ap=row.delta_ap,
        max_abs_diff_raw=row.max_abs_diff,
        detections_match=row.det_match,
        images=row.notes["images"],
        classes=row.notes["classes"],
        latency_ms=Latency(
            median=row.latency_median_ms,
            p90=row.latency_p90_ms,
            threads=opts.threads,
            runs=opts.runs,
        ),
        machine=machine_info(),
    )
    write_sidecar(sidecar_path(path), load_sidecar(path).model_copy(update={"metrics": metrics}))
