"""A written artifact, loaded in its own runtime and evaluated exactly as the eager model is."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ArtifactError
from ..evaluate import EvalResult, coco_eval, predict_dataset
from ..runtime import Predictor, Runner, check_sidecar
from ..sidecar import load_sidecar
from . import target_for_path


def load_runner(artifact: str | os.PathLike, threads: int | None = None) -> Runner:
    """The artifact loaded in its own runtime, after checking that the file is what its suffix says
    and that its sidecar describes this very file."""
    path = Path(artifact)
    if not path.exists():
        raise ArtifactError(f"artifact not found: {path}")
    t = target_for_path(path)
    t.check_file(path)  # content vs extension, before trusting anything else
    sidecar = load_sidecar(path)
    check_sidecar(path, sidecar, t.name)
    return t.load(path, sidecar, threads)


def load_predictor(artifact: str | os.PathLike, threads: int | None = None) -> Predictor:
    return Predictor(load_runner(artifact, threads))


def evaluate_artifact(
    artifact: str | os.PathLike,
    dataset,
    classes=None,
    threads: int | None = None,
    progress: bool = True,
) -> EvalResult:
    """COCO AP of an artifact run in its own runtime, computed exactly as for the eager model
    (ssdmobile.evaluate on the same dataset, same preprocessing code)."""
    predictor = load_predictor(artifact, threads)
    predictions = predict_dataset(
        predictor, dataset, batch_size=1, progress=progress, desc=Path(artifact).name
    )
    return coco_eval(dataset, predictions, predictor.spec.class_names, classes=classes)
