"""Typed configs: a YAML file plus `a.b=c` overrides, checked against a dataclass schema (OmegaConf
structured configs), every mistake reported in one line; and `_component_` nodes that name the
class or function to build, with its arguments beside it (torchtune's recipe convention).

    cfg = load_config(QATConfig, "recipes/qat_ssdlite_person_coco128.yaml", ["optimizer.lr=3e-5"])
    opt = instantiate(cfg.optimizer, model.parameters())

One override syntax for every command that takes them (`ssdmobile train`, `ssdmobile golden`):
dotted keys, values parsed as YAML (`steps=2`, `hflip=false`, `export=[onnx,executorch]`,
`box_coder.clamp=null`).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import SSDMobileError

COMPONENT = "_component_"


class ConfigError(SSDMobileError):
    """A config file or an override is malformed, names an unknown key or has a bad value."""


def _one_line(e: OmegaConfBaseException) -> str:
    """OmegaConf's messages run over several lines (key, types,
    object); keep what a user acts on."""
    msg = str(e).splitlines()[0].strip() if str(e) else type(e).__name__
    key = getattr(e, "full_key", None)
    return f"{key}: {msg}" if key and key not in msg else msg


def _read_yaml(path: str | Path) -> DictConfig:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config not found: {p}")
    try:
        text = p.read_text()
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text (YAML) file") from None
    try:
        data = OmegaConf.create(text)
    except Exception as e:  # yaml's ScannerError/ParserError and OmegaConf's own
        raise ConfigError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, DictConfig):
        raise ConfigError(f"{p}: a config is a mapping of keys to values")
    return data


def _dotlist(overrides: Sequence[str]) -> DictConfig:
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"bad override {item!r}: expected key=value (e.g. optimizer.lr=3e-5)")
    try:
        return OmegaConf.from_dotlist(list(overrides))
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad override: {_one_line(e)}") from None


def load_config(
    schema: type,
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    ignore: Sequence[str] = (),
) -> Any:
    """-> an instance of the dataclass `schema`: its defaults, then the YAML file, then the
    overrides. Unknown keys, values of the wrong type and missing required values are ConfigErrors.
    Keys in `ignore` may appear in the file and are dropped (e.g. `_recipe_`,
    read by the train command)."""
    layers = [OmegaConf.structured(schema)]
    if path is not None:
        data = _read_yaml(path)
        for key in ignore:
            data.pop(key, None)
        layers.append(data)
    layers.append(_dotlist(overrides))
    try:
        cfg = OmegaConf.merge(*layers)
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as e:
        where = f"{path}: " if path else ""
        raise ConfigError(f"{where}{_one_line(e)}") from None


def _writable(node) -> None:
    """Frozen dataclasses load read-only, node by node; the copy is ours to change."""
    OmegaConf.set_readonly(node, False)
    if isinstance(node, DictConfig):
        for key in node:
            child = node._get_node(key)
            if isinstance(child, (DictConfig, ListConfig)):
                _writable(child)


def override_dataclass(obj: Any, overrides: Sequence[str]) -> dict:
    """A (frozen, nested) dataclass instance with `a.b=c` overrides applied -> the plain dict of its
    fields, for the class's own constructor to check the values (e.g. ModelSpec.from_dict)."""
    try:
        base = OmegaConf.structured(obj)
        _writable(base)
        return OmegaConf.to_container(OmegaConf.merge(base, _dotlist(overrides)))
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad override ({', '.join(overrides)}): {_one_line(e)}") from None


def _resolve(node: Mapping, where: str):
    if not isinstance(node, Mapping) or COMPONENT not in node:
        raise ConfigError(
            f"{where}: needs a {COMPONENT} key naming what to build (e.g. torch.optim.Adam)"
        )
    dotted = str(node[COMPONENT])
    module, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(f"{where}.{COMPONENT}: cannot import {dotted!r}") from None


def check_component(node: Mapping, where: str, provided: Sequence[str] = ()) -> None:
    """Fail now, not after an hour of work, when `node` names nothing importable or passes
    arguments its component does not take. `provided`: the arguments the caller adds itself."""
    fn = _resolve(node, where)
    kwargs = {k: v for k, v in node.items() if k != COMPONENT}
    try:
        inspect.signature(fn).bind_partial(*[None] * len(provided), **kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e} ({node[COMPONENT]})") from None
    except ValueError:  # builtins without a signature: checked when built
        pass


def instantiate(node: Mapping, *args, where: str = "component", **kwargs):
    """Build `node[_component_](*args, **node's other keys, **kwargs)`. Hand-written (20 lines)
    because torchtune, whose `_component_` convention this is, is not a dependency, and Hydra's
    instantiate uses `_target_`."""
    fn = _resolve(node, where)
    config_kwargs = {k: v for k, v in node.items() if k != COMPONENT}
    try:
        inspect.signature(fn).bind(*args, **config_kwargs, **kwargs)
    except TypeError as e:
        raise ConfigError(f"{where}: {e} ({node[COMPONENT]})") from None
    except ValueError:  # builtins without a signature
        pass
    return fn(*args, **config_kwargs, **kwargs)


def as_dict(obj: Any) -> dict:
    """A config dataclass as plain JSON-able data (for checkpoints and sidecars)."""
    return dataclasses.asdict(obj)
