"""The sidecar JSON written next to every artifact (`<artifact stem>.json`).

Apps and runtimes read only this file, never hard-coded constants: input shape/layout/dtype,
preprocessing, class names, output names and layout, anchors and box coder (for apps that decode
themselves), whether NMS is in the graph and its thresholds, precision and quantization scheme,
checkpoint provenance, and the measured AP and drift once `validate` has run.

The file is described by the pydantic models below, its one source: `python -m ssdmobile.schema`
generates from them the published JSON Schema (`ssdmobile/schema/sidecar.schema.json`), the
Android module's Kotlin data classes and the iOS SSDMobileKit's Swift structs, with their
decoders. Python validates on every write (`build_sidecar`, `write_sidecar`) and read
(`load_sidecar`), always on the JSON text itself, in strict mode: a "1" is not an
integer and a float is not an int, as in the schema and the apps' parsers.

Which fields are required: whatever an app or runtime needs is required, and a value that may be
null (a box coder without clamp, no per-class cap) is required-but-nullable, never absent, so a
reader can tell "none" from "an old writer forgot it". Fields only some targets write (opset,
coreml, runtime, artifact_sha256) are optional. Unknown fields are refused: adding one means
adding it here and regenerating the schema; the apps ignore fields they do not map.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import __version__
from .errors import SSDMobileError
from .fileio import read_tagged_json, write_json_atomic
from .spec import (
    BoxCoder as SpecBoxCoder,
    ModelSpec,
    Postprocess as SpecPostprocess,
    Preprocess as SpecPreprocess,
)

FORMAT = "ssdmobile-sidecar"
# Bumped when a field is removed or changes meaning or type (apps refuse a newer version with
# "update the app"). 2: the model's settings are stored once
# (preprocess, decode, nms), no `spec` copy.
SCHEMA_VERSION = 2


class SidecarError(SSDMobileError):
    pass


# JSON arrays of exactly n items
Ints2 = Annotated[list[int], Field(min_length=2, max_length=2)]
Ints4 = Annotated[list[int], Field(min_length=4, max_length=4)]
Floats3 = Annotated[list[float], Field(min_length=3, max_length=3)]
Floats4 = Annotated[list[float], Field(min_length=4, max_length=4)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


class Input(_Model):
    name: str
    shape: Ints4
    """[N, C, H, W] for NCHW, [N, H, W, C] for NHWC."""
    layout: Literal["NCHW", "NHWC", "image_RGB"]
    """A tensor layout, or image_RGB for Core ML image inputs."""
    dtype: Literal["float32", "uint8"]
    """float32: the app normalizes; uint8: normalization is in the graph."""
    color: Literal["RGB"]


class Preprocess(_Model):
    """x = (pixel / 255 - mean) / std, the whole image resized to size (H, W) with `resize`."""

    size: Ints2
    resize: Literal["bilinear", "tf1_bilinear"]
    """bilinear: half-pixel (torch align_corners=False); tf1_bilinear: TF1 ResizeBilinear."""
    mean: Floats3
    std: Floats3
    input_range: Ints2
    in_graph: bool


class Output(_Model):
    name: str
    shape: list[int]
    """-1 for a dimension only known at run time (Core ML's detections)."""
    dtype: Literal["float32", "float16", "int32", "int64"]
    meaning: str


class BoxCoder(_Model):
    weights: Floats4
    order: Literal["xywh", "yxhw"]
    """xywh = (dx, dy, dw, dh) as torchvision; yxhw = (ty, tx, th, tw) as TensorFlow."""
    clamp: float | None
    """Upper bound for dw/dh before exp; null = none."""


class Decode(_Model):
    anchor_format: Literal["cxcywh_normalized"]
    anchors: list[Floats4]
    box_coder: BoxCoder
    box_format: Literal["xyxy_normalized"]
    score: Literal["softmax", "sigmoid"]


class Nms(_Model):
    in_graph: bool
    """True: the outputs are final detections; false: the app decodes and runs NMS itself."""
    iou_thresh: float
    score_thresh: float
    topk_candidates: int | None
    """Per class, before NMS; null = all."""
    max_per_class: int | None
    """Per class, after NMS; null = no cap."""
    max_detections: int


class Calibration(_Model):
    data: str
    split: str
    num_images: int


class Quantization(_Model):
    """How an int8 artifact was made. The scheme strings are for people (each target's tool says
    it its own way); the optional fields are what one method records and another has not."""

    dtype: Literal["int8"]
    weights: str
    activations: str
    method: str
    observer: str | None = None
    engine: str | None = None
    float_modules: list[str] | None = None
    float_nodes: list[str] | None = None
    ort_calibrate_method: str | None = None
    format: str | None = None
    """The int8 format asked for: ONNX qdq, qdq-u8s8, qoperator-u8s8 (ssdmobile.quant.onnx_int8.FORMATS); Core ML w8a16, w8a8 (ssdmobile.quant.coreml_int8.FORMATS)."""  # noqa: E501
    notes: str | None = None
    """For people: where the int8 arithmetic runs fast (Core ML W8A8: which Apple Neural Engines compute int8 x int8)."""  # noqa: E501
    reduce_range: bool | None = None
    """ONNX: 7-bit weights (onnxruntime's reduce_range, against int16 saturation on x86 without VNNI)."""  # noqa: E501
    calibration: Calibration | None = None
    training: dict[str, Any] | None = None
    """QAT: the recipe's settings. An open map on purpose: it follows the recipe, not the apps."""


class Checkpoint(_Model):
    """Where the weights came from: an exported checkpoint (path, sha256) or, for golden files,
    how they were made (weights)."""

    path: str | None = None
    sha256: Sha256 | None = None
    weights: str | None = None


class Latency(_Model):
    median: float
    p90: float
    threads: int
    runs: int


class Metrics(_Model):
    """What `ssdmobile validate` measured for this artifact."""

    ap: float
    ap_eager: float
    delta_ap: float
    max_abs_diff_raw: float | None
    """Largest raw-output difference from eager; null with NMS in the graph."""
    detections_match: Annotated[str, Field(pattern=r"^\d+/\d+$")]
    images: int
    classes: list[str]
    latency_ms: Latency
    machine: dict[str, Any]
    """bench.machine_info(): a free-form description of the host, for people; never parsed."""


class CoreMLNms(_Model):
    per_class: bool
    max_detections: int | None


class CoreML(_Model):
    input: Literal["image"]
    image_resize: str
    normalize_in_graph: bool
    pipeline: bool
    nms: CoreMLNms | None


class Delegation(_Model):
    """How much of an ExecuTorch program the XNNPACK partitioner took (ExecuTorch devtools'
    delegation info); the rest runs on ExecuTorch's portable kernels."""

    delegated_ops: int
    non_delegated_ops: int
    delegated_subgraphs: int
    non_delegated_by_op: dict[str, int]


class PixelInput(_Model):
    """A program that takes camera bytes (input dtype uint8, NHWC): where the normalization went."""

    folded_into_first_conv: bool
    """true: (pixel / 255 - mean) / std is in the first convolution's weights and bias; false: it
    stays a per-channel multiply-add in the graph."""
    first_conv: str | None = None
    """The folded convolution's module name."""
    steps: list[str]
    """What the program does to the pixels before the first convolution, in order."""


class ExecuTorch(_Model):
    delegation: Delegation
    pixel_input: PixelInput | None = None
    """uint8 NHWC input only (export --input uint8)."""


class OrtMobileEP(_Model):
    """One execution provider in ONNX Runtime's mobile usability check: the partitions its
    supported-op list splits the graph into (BASIC-optimized, as the tool checks it)."""

    verdict: Literal["YES", "MAYBE", "NO"]
    """The tool's "model should perform well with <EP> as is" (YES: one partition, > 75% of nodes)."""  # noqa: E501
    partitions: int
    supported_nodes: int
    nodes: int
    partition_sizes: list[int]
    unsupported_ops: list[str]
    """domain:op, as the tool names them."""
    unsupported_rank_ops: list[str]


class OrtMobile(_Model):
    """onnxruntime.tools.check_onnx_model_mobile_usability's findings on an ONNX graph (for a .ort
    file: on the ONNX graph it was converted from, at the same BASIC optimization level)."""

    checker: str
    """The onnxruntime version whose checker made this record."""
    nnapi: OrtMobileEP
    coreml_neuralnetwork: OrtMobileEP
    coreml_mlprogram: OrtMobileEP


class Sidecar(_Model):
    """The sidecar JSON of one ssdmobile artifact."""

    model_config = ConfigDict(title="ssdmobile sidecar")

    format: Literal["ssdmobile-sidecar"]
    schema_version: Literal[2]
    ssdmobile_version: str
    model: str
    target: str
    """An export target (torchscript, onnx, coreml, executorch), or reference for golden files."""
    precision: Literal["fp32", "fp16", "int8"]
    artifact: str
    """The artifact's file name, beside this file (empty for golden files)."""
    input: Input
    preprocess: Preprocess
    class_names: Annotated[list[str], Field(min_length=1)]
    """Index = label id; index 0 is the background."""
    background_class: Literal[0]
    outputs: list[Output]
    """In the artifact's output order."""
    decode: Decode
    nms: Nms
    quantization: Quantization | None
    checkpoint: Checkpoint | None
    metrics: Metrics | None
    """Null until `ssdmobile validate` has measured the artifact."""
    # written by the exporters, not by every writer (golden files, hand-made test sidecars)
    artifact_sha256: Sha256 | None = None
    runtime: str | None = None
    """What loads the artifact, for people."""
    opset: int | None = None
    """ONNX only."""
    coreml: CoreML | None = None
    """Core ML only: how the image input and the NMS pipeline are set up."""
    executorch: ExecuTorch | None = None
    """ExecuTorch only: what XNNPACK runs."""
    ort_mobile: OrtMobile | None = None
    """ONNX and ORT format only: ONNX Runtime's mobile usability verdict (NNAPI, Core ML EPs)."""

    def to_dict(self) -> dict:
        """The JSON object, with exactly the fields that were set (an optional field left out
        stays out, a null stays null)."""
        return self.model_dump(mode="json", exclude_unset=True)

    def replaced(self, **fields) -> Sidecar:
        """A copy with `fields` replaced (values as the JSON has them: dicts for objects), the
        result validated whole."""
        return to_sidecar({**self.to_dict(), **fields}, f"sidecar of {self.artifact}")

    def model_spec(self) -> ModelSpec:
        """The ModelSpec the artifact was exported with, from the one place the sidecar keeps it
        (what the Python runtime rebuilds the Detector around the artifact from)."""
        p, n, bc = self.preprocess, self.nms, self.decode.box_coder
        return ModelSpec(
            name=self.model,
            preprocess=SpecPreprocess(
                size=tuple(p.size), resize=p.resize, mean=tuple(p.mean), std=tuple(p.std)
            ),
            class_names=tuple(self.class_names),
            box_coder=SpecBoxCoder(weights=tuple(bc.weights), order=bc.order, clamp=bc.clamp),
            postprocess=SpecPostprocess(
                score=self.decode.score,
                score_thresh=n.score_thresh,
                iou_thresh=n.iou_thresh,
                topk_candidates=n.topk_candidates,
                max_per_class=n.max_per_class,
                max_detections=n.max_detections,
            ),
        )


def _required_paths(model: type[BaseModel], prefix: str = "") -> tuple[str, ...]:
    out = []
    for name, f in model.model_fields.items():
        if not f.is_required():
            continue
        out.append(prefix + name)
        if isinstance(f.annotation, type) and issubclass(
            f.annotation, BaseModel
        ):  # non-nullable object
            out.extend(_required_paths(f.annotation, f"{prefix}{name}."))
    return tuple(out)


# Kept for callers that list fields: derived from the model, never maintained by hand.
REQUIRED_FIELDS = _required_paths(Sidecar)


def _where(loc: tuple) -> str:
    s = ""
    for part in loc:
        s += f"[{part}]" if isinstance(part, int) else f".{part}" if s else str(part)
    return s


def _explain(e: ValidationError, source: str) -> str:
    """One line naming the file and the first wrong field (missing fields all at once)."""
    errors = e.errors(include_url=False)
    missing = [_where(x["loc"]) for x in errors if x["type"] == "missing"]
    if missing:
        return f"{source}: sidecar lacks {', '.join(missing)}"
    x = errors[0]
    where = _where(x["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    if x["type"] == "extra_forbidden":
        return (
            f"{source}: unknown field {where} (not in sidecar schema_version "
            f"{SCHEMA_VERSION}){more}"
        )
    if x["type"] == "json_invalid":
        return f"{source}: not valid JSON ({x['msg']})"
    got = json.dumps(x.get("input"), default=str)
    got = got if len(got) <= 40 else got[:37] + "..."
    return f"{source}: {where}: {x['msg'].lower()}, got {got}{more}"


def _parse(text: str, source: str) -> Sidecar:
    d = read_tagged_json(text, source, FORMAT, "sidecar", SidecarError)
    version = d.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise SidecarError(
            f"{source}: schema_version {version} is newer than this ssdmobile understands "
            f"({SCHEMA_VERSION}); update ssdmobile"
        )
    if isinstance(version, int) and version < SCHEMA_VERSION:
        raise SidecarError(
            f"{source}: schema_version {version} was written by an older ssdmobile "
            f"(this one writes {SCHEMA_VERSION}); export the artifact again"
        )
    try:
        return Sidecar.model_validate_json(text)
    except ValidationError as e:
        raise SidecarError(_explain(e, source)) from None


def to_sidecar(d: dict | Sidecar, source: str = "sidecar") -> Sidecar:
    """Validate a sidecar dict (as its JSON text: tuples become arrays, as on disk)."""
    if isinstance(d, Sidecar):
        return d
    try:
        text = json.dumps(d)
    except (TypeError, ValueError) as e:
        raise SidecarError(f"{source}: not JSON-serializable ({e})") from None
    return _parse(text, source)


def sidecar_path(artifact: str | os.PathLike) -> Path:
    return Path(artifact).with_suffix(".json")


def golden_path(artifact: str | os.PathLike) -> Path:
    """The golden data of an artifact for the apps' drift check (ssdmobile.drift), beside it."""
    path = Path(artifact)
    return path.with_name(path.name.split(".")[0] + ".golden")


def build_sidecar(
    spec: ModelSpec,
    anchors,
    *,
    target: str,
    precision: str,
    artifact: str,
    input: Input,
    outputs: list[dict],
    nms_in_graph: bool,
    quantization: dict | None = None,
    checkpoint: dict | None = None,
    extra: dict | None = None,
) -> Sidecar:
    """The sidecar of an artifact of the model `spec` with these `anchors`: preprocessing, decode
    and NMS settings come from the spec, the rest from the exporter. outputs: [{"name", "shape",
    "dtype", "meaning"}] in the artifact's output order; extra: the target's optional fields
    (artifact_sha256, runtime, opset, coreml)."""
    p, pp, bc = spec.preprocess, spec.postprocess, spec.box_coder
    d = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "ssdmobile_version": __version__,
        "model": spec.name,
        "target": target,
        "precision": precision,
        "artifact": artifact,
        "input": input.model_dump(mode="json"),
        "preprocess": {
            "size": list(p.size),
            "resize": p.resize,
            "mean": list(p.mean),
            "std": list(p.std),
            "input_range": [0, 255],
            "in_graph": input.dtype == "uint8",
        },
        "class_names": list(spec.class_names),
        "background_class": 0,
        "outputs": outputs,
        "decode": {
            "anchor_format": "cxcywh_normalized",
            "anchors": [[round(float(v), 7) for v in a] for a in anchors.tolist()],
            "box_coder": {"weights": list(bc.weights), "order": bc.order, "clamp": bc.clamp},
            "box_format": "xyxy_normalized",
            "score": pp.score,
        },
        "nms": {
            "in_graph": nms_in_graph,
            "iou_thresh": pp.iou_thresh,
            "score_thresh": pp.score_thresh,
            "topk_candidates": pp.topk_candidates,
            "max_per_class": pp.max_per_class,
            "max_detections": pp.max_detections,
        },
        "quantization": quantization,
        "checkpoint": checkpoint,
        "metrics": None,
    }
    if extra:
        d.update(extra)
    return to_sidecar(d, f"sidecar of {artifact or spec.name}")


def write_sidecar(path: str | os.PathLike, sidecar: dict | Sidecar) -> Path:
    """Validate, then write atomically (a crash never leaves half a sidecar)."""
    path = Path(path)
    return write_json_atomic(path, to_sidecar(sidecar, str(path)).to_dict())


def load_sidecar(artifact_or_json: str | os.PathLike) -> Sidecar:
    """The typed sidecar of an artifact (or of the .json itself)."""
    path = Path(artifact_or_json)
    if path.suffix != ".json":
        path = sidecar_path(path)
    if not path.is_file():
        raise SidecarError(
            f"sidecar not found: {path} (every artifact needs the JSON that export wrote beside it)"
        )
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise SidecarError(f"{path}: not valid JSON ({e})") from None
    return _parse(text, str(path))
