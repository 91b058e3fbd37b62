"""Import TensorFlow Object Detection API SSDLite-MobileNetV2 frozen graphs
(`frozen_inference_graph.pb`) into `SSDLiteMobileNetV2Core` without TensorFlow installed.

graphdef.py reads the protobuf without TensorFlow, mapping.py maps the graph's constants to the
torch model's state_dict, metadata.py reads the settings the graph holds besides weights, and
fetch.py downloads the person detector's graph; this module writes the imported files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from ...fileio import atomic_write, atomic_write_bytes, sha256_file
from .fetch import PERSON_GRAPH_SHA256, fetch_person_graph
from .graphdef import TFImportError, read_graph_def
from .mapping import graph_to_state_dict
from .metadata import PERSON_CLASS_NAMES

__all__ = [
    "PERSON_CLASS_NAMES",
    "PERSON_GRAPH_SHA256",
    "TFImportError",
    "fetch_person_graph",
    "graph_to_state_dict",
    "import_tf_graph",
    "read_graph_def",
]


def import_tf_graph(
    pb_path: str | os.PathLike, out_dir: str | os.PathLike, class_names=None
) -> Path:
    """Frozen graph -> `<out_dir>/<stem>.pth` (state_dict, torch.load(weights_only=True)) and
    `<out_dir>/<stem>.json` (metadata). Returns the .pth path. Both files are written under a
    temporary name and renamed, the checkpoint last, so a present .pth always has its metadata."""
    pb_path, out_dir = Path(pb_path), Path(out_dir)
    state, meta = graph_to_state_dict(read_graph_def(pb_path), class_names=class_names)
    meta["source"] = {"file": pb_path.name, "sha256": sha256_file(pb_path)}
    out_dir.mkdir(parents=True, exist_ok=True)
    pth, js = out_dir / f"{pb_path.stem}.pth", out_dir / f"{pb_path.stem}.json"
    atomic_write(js, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2) + "\n"))
    atomic_write_bytes(pth, lambda buffer: torch.save(state, buffer))
    return pth
