"""Argument types shared by every command: each value is checked when the command line is parsed,
before any model loads, and a bad one is one line (`ssdmobile CMD: error: argument --x: ...`).

Output paths are proven writable by creating them (os.access says yes to root on read-only
mounts); what a failed run created and left empty is removed again by the CLI
(ssdmobile.fileio.remove_created_dirs)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..errors import SSDMobileError
from ..fileio import prepare_out_dir
from ..quant import OBSERVERS
from ..targets import TARGETS


def count(minimum: int = 1):
    """An integer >= minimum (image counts, runs, threads, batch sizes...)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number >= {minimum}, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = f"count>={minimum}"
    return parse


def number(minimum: float = 0.0, strict: bool = False):
    """A finite float >= minimum (> minimum with strict)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise argparse.ArgumentTypeError(
                f"must be a finite number {'>' if strict else '>='} {minimum:g}, got {text!r}"
            )
        return value

    parse.__name__ = "number"
    return parse


def int8_formats_help() -> str:
    """The int8 formats of the targets that have several, as the target table lists them."""
    return "; ".join(
        f"{t.name}: "
        + ", ".join(
            f"{k}{' (default)' if k == t.int8.default_format else ''}" for k in t.int8.formats
        )
        for t in TARGETS.values()
        if t.int8 and t.int8.formats
    )


def existing_dir(text: str) -> Path:
    p = Path(text)
    if not p.is_dir():
        raise argparse.ArgumentTypeError(
            f"directory not found: {text}" if not p.exists() else f"not a directory: {text}"
        )
    return p


def existing_file(text: str) -> Path:
    p = Path(text)
    if not p.is_file():
        raise argparse.ArgumentTypeError(
            f"file not found: {text}" if not p.exists() else f"not a file: {text}"
        )
    return p


def existing_path(text: str) -> Path:
    """A file or a directory artifact (.mlpackage)."""
    p = Path(text)
    if not p.exists():
        raise argparse.ArgumentTypeError(f"not found: {text}")
    return p


def output_dir(text: str) -> Path:
    """A directory the command writes into: created now and proven writable."""
    try:
        return prepare_out_dir(text)
    except SSDMobileError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def output_file(text: str) -> Path:
    """A file the command writes: not a directory, in a directory
    created now and proven writable."""
    p = Path(text)
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; give a file name")
    if p.name in ("", ".", ".."):
        raise argparse.ArgumentTypeError(f"{text!r} is not a file name")
    output_dir(str(p.parent))
    return p


# -- arguments several commands take, declared once ----------------------------------------------

MODEL_HELP = "registered model name (see `ssdmobile models`)"
WEIGHTS_HELP = "checkpoint path (default: the model's registered weights)"


def add_model(p, *, default: str | None = None, required: bool = False, help: str = MODEL_HELP):
    p.add_argument("--model", default=default, required=required, help=help)


def add_weights(p, help: str = WEIGHTS_HELP):
    p.add_argument("--weights", help=help)


def add_threads(p):
    p.add_argument(
        "--threads",
        type=count(1),
        default=2,
        help="threads of every runtime and of eager (default 2)",
    )


def add_classes(p):
    p.add_argument(
        "--classes", nargs="+", help="class names to evaluate (default: all the model predicts)"
    )


def add_max_images(p):
    p.add_argument("--max-images", type=count(1), help="only the first N images (sorted by file)")


def add_no_progress(p):
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_observer(p):
    p.add_argument(
        "--observer",
        default=OBSERVERS[0],
        choices=OBSERVERS,
        help="int8 activation range: histogram (L2-optimal clipping) or minmax "
        f"(default {OBSERVERS[0]})",
    )


def add_int8_format(p):
    p.add_argument(
        "--int8-format",
        help=f"int8 file format, for targets that offer several ({int8_formats_help()}; "
        "see `ssdmobile targets`)",
    )
