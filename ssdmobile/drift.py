"""Golden data for an exported artifact: what the sample apps run through the phone's runtime to
measure its drift from the float model on the device itself.

`attach_golden(detector, artifact, images)` writes, beside the artifact, `<stem>.golden/`:

  golden.json               the manifest (ssdmobile.device.ArtifactGolden, typed): every file
                            below, the float detections, the tolerances, and what this machine's
                            runtime measured (host)
  <image>.input.f32         the artifact's input, preprocessed as the app does (the sidecar's
                            preprocessing: the same code the apps' Preprocessor is tested against),
                            float32 little-endian, in the sidecar's input shape
  <image>.input.u8          instead, for image-input artifacts (Core ML): the image already resized
                            to the model's size, uint8 RGB [H, W, 3]
  <image>.<output>.f32      the float model's raw outputs (box_encodings, class_logits) for the same
                            input, when the artifact has raw outputs (no NMS in its graph)

The apps (android_demo/postprocess's DriftCheck.kt, ios_demo/SSDMobileKit's DriftCheck.swift)
and `compare` here apply one rule: raw outputs pass when every value is finite and
|device - float| <= atol + rtol * |device| (ExecuTorch BundledProgram's rule); detections are
matched image by image as ssdmobile.validate.detections_match does, with the manifest's score and
box tolerances, and at least min_images_matched images must match.

For ExecuTorch artifacts with raw outputs a BundledProgram (`<stem>.bpte`: the program plus the
golden inputs and the float outputs as expected outputs) is written as well, for ExecuTorch's
C++ and Python runtimes; ExecuTorch's Android (Java/Kotlin) and iOS (Objective-C/Swift) APIs
cannot load one (no bundled-program entry points in extension/android or extension/apple), which
is why the apps use this folder.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .bench import machine_info
from .data import image_files, load_image
from .device import (
    GOLDEN_FORMAT,
    GOLDEN_VERSION,
    Drift,
    GoldenError,
    Tolerances,
    golden_json,
    parse_golden,
)
from .fileio import atomic_directory, atomic_write, remove_path, sha256_file, write_json_atomic
from .runtime import Predictor, Runner, check_sidecar
from .runtime._base import quiet_native_stderr
from .sidecar import Sidecar, golden_path, load_sidecar, to_sidecar
from .targets import target_for_path
from .targets.artifacts import load_runner
from .validate import BOX_TOL_PX, SCORE_TOL, detections_match

MANIFEST = "golden.json"
DriftResult = Drift  # what compare returns: the very type a device result carries as its "drift"


def bundled_program_path(artifact: str | os.PathLike) -> Path:
    path = Path(artifact)
    return path.with_name(path.name.split(".")[0] + ".bpte")


def golden_image_paths(data: str | os.PathLike, split: str, num_images: int) -> list[Path]:
    """The first num_images images (by name) of a dataset root's images/<split>/, or of a folder."""
    root = Path(data)
    folder = root / "images" / split
    paths = image_files([folder if folder.is_dir() else root])
    return paths[:num_images]


def tolerances(precision: str, host: DriftResult | None, images: int) -> Tolerances:
    """fp32: tight, as validate's match; fp16 and int8 differ from float by design, so their
    bounds come from what this machine's runtime measured on the same inputs, with a margin for
    another CPU's kernels (and for fp16, which does not run here, from fp16's resolution)."""
    if precision == "fp32":
        matched = host.detections_matched if host else images
        return Tolerances(
            rtol=1e-3,
            atol=1e-3,
            score_tol=SCORE_TOL,
            box_tol_px=BOX_TOL_PX,
            min_images_matched=matched,
            why="fp32: another CPU's kernels differ by rounding only; validate's match tolerances",
        )
    if precision == "int8":
        # requantization may round one step differently on ARM: 1.5x the host's raw difference
        atol = 1.5 * host.max_abs_diff_raw if host and host.max_abs_diff_raw is not None else 0.0
        matched = max(0, host.detections_matched - math.ceil(images / 4)) if host else 0
        return Tolerances(
            rtol=0.0,
            atol=float(atol),
            score_tol=0.05,
            box_tol_px=4.0,
            min_images_matched=matched,
            why="int8: 1.5x this machine's raw difference from float; detections within score 0.05 "
            "and 4 px, on all but a quarter of the images this machine matched",
        )
    # fp16 (Core ML: does not run here); about 11 bits of mantissa through ~70 layers
    return Tolerances(
        rtol=1e-2,
        atol=5e-2,
        score_tol=0.02,
        box_tol_px=2.0,
        min_images_matched=math.ceil(images / 2),
        why="fp16: not measured here (Core ML runs on macOS/iOS only); set from fp16's resolution",
    )


