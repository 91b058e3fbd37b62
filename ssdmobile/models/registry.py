"""One registry of detectors: every model is a decorated builder (timm style).

create_model(name, weights=...) -> Detector
  weights=None       random initialization
  weights="default"  the registered checkpoint: local cache, else its fetcher/URL
  weights=PATH       a checkpoint file (state_dict, loaded with weights_only=True)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import UnknownModelError
from .weights import WeightsSource, load_into, load_state_dict_file, resolve_weights


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable  # (**kwargs) -> Detector with random weights
    input_size: tuple[int, int]
    weights: WeightsSource | None
    reference_ap: str  # e.g. "COCO val2017 mAP 21.3 (torchvision)"
    description: str


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, input_size, weights=None, reference_ap="", description=""):
    def deco(fn):
        _REGISTRY[name] = ModelEntry(name, fn, tuple(input_size), weights, reference_ap, description)
        return fn
    return deco


def list_models() -> list[ModelEntry]:
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise UnknownModelError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_model(name: str, weights: str | os.PathLike | None = None, **kwargs):
    entry = get_entry(name)
    model = entry.builder(**kwargs)
    if weights is None:
        return model.eval()
    if str(weights) == "default":
        if entry.weights is None:
            raise UnknownModelError(f"model {name!r} has no registered weights; pass a checkpoint path")
        path = resolve_weights(entry.weights)
    else:
        path = resolve_weights(entry.weights or WeightsSource(Path(weights).name), weights)
    load_into(model, load_state_dict_file(path), str(path))
    model.weights_path = str(path)
    return model.eval()
