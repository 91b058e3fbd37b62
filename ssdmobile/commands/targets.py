"""`ssdmobile targets`: the target table, as every command reads it."""
from ..table import print_table
from ..targets import TARGETS

NAME = "targets"
HELP = "list export targets: artifact files, precisions, how int8 is made, how NMS goes in the graph, runs here?"


def add_arguments(p):
    p.add_argument("--markdown", action="store_true", help="print a Markdown table (as in the README)")


def run(args):
    rows = [[t.name, " ".join(t.suffixes), ", ".join(t.precisions) + f" (default {t.default_precision})",
             t.int8.description if t.int8 else "-", t.nms,
             "yes" if t.runs_here() else "no: files are verified instead"]
            for t in TARGETS.values()]
    print_table(["target", "files", "precisions", "int8", "NMS in the graph", "runs here"], rows, markdown=args.markdown)
