"""`ssdmobile` command line. Thin: parse, call the library, print.

Each subcommand is a module in ssdmobile/commands/ with `NAME`, `HELP`, `add_arguments(parser)` and
`run(args) -> int | None`; they are discovered, so adding a command touches no other file.
User mistakes (SSDMobileError) become one line on stderr and exit code 2; Ctrl-C exits 130.
Library progress messages go through `logging` ("ssdmobile.*" loggers) to stderr; third-party
warnings and log lines stay off the terminal unless --verbose.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import signal
import sys
import threading
import warnings

from . import __version__, fileio
from .errors import SSDMobileError


def setup_logging(verbose: bool = False) -> None:
    """One logging setup for every command: ssdmobile's messages as plain lines on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("ssdmobile").setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        # coremltools, torch and executorch print version warnings and proxy messages on import
        warnings.filterwarnings("ignore")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        # torch re-applies its own log levels whenever more of it loads (torchao, executorch): its
        # environment setting is what it re-applies ("-all": every torch log at ERROR)
        os.environ.setdefault("TORCH_LOGS", "-all")
        for name in ("coremltools", "torch", "executorch", "torchao", "onnxruntime", "onnxscript"):
            logging.getLogger(name).setLevel(logging.ERROR)


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a usage mistake said in one line (not the usage block and then the error)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from . import commands  # lazy: the command modules import the whole library (torch and friends)

    parser = OneLineParser(
        prog="ssdmobile",
        description=(
            "SSD detectors from PyTorch to phones: export, quantize, and measure every artifact "
            "against its float model."
        ),
    )
    parser.add_argument("--version", action="version", version=f"ssdmobile {__version__}")
    parser.add_argument(
        "--verbose", action="store_true", help="show debug messages and third-party warnings"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):  # shared helpers, not commands
            continue
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


class _Interrupts:
    """Remembers a Ctrl-C even when the KeyboardInterrupt it raised was swallowed: some third-party
    imports wrap optional imports in a bare `except:` and carry on, and a Ctrl-C landing there would
    otherwise be lost (the command would go on working), or would leave a module half-imported so
    that something unrelated fails next (seen in CI: numpy.linalg interrupted mid-import, then a
    RecursionError in numpy's lazy `__getattr__`). After a Ctrl-C, any failure is the interrupt."""

    seen = False

    @classmethod
    def handler(cls, signum, frame):
        cls.seen = True
        raise KeyboardInterrupt

    @classmethod
    def check(cls) -> None:
        if cls.seen:
            raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    code = 1
    _Interrupts.seen = False
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, _Interrupts.handler)
    try:
        verbose = "--verbose" in argv
        setup_logging(verbose)
        parser = build_parser()
        _Interrupts.check()
        setup_logging(verbose)  # again: importing the library (torch) resets some loggers' levels
        try:
            args = parser.parse_args(argv)
        except (
            SystemExit
        ) as e:  # --help, --version (0) or a usage error (2, already said in one line)
            code = e.code if isinstance(e.code, int) else 2
            return code
        try:
            code = int(args._run(args) or 0)
            _Interrupts.check()
        except (SSDMobileError, OSError) as e:
            _Interrupts.check()
            # a write the machine refused (full disk, read-only, permission) outside ssdmobile's
            # atomic writers, which already say it naming the file: the same one line
            message = e if isinstance(e, SSDMobileError) else fileio.write_fault(e, None)
            if message is None:
                raise
            print(f"ssdmobile {args.command}: error: {message}", file=sys.stderr)
            code = 2
        return code
    except Exception:
        if not _Interrupts.seen:
            raise
        # what broke is the Ctrl-C's doing (see _Interrupts)
        print("ssdmobile: interrupted", file=sys.stderr)
        code = 130
        return code
    except KeyboardInterrupt:
        print("ssdmobile: interrupted", file=sys.stderr)
        code = 130
        return code
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        # a failed run leaves no empty output folders behind; a successful one keeps what it made
        fileio.remove_created_dirs() if code else fileio.forget_created_dirs()


if __name__ == "__main__":
    sys.exit(main())
