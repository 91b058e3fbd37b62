"""`ssdmobile validate`: export every target x precision (x NMS in graph or not), run each artifact
in its own runtime on real images, and measure it against the float eager model it came from:
AP and ΔAP (same preprocessing, same AP code), max abs difference of the raw outputs, whether
the detections match image by image, file size and latency. Rendering lives in ssdmobile.report.

Every artifact sees the very same preprocessed tensors as the eager model (preprocessing is
host-side for every runnable target), so differences are the runtime's alone.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from .bench import machine_info, measure_interleaved
from .errors import SSDMobileError
from .evaluate import coco_eval
from .export import TARGETS, export, get_target
from .export._common import PRECISIONS, PrecisionNotAvailable, check_precision
from .runtime import Predictor, RuntimeUnavailable, load_runner
from .sidecar import read_sidecar, sidecar_path, write_sidecar

BOX_TOL_PX = 0.5
SCORE_TOL = 1e-3


@dataclass
class Row:
    target: str
    precision: str
    nms: bool
    artifact: str | None = None
    size_mb: float | None = None
    ap: float | None = None
    delta_ap: float | None = None
    max_abs_diff: float | None = None
    det_match: str | None = None  # "matched/images"
    latency_median_ms: float | None = None
    latency_p90_ms: float | None = None
    speedup: float | None = None
    status: str = "ok"
    seconds: float = 0.0
    notes: dict = field(default_factory=dict)
    variant: str = ""  # an artifact given with --artifacts: what its name adds ("qat", "fallback3")

    @property
    def label(self) -> str:
        return f"{self.target}{' +nms' if self.nms else ''} {self.precision}{' ' + self.variant if self.variant else ''}"


def _size_mb(path: Path) -> float:
    n = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return n / 1e6


def detections_match(ref: dict, got: dict, max_detections: int, box_tol: float = BOX_TOL_PX,
                     score_tol: float = SCORE_TOL) -> bool:
    """Every reference detection has its own counterpart (same label, score within score_tol, box
    corners within box_tol pixels), and nothing extra. Near-ties at the max_detections cut-off may
    fall either side of it, so those (score within score_tol of the cut) are allowed to differ."""
    ka, kb = len(ref["scores"]), len(got["scores"])
    if ka == 0 or kb == 0:
        return ka == kb
    ok = ((ref["labels"][:, None] == got["labels"][None, :])
          & ((ref["scores"][:, None] - got["scores"][None, :]).abs() <= score_tol)
          & ((ref["boxes"][:, None, :] - got["boxes"][None, :, :]).abs().amax(-1) <= box_tol))
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
    return (all(near_cut(ref["scores"][i]) for i in unmatched_ref)
            and all(near_cut(got["scores"][j]) for j in (~used).nonzero()[:, 0].tolist()))


class _Eager:
    """The float eager model's reference: raw outputs, detections, AP and latency."""

    def __init__(self, detector, inputs, sizes, ids, dataset, classes, progress):
        self.raw, self.dets = [], []
        with torch.no_grad():
            for x, size in tqdm(list(zip(inputs, sizes)), desc="eager", leave=False, disable=not progress):
                raw = detector.forward_core(x)
                self.raw.append(raw)
                self.dets.extend(detector.nms(*detector.decode(*raw), [size]))
            # coco_eval scores exactly the images it is given predictions for
            self.result = coco_eval(dataset, dict(zip(ids, self.dets)), detector.spec.class_names, classes)
        x, size = inputs[0], [sizes[0]]
        self.timed = {"eager": lambda: detector.forward_core(x),
                      "eager +nms": lambda: detector.nms(*detector.decode(*detector.forward_core(x)), size)}
        self.latency = self.latency_nms = None


