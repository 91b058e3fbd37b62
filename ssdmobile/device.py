"""The files the host and the sample apps exchange besides the sidecar, typed (pydantic, strict,
unknown fields refused, as ssdmobile.sidecar). These models are the one source of each format:
`python -m ssdmobile.schema` generates the apps' Kotlin and Swift types from them.

- golden data (host -> app): `<stem>.golden/golden.json` (ArtifactGolden), written by
  ssdmobile.drift when `ssdmobile export --golden N` attaches real inputs and the float model's
  outputs to an artifact; the apps' drift checks (DriftCheck.kt, SSDMobileKit's DriftCheck.swift)
  read it;
- reference data (host -> the apps' tests): `reference.json` (ReferenceData), written by
  `ssdmobile golden`: the Python reference on real images, which the apps' own preprocessing,
  decode and NMS are tested against;
- device results (app -> host): one JSON object per run of a benchmark screen (DeviceResult).
  The Android app logs it as one logcat line (tag SSDMobileBench) and saves it as a file, the iOS
  app saves a file to share; this module reads it, strictly, from a pulled file, a shared file, or
  saved `adb logcat -s SSDMobileBench` text, for `ssdmobile device-report`. A field is added here
  (and the version bumped when one changes meaning), then the apps' types regenerated.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import SSDMobileError
from .fileio import read_tagged_json

FORMAT = "ssdmobile-device-result"
VERSION = 1
LOG_TAG = "SSDMobileBench"

Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Ms = Annotated[float, Field(ge=0)]


class DeviceResultError(SSDMobileError):
    pass


class GoldenError(SSDMobileError):
    pass


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")


def _first_error(e: ValidationError) -> str:
    x = e.errors(include_url=False)[0]
    where = ".".join(str(p) for p in x["loc"]) or "(top level)"
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return f"{where}: {x['msg'].lower()}{more}"


# -- golden data (host -> app) ---------------------------------------------------------------------

GOLDEN_FORMAT = "ssdmobile-artifact-golden"
GOLDEN_VERSION = 1


class GoldenInput(_Model):
    name: str
    shape: Annotated[list[int], Field(min_length=4, max_length=4)]
    layout: Literal["NCHW", "NHWC", "image_RGB"]
    dtype: Literal["float32", "uint8"]
    """float32: the stored input is the tensor itself; uint8: an RGB image already at the model's size."""  # noqa: E501


class GoldenOutput(_Model):
    name: str
    shape: list[int]
    dtype: str


class GoldenDetections(_Model):
    count: int = Field(ge=0)
    boxes: list[Annotated[list[float], Field(min_length=4, max_length=4)]]
    """Normalized x1, y1, x2, y2."""
    scores: list[float]
    labels: list[int]


class GoldenImage(_Model):
    image: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    input: str
    """File of the input, beside golden.json (.f32: float32 little-endian; .u8: uint8 RGB [H, W, 3])."""  # noqa: E501
    float_outputs: list[str] | None
    """Files of the float model's raw outputs, in the sidecar's output order; null with NMS in the graph."""  # noqa: E501
    detections: GoldenDetections
    """The float model's detections on the image."""


class Tolerances(_Model):
    rtol: float = Field(ge=0)
    atol: float = Field(ge=0)
    score_tol: float = Field(ge=0)
    box_tol_px: float = Field(ge=0)
    min_images_matched: int = Field(ge=0)
    why: str


class Drift(_Model):
    """What a drift check found (ssdmobile.drift.compare; the apps' DriftResult has the same fields):
    the golden data run through a runtime, against the float model."""  # noqa: E501

    images: int = Field(ge=1)
    max_abs_diff_raw: float | None
    """Largest |device - float| over the raw outputs; null with NMS in the graph."""
    raw_within_tolerance: bool | None
    non_finite: int = Field(ge=0)
    """NaN or infinite values in the device's outputs (each one fails the check)."""
    detections_matched: int = Field(ge=0)
    """Images whose detections match float (validate's rule, the golden tolerances)."""
    min_images_matched: int = Field(ge=0)
    passed: bool


class HostDrift(Drift):
    """The drift check run at export time by this machine's runtime on the same inputs."""

    runtime: str
    machine: str


class GoldenBundledProgram(_Model):
    file: str
    rtol: float
    atol: float
    test_cases: int = Field(ge=1)


class ArtifactGolden(_Model):
    """golden.json: the manifest of an artifact's golden data."""

    model_config = ConfigDict(title="ssdmobile artifact golden data")

    format: Literal["ssdmobile-artifact-golden"]
    version: Literal[1]
    ssdmobile_version: str
    artifact: str
    artifact_sha256: Sha256
    model: str
    target: str
    precision: Literal["fp32", "fp16", "int8"]
    nms_in_graph: bool
    float_weights: dict[str, str | None] | None
    """The float checkpoint (path, sha256) the golden outputs come from."""
    input: GoldenInput
    outputs: list[GoldenOutput]
    max_detections: int = Field(ge=1)
    images: Annotated[list[GoldenImage], Field(min_length=1)]
    tolerances: Tolerances
    host: HostDrift | None
    """Null where the artifact's runtime does not run on the exporting machine (Core ML on Linux)."""  # noqa: E501
    bundled_program: GoldenBundledProgram | None
    """ExecuTorch's BundledProgram (<stem>.bpte) of the same test cases, for ExecuTorch artifacts with raw outputs."""  # noqa: E501


def parse_golden(text: str, source: str) -> ArtifactGolden:
    try:
        return ArtifactGolden.model_validate_json(text)
    except ValidationError as e:
        raise GoldenError(
            f"{source}: not golden data of this ssdmobile: {_first_error(e)}"
        ) from None