# -- writing ---------------------------------------------------------------------------------------


def _write_f32(path: Path, t) -> None:
    np.ascontiguousarray(np.asarray(t, dtype="<f4")).tofile(path)


def _input_for(
    detector, sidecar: Sidecar, image: torch.Tensor
) -> tuple[torch.Tensor, np.ndarray, str]:
    """-> (the float model's input, the artifact's input as stored, its file suffix). Image inputs
    get the image already resized to the model's size (uint8), so the runtime resizes nothing and
    the float model sees the very same pixels."""
    if sidecar.input.dtype == "uint8":
        pixels = detector.pixels([image])[0]  # the host step, HWC
        return detector.preprocess([pixels.permute(2, 0, 1)]), pixels.numpy(), "u8"
    x = detector.preprocess([image])
    stored = x.permute(0, 2, 3, 1) if sidecar.input.layout == "NHWC" else x
    return x, stored.numpy(), "f32"


@torch.no_grad()
def attach_golden(
    detector,
    artifact: str | os.PathLike,
    image_paths: Sequence[str | os.PathLike],
    *,
    threads: int = 2,
    bundled_program: bool = True,
) -> Path:
    """Write `<stem>.golden/` beside the artifact (atomically; a BundledProgram too, see the module
    docstring) from the float `detector` it was exported from. -> the manifest's path."""
    artifact = Path(artifact)
    if not image_paths:
        raise GoldenError("no images given for the golden data")
    stems = [Path(p).stem for p in image_paths]
    if len(set(stems)) != len(stems):  # the files are named after the images
        raise GoldenError(
            f"two golden images are named {next(s for s in stems if stems.count(s) > 1)!r}"
        )
    target = target_for_path(artifact)
    target.check_file(artifact)
    sidecar = load_sidecar(artifact)
    check_sidecar(artifact, sidecar, target.name)
    if sidecar.model != detector.spec.name:
        raise GoldenError(
            f"{artifact} was exported from {sidecar.model!r}, not {detector.spec.name!r}"
        )
    detector = detector.eval()
    raw = not sidecar.nms.in_graph
    names = [o.name for o in sidecar.outputs]
    final = golden_path(artifact)
    bpte = bundled_program_path(artifact)
    with atomic_directory(final) as out:
        entries, inputs, float_raw = [], [], []
        for path in map(Path, image_paths):
            image = load_image(path)
            stem = path.stem
            x, stored, kind = _input_for(detector, sidecar, image)
            _write_f32(
                out / f"{stem}.input.f32", stored
            ) if kind == "f32" else np.ascontiguousarray(stored, dtype=np.uint8).tofile(
                out / f"{stem}.input.u8"
            )
            box_encodings, class_logits = detector.forward_core(x)
            boxes, scores = detector.decode(box_encodings, class_logits)
            h, w = image.shape[-2:]
            det = detector.nms(boxes, scores, [(h, w)])[0]
            entry = {
                "image": path.name,
                "width": int(w),
                "height": int(h),
                "input": f"{stem}.input.{kind}",
                "float_outputs": None,
                "detections": {
                    "count": len(det["scores"]),
                    "boxes": (det["boxes"] / torch.tensor([w, h, w, h])).double().tolist(),
                    "scores": det["scores"].double().tolist(),
                    "labels": det["labels"].tolist(),
                },
            }
            if raw:
                by_name = {"box_encodings": box_encodings, "class_logits": class_logits}
                entry["float_outputs"] = []
                for name in names:
                    _write_f32(out / f"{stem}.{name}.f32", by_name[name])
                    entry["float_outputs"].append(f"{stem}.{name}.f32")
                float_raw.append([by_name[n] for n in names])
            inputs.append(torch.from_numpy(np.array(stored)))
            entries.append(entry)
        manifest = {
            "format": GOLDEN_FORMAT,
            "version": GOLDEN_VERSION,
            "ssdmobile_version": __version__,
            "artifact": artifact.name,
            "artifact_sha256": sidecar.artifact_sha256 or sha256_file(artifact),
            "model": sidecar.model,
            "target": sidecar.target,
            "precision": sidecar.precision,
            "nms_in_graph": not raw,
            "float_weights": (detector.weights.to_dict() if detector.weights else None),
            "input": sidecar.input.model_dump(include={"name", "shape", "layout", "dtype"}),
            "outputs": [o.model_dump(include={"name", "shape", "dtype"}) for o in sidecar.outputs],
            "max_detections": sidecar.nms.max_detections,
            "images": entries,
        }
        host = None
        if target.runs_here():
            runner = load_runner(artifact, threads=threads)
            outputs = [[t.numpy() for t in runner.run(x)] for x in inputs]
            # measured first with the precision's detection tolerances and no raw bound, then
            # checked again with the tolerances derived from it (the manifest records that check)
            measured = compare(
                manifest, sidecar, outputs, out, tolerances(sidecar.precision, None, len(entries))
            )
            tol = tolerances(sidecar.precision, measured, len(entries))
            host = compare(manifest, sidecar, outputs, out, tol)
        else:
            tol = tolerances(sidecar.precision, None, len(entries))
        manifest["tolerances"] = tol.to_dict()
        manifest["host"] = (
            None
            if host is None
            else {
                **host.to_dict(),
                "runtime": sidecar.runtime or target.name,
                "machine": machine_info()["cpu"],
            }
        )
        manifest["bundled_program"] = None
        if bundled_program and target.name == "executorch" and raw:
            batched = [x if x.dim() == 4 else x[None] for x in inputs]  # uint8 HWC: add N
            write_bundled_program(artifact, batched, float_raw, bpte)
            manifest["bundled_program"] = {
                "file": bpte.name,
                "rtol": tol.rtol,
                "atol": tol.atol,
                "test_cases": len(inputs),
            }
        try:
            # validated: a manifest the apps could not read is never written
            text = golden_json(manifest)
            atomic_write(out / MANIFEST, lambda tmp: Path(tmp).write_text(text))
        except BaseException:
            remove_path(bpte)
            raise
    return final / MANIFEST