def validate(detector, dataset, out_dir: str | Path, *, targets: Sequence[str] | None = None,
             precisions: Sequence[str] | None = None, nms_modes: Sequence[bool] = (False, True),
             classes: Sequence[str] | None = None, threads: int = 2, runs: int = 50, warmup: int = 5,
             max_drift: float | None = None, progress: bool = True, log=print,
             calibration: dict | None = None, artifacts: Sequence[str | os.PathLike] = ()) -> dict:
    """-> {"rows": [Row...], "eager": {...}, "meta": {...}}; artifacts are written to out_dir/artifacts.
    `artifacts`: already-exported artifacts of this model (a QAT .pte, a --float-fallback export...)
    measured in the same run, after the exported ones; `targets=[]` measures only those."""
    t_start = time.perf_counter()
    detector = detector.eval()
    torch.set_num_threads(threads)
    given = [_given_artifact(a, detector.spec.name) for a in artifacts]
    if calibration:
        calibration = {**calibration, "progress": progress}
    targets = list(TARGETS if targets is None else targets)
    for t in targets:
        get_target(t)
    for p in precisions or ():
        if p not in PRECISIONS:
            raise SSDMobileError(f"unknown precision {p!r}; choose from {', '.join(PRECISIONS)}")
    out_dir = Path(out_dir)
    art_dir = out_dir / "artifacts"
    samples = list(dataset)
    if not samples:
        raise SSDMobileError("the dataset has no images")
    sizes = [tuple(s.image.shape[-2:]) for s in samples]
    inputs = [detector.preprocess([s.image]) for s in samples]  # the same tensors for every runtime
    ids = [s.image_id for s in samples]
    log(f"eager float reference on {len(samples)} images ({threads} threads)")
    eager = _Eager(detector, inputs, sizes, ids, dataset, classes, progress)
    log(f"eager: AP {eager.result.ap:.4f}")
    max_det = detector.spec.postprocess.max_detections
    rows: list[Row] = []
    timed: list[tuple[Row, object]] = []  # (row, loaded runner)
    for target in targets:
        mod = get_target(target)
        for precision in (precisions or (mod.DEFAULT_PRECISION,)):
            try:
                check_precision(target, precision, mod.PRECISIONS)
            except PrecisionNotAvailable as e:
                rows.append(Row(target, precision, False, status=f"not available: {e}"))
                continue
            for nms in nms_modes:
                row = Row(target, precision, nms)
                rows.append(row)
                t0 = time.perf_counter()
                log(f"[{len(rows)}] {row.label}: export")
                try:
                    runner = _measure_row(row, detector, art_dir, inputs, sizes, ids, dataset, classes, eager,
                                          max_det, threads, progress, calibration)
                    if runner is not None:
                        timed.append((row, runner))
                except SSDMobileError as e:
                    row.status = f"failed: {e}"
                except Exception as e:  # a runtime crash on one artifact must not hide the others
                    row.status = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                _finish(row, t0, max_drift, log)
    for path, row in given:
        rows.append(row)
        t0 = time.perf_counter()
        log(f"[{len(rows)}] {row.label}: {path}")
        try:
            runner = _measure_artifact(row, path, inputs, sizes, ids, dataset, classes, eager, max_det, threads,
                                       progress)
            if runner is not None:
                timed.append((row, runner))
        except SSDMobileError as e:
            row.status = f"failed: {e}"
        except Exception as e:
            row.status = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        _finish(row, t0, max_drift, log)
    # latency last, every candidate round-robin on the same real image (see measure_interleaved)
    log(f"latency: {len(timed) + 2} candidates x {runs} runs, round-robin, {threads} threads")
    x = inputs[0]
    fns = dict(eager.timed)
    fns.update({row.label: (lambda r=runner: r.run(x)) for row, runner in timed})
    with torch.no_grad():
        timings = measure_interleaved(fns, runs, warmup, threads)
    eager.latency, eager.latency_nms = timings["eager"], timings["eager +nms"]
    for row, _ in timed:
        t = timings[row.label]
        row.latency_median_ms, row.latency_p90_ms = t.median_ms, t.p90_ms
        row.speedup = (eager.latency_nms if row.nms else eager.latency).median_ms / t.median_ms
        _record_metrics(row, eager, threads, runs)
    return {
        "rows": rows,
        "eager": {"ap": eager.result.ap, "ap50": eager.result.ap50,
                  "latency": eager.latency.to_dict(), "latency_nms": eager.latency_nms.to_dict()},
        "meta": {"model": detector.spec.name, "images": len(samples), "threads": threads, "runs": runs,
                 "warmup": warmup, "max_drift": max_drift, "classes": eager.result.classes,
                 "machine": machine_info(), "seconds": time.perf_counter() - t_start,
                 # latency on a shared machine means little without it
                 "load_average": [round(v, 2) for v in os.getloadavg()],
                 "box_tol_px": BOX_TOL_PX, "score_tol": SCORE_TOL},
    }


