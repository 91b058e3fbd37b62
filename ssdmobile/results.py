"""Measurements as data. Every benchmark, and `ssdmobile validate --results FILE`, can write what it
measured as a results file: the tables as they are shown, the machine they ran on (CPU model, ISA
flags, cores, threads, load average, package versions), the date and the exact command. The
Markdown tables in README.md and docs/ are rendered from those files, never typed by hand:

    <!-- results: main_job.json -->
    (rendered: the command, the machine, the tables)
    <!-- /results -->

`ssdmobile docs` rewrites every such block from docs/results/; `ssdmobile docs --check` (and a
test) exits 1 where a block and its file disagree.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import re
import shlex
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import SSDMobileError
from .fileio import write_json_atomic
from .table import format_table

FORMAT = "ssdmobile-results"
VERSION = 1
REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
BLOCK = re.compile(r"(<!-- results: (?P<name>[\w.-]+) -->\n)(?P<body>.*?)(<!-- /results -->)", re.S)
# the CPU features the runtimes choose kernels by (XNNPACK, ONNX Runtime, oneDNN)
ISA_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "asimd",
    "asimddp",
    "i8mm",
    "sve",
)
PACKAGES = ("torch", "torchvision", "executorch", "torchao", "onnxruntime", "onnx", "coremltools")


class ResultsError(SSDMobileError):
    pass


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Table(_Model):
    title: str
    headers: list[str]
    rows: list[list[str]]
    """Cells as the table shows them (numbers already formatted)."""


class Machine(_Model):
    cpu: str
    isa_flags: list[str]
    cores: int
    threads: int | None
    """Threads the measurement asked of its runtimes; null where it is not one number."""
    load_average: list[float]
    """1, 5 and 15 minutes, when the results were written."""
    system: str
    python: str
    packages: dict[str, str | None]


class Results(_Model):
    format: Literal["ssdmobile-results"]
    version: Literal[1]
    name: str
    command: str
    date: str
    """When the results were written, ISO 8601 UTC."""
    machine: Machine
    images: int | None = Field(ge=1)
    """Real images measured on; null for a measurement that is not over images."""
    tables: list[Table] = Field(min_length=1)
    notes: list[str]
    """What a reader must know to read the numbers (randomized weights: agreement, not AP)."""


def _cpu() -> tuple[str, list[str]]:
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and cpu in ("", platform.machine()):
                    cpu = value.strip()
                elif key.strip() in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:  # not Linux: the model name platform gives, no flags
        pass
    return cpu, [f for f in ISA_FLAGS if f in flags]


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine(threads: int | None) -> Machine:
    cpu, flags = _cpu()
    return Machine(
        cpu=cpu,
        isa_flags=flags,
        cores=os.cpu_count() or 0,
        threads=threads,
        load_average=[round(x, 2) for x in os.getloadavg()],
        system=platform.system(),
        python=platform.python_version(),
        packages={p: _version(p) for p in PACKAGES},
    )


def command_line(argv: list[str] | None = None) -> str:
    """The command as a user types it: `ssdmobile ...` or `python benchmarks/x.py ...`."""
    argv = sys.argv if argv is None else argv
    head = Path(argv[0]).name
    prog = (
        "ssdmobile"
        if head in ("ssdmobile", "__main__.py")
        else f"python {os.path.relpath(argv[0])}"
    )
    return " ".join([prog, *map(shlex.quote, argv[1:])])


def write_results(
    path: str | os.PathLike,
    tables: list[Table],
    *,
    threads: int | None,
    images: int | None,
    notes: list[str] = (),
    command: str | None = None,
) -> Path:
    """The results file of one run (atomically); its name (without .json) names it in the docs."""
    path = Path(path)
    results = Results(
        format=FORMAT,
        version=VERSION,
        name=path.stem,
        command=command or command_line(),
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        machine=machine(threads),
        images=images,
        tables=tables,
        notes=list(notes),
    )
    return write_json_atomic(path, results.model_dump(mode="json"))


def load_results(path: str | os.PathLike) -> Results:
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"results file not found: {path}")
    try:
        return Results.model_validate_json(path.read_text())
    except ValidationError as e:
        x = e.errors(include_url=False)[0]
        raise ResultsError(
            f"{path}: not a results file: {'.'.join(map(str, x['loc']))}: {x['msg']}"
        ) from None


def render(results: Results) -> str:
    """A results file as Markdown: the command and the machine, then each table."""
    m = results.machine
    versions = ", ".join(f"{k} {v}" for k, v in m.packages.items() if v)
    over = f" on {results.images} real images" if results.images else ""
    lines = [
        f"Measured{over} with `{results.command}` on {results.date[:10]}: {m.cpu} "
        f"({', '.join(m.isa_flags) or 'no listed ISA flags'}), {m.cores} cores"
        + (f", {m.threads} threads" if m.threads else "")
        + f", load average {m.load_average[0]:g}; {m.system}, Python {m.python}, {versions}.",
        "",
    ]
    for t in results.tables:
        lines += [f"**{t.title}**", "", format_table(t.headers, t.rows, markdown=True), ""]
    lines += [f"- {n}" for n in results.notes] + ([""] if results.notes else [])
    return "\n".join(lines)


def rendered_docs(docs: Path = DOCS) -> dict[Path, str]:
    """README.md and every docs/*.md as they read with each results block rendered from its file."""
    out = {}
    for md in [docs.parent / "README.md", *sorted(docs.glob("*.md"))]:
        text = md.read_text()

        def block(m: re.Match, md=md) -> str:
            results = load_results(docs / "results" / m["name"])
            return m.group(1) + render(results) + m.group(4)

        try:
            out[md] = BLOCK.sub(block, text)
        except ResultsError as e:
            raise ResultsError(f"{md.name}: {e}") from None
    return out


def stale_docs(docs: Path = DOCS) -> list[Path]:
    return [p for p, text in rendered_docs(docs).items() if p.read_text() != text]
