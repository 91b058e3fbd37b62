"""Plain-text and Markdown tables for the CLI and reports."""

from __future__ import annotations


def format_table(headers: list[str], rows: list[list], markdown: bool = False) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    fmt = lambda r: (  # noqa: E731
        ("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
        if markdown
        else "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
    )
    sep = (
        ("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        if markdown
        else "  ".join("-" * w for w in widths)
    )
    return "\n".join([fmt(cells[0]), sep] + [fmt(r) for r in cells[1:]])


def print_table(headers: list[str], rows: list[list], markdown: bool = False) -> None:
    print(format_table(headers, rows, markdown))
