"""One registry of detectors: every model is a decorated builder (timm style).

create_model(name, weights=...) -> Detector
  weights=None       random initialization
  weights="default"  the registered checkpoint: local cache, else its fetcher/URL
  weights=PATH       a checkpoint file (state_dict, loaded with weights_only=True)

An entry knows what `ssdmobile models` lists without building the model: input size, parameter
count (checked against the built model by the tests), and its Weights with their metrics.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnknownModelError
from ..fileio import sha256_file
from .weights import LoadedWeights, Weights, load_into, load_state_dict_file, resolve_weights


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable  # (**kwargs) -> Detector with random weights
    input_size: tuple[int, int]
    num_params: int  # of the default configuration's core
    weights: Weights | None
    description: str

    @property
    def reference(self) -> str:
        return self.weights.reference() if self.weights else "-"


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str, *, input_size, num_params: int, weights: Weights | None = None, description=""
):
    def deco(fn):
        _REGISTRY[name] = ModelEntry(name, fn, tuple(input_size), num_params, weights, description)
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
            raise UnknownModelError(
                f"model {name!r} has no registered weights; pass a checkpoint path"
            )
        path, meta = resolve_weights(entry.weights), entry.weights
    else:
        # the user's own checkpoint (a fine-tune, say): the registered metadata does not describe it
        path, meta = resolve_weights(entry.weights or Weights(Path(weights).name), weights), None
    load_into(model.core, load_state_dict_file(path), str(path))
    model.weights = LoadedWeights(str(path), sha256_file(path), meta)
    return model.eval()
