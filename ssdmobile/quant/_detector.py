"""Build the float detector that fusion, quantization and training start from.

The registry (ssdmobile.models.create_model) is the one way to build a model. Until the person
detector's registry entry exists, `ssdlite_mobilenet_v2_person` is built here from an imported
TF checkpoint (ssdmobile.tf_import writes `<stem>.pth` + `<stem>.json`), importing the shared frozen
graph on first use."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import UnknownModelError, WeightsError

PERSON = "ssdlite_mobilenet_v2_person"
_SHARED_GRAPH = Path(__file__).resolve().parents[2].parent / "shared" / "models" / PERSON / "frozen_inference_graph.pb"


def _person_from_checkpoint(pth: Path):
    import torch

    from ..detector import Detector
    from ..models.ssdlite_mobilenet_v2 import SSDLiteMobileNetV2Core, tf_ssd_anchors
    from ..models.weights import load_into, load_state_dict_file
    from ..spec import ModelSpec

    meta_path = pth.with_suffix(".json")
    if not meta_path.is_file():
        raise WeightsError(f"{pth}: its metadata {meta_path.name} (written by `ssdmobile import-tf`) is missing")
    meta = json.loads(meta_path.read_text())
    spec = ModelSpec.from_dict({**meta["spec"], "name": PERSON})
    det = Detector(SSDLiteMobileNetV2Core(meta["num_classes"]), tf_ssd_anchors(), spec)
    load_into(det, load_state_dict_file(pth), str(pth))
    det.weights_path = str(pth)
    return det.eval()


def _person_checkpoint(weights) -> Path:
    if weights not in (None, "default"):
        return Path(weights)
    from ..models.weights import cache_dir

    cached = cache_dir() / "ssdmobile_person" / "frozen_inference_graph.pth"
    if not cached.is_file():
        if not _SHARED_GRAPH.is_file():
            raise WeightsError(f"no weights for {PERSON}: pass --weights PATH (a checkpoint from "
                               f"`ssdmobile import-tf`)")
        from ..tf_import import import_tf_graph

        import_tf_graph(_SHARED_GRAPH, cached.parent)
    return cached


def load_detector(name: str, weights: str | os.PathLike | None = "default"):
    """A float eager Detector in eval mode. weights: "default", a checkpoint path, or None (random)."""
    from ..models import create_model

    try:
        return create_model(name, weights=weights)
    except UnknownModelError:
        if name != PERSON:
            raise
    return _person_from_checkpoint(_person_checkpoint(weights))
