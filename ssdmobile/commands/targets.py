"""`ssdmobile targets`: the target table, as every command reads it."""

from ..table import print_table
from ..targets import TARGETS

NAME = "targets"
HELP = (
    "list export targets: artifact files, precisions, how int8 is made, how NMS goes in the "
    "graph, runs here?"
)


def add_arguments(p):
    p.add_argument(
        "--markdown", action="store_true", help="print a Markdown table (as in the README)"
    )


def targets_table() -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of the target table, as `ssdmobile targets` and the README show it."""
    rows = [
        [
            t.name,
            " ".join(t.suffixes),
            ", ".join(t.precisions) + f" (default {t.default_precision})",
            _int8(t),
            t.nms,
            _runs_here(t),
        ]
        for t in TARGETS.values()
    ]
    return ["target", "files", "precisions", "int8", "NMS in the graph", "runs here"], rows


def run(args):
    print_table(*targets_table(), markdown=args.markdown)


def _runs_here(t) -> str:
    if t.runs_here():
        return "yes"
    if t.name == "coreml":  # Core ML predicts on macOS only; its ML Program is evaluated here
        return "ML Program reference evaluator (AP, drift); latency on a Mac or device"
    return "no: files are verified instead"


def _int8(t) -> str:
    if not t.int8:
        return "-"
    return t.int8.description + (
        f"; formats: {', '.join(t.int8.formats)}" if t.int8.formats else ""
    )