def write_bundled_program(
    pte: Path,
    inputs: Sequence[torch.Tensor],
    expected: Sequence[Sequence[torch.Tensor]],
    path: Path,
) -> Path:
    """ExecuTorch's BundledProgram: the .pte with test cases (inputs, expected outputs) for its
    forward method, serialized to `path` (atomically)."""
    # lazy: heavy optional runtime (executorch devtools), only when
    # golden data is attached to a .pte
    from executorch.devtools import BundledProgram
    from executorch.devtools.bundled_program.config import MethodTestCase, MethodTestSuite
    from executorch.devtools.bundled_program.serialize import (
        serialize_from_bundled_program_to_flatbuffer,
    )

    cases = [
        MethodTestCase(inputs=[x.contiguous()], expected_outputs=tuple(t.contiguous() for t in out))
        for x, out in zip(inputs, expected)
    ]
    program = BundledProgram(None, [MethodTestSuite("forward", cases)], pte_file_path=str(pte))
    data = serialize_from_bundled_program_to_flatbuffer(program)
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def verify_bundled_program(path: str | os.PathLike, rtol: float, atol: float) -> list[bool]:
    """Run each test case of a .bpte with ExecuTorch's Python runtime and verify its outputs with
    ExecuTorch's own check (|expected - output| <= atol + rtol * |output|). -> passed, per case."""
    # lazy: heavy optional runtime (executorch), only when a .bpte is verified
    from executorch.devtools.bundled_program.serialize import (
        deserialize_from_flatbuffer_to_bundled_program,
    )
    from executorch.extension.pybindings.portable_lib import _load_bundled_program_from_buffer

    data = Path(path).read_bytes()
    cases = len(
        deserialize_from_flatbuffer_to_bundled_program(data).method_test_suites[0].test_cases
    )
    bundle = _load_bundled_program_from_buffer(data)
    passed = []
    for i in range(cases):
        with quiet_native_stderr():  # a mismatch is also logged by the C++ side; the result says it
            try:
                bundle.verify_result_with_bundled_expected_output("forward", i, rtol, atol)
                passed.append(True)
            except RuntimeError:  # "Result verification failed with status 32" (a mismatch)
                passed.append(False)
    return passed


