"""`ssdmobile train --recipe FILE.yaml [key.sub=value ...]`: run a training recipe.

The YAML file names its recipe script (`_recipe_: qat.py`, relative to the YAML file); the script
defines `Config` (a dataclass: the keys the YAML may set, their types and defaults), `main(cfg)`
and optionally `check(cfg)`. The file and the overrides are checked against `Config` (and by
`check`) before anything runs."""

import importlib.util
import sys
from pathlib import Path

from ._args import existing_file

NAME = "train"
HELP = (
    "run a training recipe (QAT: PT2E, int8 for ExecuTorch, ONNX and TorchScript) from a YAML "
    "config; torchrun-ready"
)
RECIPE_KEY = "_recipe_"


def add_arguments(p):
    p.add_argument(
        "--recipe",
        required=True,
        type=existing_file,
        help="YAML config naming its recipe script (see recipes/)",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="override config keys, e.g. train.steps=2 optimizer.lr=3e-5 model.name=...",
    )


def load_recipe(config_path: str | Path, overrides=()):
    """-> (the recipe module, its Config instance with the YAML file and overrides applied)."""
    from omegaconf import OmegaConf

    from ..config import ConfigError, load_config

    path = Path(config_path)
    if not path.is_file():
        raise ConfigError(f"recipe config not found: {path}")
    try:
        script = OmegaConf.load(path).get(RECIPE_KEY)
    except Exception as e:  # YAML syntax: load_config says it in one line too, with the file name
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not script:
        raise ConfigError(
            f"{path}: no {RECIPE_KEY} key naming the recipe script (e.g. {RECIPE_KEY}: qat.py)"
        )
    script_path = (path.parent / str(script)).resolve()
    if not script_path.is_file():
        raise ConfigError(f"{path}: {RECIPE_KEY} {script!r} not found at {script_path}")
    spec = importlib.util.spec_from_file_location(
        f"ssdmobile_recipe_{script_path.stem}", script_path
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script runs
    spec.loader.exec_module(module)
    if not hasattr(module, "Config") or not hasattr(module, "main"):
        raise ConfigError(f"{script_path}: a recipe script defines Config and main(cfg)")
    cfg = load_config(module.Config, path, overrides, ignore=[RECIPE_KEY])
    if hasattr(module, "check"):  # the recipe's own checks of values, before any work
        module.check(cfg)
    return module, cfg


def run(args):
    module, cfg = load_recipe(args.recipe, args.overrides)
    result = module.main(cfg)
    for path in (result or {}).get("artifacts", []):
        print(f"artifact: {path}")
