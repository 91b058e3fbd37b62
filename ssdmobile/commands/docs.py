"""`ssdmobile docs`: the tables of README.md and docs/ rendered from data (a source checkout's)."""

import re
import sys

from ..table import format_table
from .targets import targets_table

NAME = "docs"
HELP = (
    "render the README's and docs/' tables from their data: results files (docs/results/*.json) "
    "and the target table"
)
TARGETS_BLOCK = re.compile(
    r"(<!-- targets: ssdmobile targets --markdown -->\n)(.*?)(<!-- /targets -->)", re.S
)


def add_arguments(p):
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 where a table differs from its data",
    )


def rendered() -> dict:
    """Every page as it reads with its tables rendered from their data."""
    from ..results import rendered_docs

    table = format_table(*targets_table(), markdown=True)
    out = {}
    for path, text in rendered_docs().items():
        out[path] = TARGETS_BLOCK.sub(lambda m: m.group(1) + table + "\n" + m.group(3), text)
    return out


def run(args):
    pages = rendered()  # a missing or broken results file: ResultsError, one line
    stale = [p for p, text in pages.items() if p.read_text() != text]
    if args.check:
        if stale:
            names = ", ".join(p.name for p in stale)
            print(f"stale: {names}: run `ssdmobile docs` and commit them", file=sys.stderr)
            return 1
        print("every table in README.md and docs/ is its data's")
        return 0
    for path in stale:
        path.write_text(pages[path])
        print(f"rendered {path}")
    return 0