def golden_json(manifest: dict | ArtifactGolden) -> str:
    """The manifest's JSON text, validated first (a manifest that would not read back is never
    written)."""
    text = json.dumps(
        manifest.to_dict() if isinstance(manifest, ArtifactGolden) else manifest, indent=1
    )
    return parse_golden(text, "golden data being written").model_dump_json(indent=1)


# -- reference data (host -> the apps' tests) ------------------------------------------------------

REFERENCE_FORMAT = "ssdmobile-reference"
REFERENCE_VERSION = 1
REFERENCE_MANIFEST = "reference.json"


class TensorFile(_Model):
    file: str
    """Beside reference.json, little-endian, C order."""
    shape: list[int]
    dtype: Literal["float32", "uint8"]


class ReferenceDetections(_Model):
    count: int = Field(ge=0)
    boxes: list[Annotated[list[float], Field(min_length=4, max_length=4)]]
    """Normalized x1, y1, x2, y2."""
    scores: list[float]
    labels: list[int]
    boxes_pixels: list[Annotated[list[float], Field(min_length=4, max_length=4)]]
    """The boxes in the source image's pixels (x * width, y * height)."""


class ReferenceImage(_Model):
    image: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    rgb: TensorFile
    """The decoded image, uint8 [H, W, 3] RGB."""
    input: TensorFile
    """The core input the reference preprocessing makes of it, in the model's layout."""
    box_encodings: TensorFile
    class_logits: TensorFile
    detections: ReferenceDetections
    """What Detector.decode + ops.boxes.nms_per_class make of the raw outputs."""


class ReferenceData(_Model):
    """reference.json: the Python reference run on real images (`ssdmobile golden`), which the apps'
    own preprocessing, decode and NMS are tested against."""

    model_config = ConfigDict(title="ssdmobile reference data")

    format: Literal["ssdmobile-reference"]
    version: Literal[1]
    model: str
    weights: str
    logit_scale: float
    sidecar: str
    """The sidecar file beside reference.json (target "reference", NMS not in the graph)."""
    images: Annotated[list[ReferenceImage], Field(min_length=1)]


# -- device results (app -> host) ------------------------------------------------------------------


class Device(_Model):
    name: str
    """Manufacturer and model (Android Build.MANUFACTURER + MODEL; iOS hw.machine, e.g. iPhone15,2)."""  # noqa: E501
    soc: str
    """Build.SOC_MODEL on Android 12+, "unknown" before; the machine identifier's chip on iOS."""
    os: str


class Runtime(_Model):
    name: str
    """ExecuTorch (Android) or Core ML (iOS)."""
    version: str
    """The ExecuTorch AAR version the app was built with; on iOS the OS version (Core ML ships with it)."""  # noqa: E501
    threads: int = Field(ge=0)
    """Threads asked of the runtime; 0 = the runtime's default (Core ML decides its own)."""
    backend: str
    """XNNPACK delegate (Android); compute units on iOS (all = CPU, GPU, Neural Engine)."""


class Stat(_Model):
    median: Ms
    p90: Ms


class Latency(_Model):
    forward: Stat
    """The artifact alone on a fixed preprocessed input (Core ML: the pipeline, NMS included)."""
    postprocess: Stat
    """Decode + NMS in the app, or reading the graph's NMS rows."""
    end_to_end: Stat
    """Preprocess a fixed 640x480 frame + forward + post-processing (iOS: the Vision request)."""


class DeviceResult(_Model):
    """One run of a sample app's benchmark screen."""

    model_config = ConfigDict(title="ssdmobile device result")

    format: Literal["ssdmobile-device-result"]
    version: Literal[1]
    app: Literal["android", "ios"]
    artifact: str
    artifact_sha256: Sha256
    """Android: of the .pte file the app loaded; iOS: the sidecar's (the app runs the compiled form)."""  # noqa: E501
    model: str
    precision: Literal["fp32", "fp16", "int8"]
    nms_in_graph: bool
    device: Device
    runtime: Runtime
    warmup: int = Field(ge=0)
    runs: int = Field(ge=1)
    latency_ms: Latency
    drift: Drift | None
    """Null when the app had no golden data for the artifact."""
    time: str
    """When the run finished, ISO 8601 UTC."""


def result_key(d: dict) -> tuple:
    """Two copies of one run (a file and the logcat line of the same run) are one result."""
    return (d["artifact_sha256"], d["device"]["name"], d["time"], d["runs"])


def _parse_object(text: str, source: str) -> DeviceResult:
    try:
        return DeviceResult.model_validate_json(text)
    except ValidationError as e:
        raise DeviceResultError(
            f"{source}: not a device result of this ssdmobile: {_first_error(e)}"
        ) from None


def parse_text(text: str, source: str) -> list[DeviceResult]:
    """A result file (one JSON object) or log text (logcat lines, one result object per line,
    other lines ignored)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        read_tagged_json(stripped, source, FORMAT, "device result", DeviceResultError)
        return [_parse_object(stripped, source)]
    found = []
    for n, line in enumerate(text.splitlines(), start=1):
        start = line.find("{")
        if start < 0 or FORMAT not in line:
            continue
        found.append(_parse_object(line[start:].strip(), f"{source}:{n}"))
    if not found:
        raise DeviceResultError(
            f"{source}: no ssdmobile device result in it (expected the JSON file an app "
            f"saved, or `adb logcat -s {LOG_TAG}` output)"
        )
    return found


def read_results(path: str | os.PathLike) -> list[DeviceResult]:
    path = Path(path)
    if not path.is_file():
        raise DeviceResultError(f"device result not found: {path}")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise DeviceResultError(
            f"{path}: not text (expected a JSON result file or logcat output)"
        ) from None
    return parse_text(text, str(path))