# -- reading and comparing -------------------------------------------------------------------------


def read_golden(artifact_or_dir: str | os.PathLike) -> tuple[dict, Path]:
    """-> (the manifest, its folder), from an artifact or its .golden folder."""
    p = Path(artifact_or_dir)
    folder = p if p.suffix == ".golden" or (p / MANIFEST).is_file() else golden_path(p)
    if not (folder / MANIFEST).is_file():
        raise GoldenError(
            f"no golden data at {folder} (attach it with `ssdmobile export ... --golden N`)"
        )
    text = (folder / MANIFEST).read_text(errors="replace")
    if f'"{GOLDEN_FORMAT}"' not in text:
        raise GoldenError(
            f'{folder / MANIFEST}: not ssdmobile golden data (no "format": "{GOLDEN_FORMAT}")'
        )
    return parse_golden(text, str(folder / MANIFEST)).to_dict(), folder


def read_inputs(manifest: dict, folder: Path) -> list[torch.Tensor]:
    """The stored inputs, shaped as the artifact takes them."""
    out = []
    for e in manifest["images"]:
        if e["input"].endswith(".u8"):
            h, w = (
                manifest["input"]["shape"][2:]
                if manifest["input"]["layout"] != "NHWC"
                else manifest["input"]["shape"][1:3]
            )
            out.append(
                torch.from_numpy(np.fromfile(folder / e["input"], dtype=np.uint8).reshape(h, w, 3))
            )
        else:
            out.append(
                torch.from_numpy(
                    np.fromfile(folder / e["input"], dtype="<f4").reshape(
                        manifest["input"]["shape"]
                    )
                )
            )
    return out


def run_on_host(artifact: str | os.PathLike, threads: int = 2) -> list[list[np.ndarray]]:
    """The artifact run by this machine's runtime on its golden inputs: outputs as the apps hold
    them (flat float32 arrays in the sidecar's order; integer outputs converted)."""
    manifest, folder = read_golden(artifact)
    runner = load_runner(artifact, threads=threads)
    return [
        [t.float().numpy().reshape(-1) for t in runner.run(x)]
        for x in read_inputs(manifest, folder)
    ]


def _detections(predictor: Predictor, outputs: list[np.ndarray], size: tuple[int, int]) -> dict:
    shaped = [
        torch.from_numpy(np.asarray(o, dtype=np.float32).reshape(spec.shape))
        for o, spec in zip(outputs, predictor.runner.sidecar.outputs)
    ]
    return predictor.detections(shaped, [size])[0]


def raw_difference(float_values, device_values, rtol: float, atol: float) -> tuple[float, bool]:
    """The raw-output rule, on one output's values (flat; the device's as the apps hold them,
    float32): -> (the largest |device - float|, whether every value passes). In double, as
    BundledProgram's check and the apps' comparators: a value passes when |device - float| <= atol +
    rtol * |device|; a non-finite difference fails and is left out of the largest
    (0.0 when none is finite)."""
    got = np.asarray(device_values, dtype=np.float64).reshape(-1)
    want = np.asarray(float_values, dtype=np.float64).reshape(-1)
    diff = np.abs(got - want)
    finite = np.isfinite(diff)
    max_diff = float(diff[finite].max()) if finite.any() else 0.0
    return max_diff, bool(finite.all() and (diff <= atol + np.abs(rtol * got)).all())