def _finish(row, t0, max_drift, log) -> None:
    if max_drift is not None and row.delta_ap is not None and abs(row.delta_ap) > max_drift:
        row.status = f"DRIFT |ΔAP| {abs(row.delta_ap):.4f} > {max_drift}"
    row.seconds = time.perf_counter() - t0
    log(f"    {row.status}" + (f", AP {row.ap:.4f} (Δ {row.delta_ap:+.4f})" if row.ap is not None else ""))


def _given_artifact(path, model: str) -> tuple[Path, Row]:
    """An artifact passed to validate: it must exist, carry its sidecar and come from this model."""
    path = Path(path)
    if not path.exists():
        raise SSDMobileError(f"artifact not found: {path}")
    sc = read_sidecar(path)
    if sc["model"] != model:
        raise SSDMobileError(f"{path} was exported from {sc['model']!r}, not from {model!r} (pass --model "
                             f"{sc['model']} and its --weights)")
    stem, base = path.name.split(".")[0], f"_{sc['target']}_{sc['precision']}"
    variant = stem.split(base, 1)[1].strip("_") if base in stem else stem
    return path, Row(sc["target"], sc["precision"], bool(sc["nms"]["in_graph"]), variant=variant or "given")


def _measure_row(row, detector, art_dir, inputs, sizes, ids, dataset, classes, eager, max_det, threads, progress,
                 calibration=None):
    """Export, run on every image, compare with eager. -> the loaded runner (None if it cannot run here)."""
    path = export(detector, row.target, row.precision, art_dir, nms=row.nms, calibration=calibration)
    return _measure_artifact(row, path, inputs, sizes, ids, dataset, classes, eager, max_det, threads, progress)


def _measure_artifact(row, path, inputs, sizes, ids, dataset, classes, eager, max_det, threads, progress):
    """Run an artifact on every image in its runtime and compare with eager. -> the loaded runner."""
    row.artifact = str(path)
    row.size_mb = _size_mb(path)
    try:
        runner = load_runner(path, threads=threads)
    except RuntimeUnavailable:
        from .export.coreml import check_spec

        summary = check_spec(path)
        row.notes["spec"] = summary
        row.status = "spec checked; not run: Core ML predicts on macOS only (drift measured there)"
        return None
    predictor = Predictor(runner)
    dets, max_diff, matched = {}, 0.0, 0
    for i, (x, size, image_id) in enumerate(tqdm(list(zip(inputs, sizes, ids)), desc=row.label, leave=False,
                                                  disable=not progress)):
        outputs = runner.run(x)
        if not row.nms:
            max_diff = max(max_diff, max(float((a.float() - b).abs().max()) for a, b in zip(outputs, eager.raw[i])))
        det = predictor.detections(outputs, [size])[0]
        dets[image_id] = det
        matched += detections_match(eager.dets[i], det, max_det)
    result = coco_eval(dataset, dets, predictor.spec.class_names, classes)
    row.ap = result.ap
    row.delta_ap = result.ap - eager.result.ap
    row.max_abs_diff = None if row.nms else max_diff
    row.det_match = f"{matched}/{len(ids)}"
    row.notes["images"] = len(ids)
    row.notes["classes"] = result.classes
    return runner


def _record_metrics(row, eager, threads, runs):
    """The sidecar carries the measured drift, so apps and users see it beside the artifact."""
    path = Path(row.artifact)
    sc = read_sidecar(path)
    sc["metrics"] = {"ap": row.ap, "ap_eager": eager.result.ap, "delta_ap": row.delta_ap,
                     "max_abs_diff_raw": row.max_abs_diff, "detections_match": row.det_match,
                     "images": row.notes["images"], "classes": row.notes["classes"],
                     "latency_ms": {"median": row.latency_median_ms, "p90": row.latency_p90_ms, "threads": threads,
                                    "runs": runs}, "machine": machine_info()}
    write_sidecar(sidecar_path(path), sc)


def row_dict(row: Row) -> dict:
    d = asdict(row)
    d["label"] = row.label
    return d
