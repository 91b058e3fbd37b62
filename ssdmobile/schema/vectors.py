"""The cross-language test vectors (tests/vectors/*.json): one folder of cases that Python, the
Kotlin module (android_demo/postprocess) and the Swift package (ios_demo/SSDMobileKit) each run.
Adding a case is adding one JSON entry; the runners never list cases by name.

Every file is a TestVectors object with one or more sections filled. Numbers are what the Python
reference computes (ssdmobile.ops.boxes, ssdmobile.validate.detections_match, ssdmobile.drift,
ssdmobile.bench, ssdmobile.visualize.preview_box); tests/test_vectors.py checks them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..sidecar import BoxCoder  # the sidecar's own: a vector's coder is what an app reads

FORMAT = "ssdmobile-test-vectors"
VERSION = 1

Floats4 = Annotated[list[float], Field(min_length=4, max_length=4)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True)


class DecodeCase(_Model):
    """Raw core outputs of a few anchors -> boxes and scores (ssdmobile.ops.boxes.decode_boxes, class_scores)."""  # noqa: E501

    name: str
    anchors: list[Floats4]
    """Normalized (cx, cy, w, h)."""
    box_encodings: list[Floats4]
    box_coder: BoxCoder
    class_logits: list[list[float]]
    """[A][C], column 0 background."""
    score: Literal["softmax", "sigmoid"]
    expected_boxes: list[Floats4]
    """Normalized (x1, y1, x2, y2), not clamped."""
    expected_scores: list[list[float]]
    tolerance: float


class VectorNms(_Model):
    iou_thresh: float
    score_thresh: float
    topk_candidates: int | None
    max_per_class: int | None
    max_detections: int


class VectorDetection(_Model):
    box: Floats4
    """(x1, y1, x2, y2): normalized in NMS cases, pixels in match cases."""
    score: float
    label: int


class NmsCase(_Model):
    """Decoded boxes and scores -> detections (ssdmobile.ops.boxes.nms_per_class)."""

    name: str
    boxes: list[Floats4]
    """[A] normalized (x1, y1, x2, y2), before clamping."""
    scores: list[list[float]]
    """[A][C], column 0 background."""
    config: VectorNms
    expected: list[VectorDetection]
    """In order (descending score); boxes clamped to [0, 1]."""
    tolerance: float


class MatchCase(_Model):
    """Two detection lists of one image (boxes in pixels) -> do they match (ssdmobile.validate.detections_match)."""  # noqa: E501

    name: str
    reference: list[VectorDetection]
    candidate: list[VectorDetection]
    max_detections: int
    box_tol_px: float
    score_tol: float
    expected: bool


class NonFinite(_Model):
    """A value JSON cannot hold, put into a device output after it is read."""

    output: int = Field(ge=0)
    index: int = Field(ge=0)
    value: Literal["nan", "inf", "-inf"]


class DriftImage(_Model):
    float_outputs: list[list[float]] | None
    """The float model's raw outputs; null with NMS in the graph."""
    device_outputs: list[list[float]]
    non_finite: list[NonFinite] = []
    detections_match: bool
    """What the matching rule (MatchCase) says for this image's detections, when its outputs are finite."""  # noqa: E501


class DriftExpected(_Model):
    max_abs_diff_raw: float | None
    raw_within_tolerance: bool | None
    non_finite: int
    detections_matched: int
    passed: bool


class DriftCase(_Model):
    """Outputs of a runtime against the float model's -> the drift verdict (ssdmobile.drift.compare's rule)."""  # noqa: E501

    name: str
    rtol: float
    atol: float
    min_images_matched: int
    images: list[DriftImage]
    expected: DriftExpected


class PreviewCase(_Model):
    """A normalized box -> view rectangle for an image shown with a scale mode (the apps' preview mapping)."""  # noqa: E501

    name: str
    box: Floats4
    src_width: int
    src_height: int
    view_width: int
    view_height: int
    mode: Literal["fill", "fit", "crop"]
    """fill: stretched; fit: uniform, letterboxed, centered; crop: uniform, covering, centered."""
    mirror: bool
    expected: Floats4
    """(left, top, right, bottom) in view pixels."""
    tolerance: float


class LatencyCase(_Model):
    """Timed runs -> median and p90 (ssdmobile.bench)."""

    name: str
    times_ms: Annotated[list[float], Field(min_length=1)]
    expected_median: float
    expected_p90: float


class TestVectors(_Model):
    """One file of tests/vectors/."""

    model_config = ConfigDict(title="ssdmobile test vectors")
    __test__ = False  # not a pytest class

    format: Literal["ssdmobile-test-vectors"]
    version: Literal[1]
    decode: list[DecodeCase] = []
    nms: list[NmsCase] = []
    match: list[MatchCase] = []
    drift: list[DriftCase] = []
    preview: list[PreviewCase] = []
    latency: list[LatencyCase] = []