def verdict(
    non_finite: int, raw_within: bool | None, matched: int, min_images_matched: int
) -> bool:
    """The drift check passes when no device output is NaN or infinite, the raw outputs are within
    tolerance (None: NMS in the graph, no raw outputs to compare) and at least min_images_matched
    images' detections match (an image with a non-finite output never counts as matched)."""
    return non_finite == 0 and raw_within is not False and matched >= min_images_matched


def compare(
    manifest: dict,
    sidecar: Sidecar | dict,
    outputs: Sequence[Sequence[np.ndarray]],
    folder: Path,
    tol: Tolerances | None = None,
) -> DriftResult:
    """The drift check on `outputs` (per image, the artifact's outputs in sidecar order, as flat
    float32 arrays), against the float model's in the golden folder: the same rule as the apps'."""
    tol = tol or Tolerances(**manifest["tolerances"])
    images = manifest["images"]
    if len(outputs) != len(images):
        raise GoldenError(f"{len(outputs)} output sets for {len(images)} golden images")
    # decode / NMS exactly as the Python runtime does, from the artifact's own sidecar
    sidecar = to_sidecar(sidecar)
    predictor = Predictor(Runner(Path(sidecar.artifact), sidecar))
    raw = not manifest["nms_in_graph"]
    max_diff, within, non_finite, matched = 0.0, True, 0, 0
    for entry, outs in zip(images, outputs):
        outs = [np.asarray(o, dtype=np.float32).reshape(-1) for o in outs]
        non_finite += sum(int((~np.isfinite(o)).sum()) for o in outs)
        if raw:
            for got, name in zip(outs, entry["float_outputs"]):
                want = np.fromfile(folder / name, dtype="<f4")
                if got.shape != want.shape:
                    raise GoldenError(
                        f"{entry['image']}: an output has {got.size} values, "
                        f"the float one {want.size}"
                    )
                diff, ok = raw_difference(want, got, tol.rtol, tol.atol)
                max_diff, within = max(max_diff, diff), within and ok
        h, w = entry["height"], entry["width"]
        scale = torch.tensor([w, h, w, h], dtype=torch.float32)
        d = entry["detections"]
        ref = {
            "boxes": torch.tensor(d["boxes"], dtype=torch.float32).reshape(-1, 4) * scale,
            "scores": torch.tensor(d["scores"], dtype=torch.float32),
            "labels": torch.tensor(d["labels"]).long(),
        }
        got = (
            _detections(predictor, outs, (h, w))
            if all(np.isfinite(o).all() for o in outs)
            else None
        )
        matched += got is not None and detections_match(
            ref, got, manifest["max_detections"], tol.box_tol_px, tol.score_tol
        )
    raw_ok = within if raw else None
    passed = verdict(non_finite, raw_ok, matched, tol.min_images_matched)
    return DriftResult(
        images=len(images),
        max_abs_diff_raw=max_diff if raw else None,
        raw_within_tolerance=raw_ok,
        non_finite=non_finite,
        detections_matched=matched,
        min_images_matched=tol.min_images_matched,
        passed=passed,
    )


def save_outputs(
    outputs: Sequence[Sequence[np.ndarray]], manifest: dict, out_dir: str | os.PathLike
) -> Path:
    """Outputs in the apps' form, for the apps' comparator tests: per image and output, a flat
    float32 little-endian file, listed in outputs.json (atomically, as one folder)."""
    final = Path(out_dir)
    with atomic_directory(final) as out:
        listing = []
        for entry, outs in zip(manifest["images"], outputs):
            stem = Path(entry["image"]).stem
            files = []
            for k, o in enumerate(outs):
                _write_f32(out / f"{stem}.out{k}.f32", np.asarray(o, dtype=np.float32).reshape(-1))
                files.append(f"{stem}.out{k}.f32")
            listing.append({"image": entry["image"], "outputs": files})
        write_json_atomic(
            out / "outputs.json", {"artifact": manifest["artifact"], "images": listing}
        )
    return final / "outputs.json"
