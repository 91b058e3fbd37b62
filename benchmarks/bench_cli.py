"""How fast the `ssdmobile` command answers when it has nothing heavy to do: --version, --help, a
command's --help and argument mistakes (the README promises under 0.5 s). Each invocation is a
fresh process, timed wall-clock; invocations run round-robin in a shuffled order, so load from
other processes hits them alike, beside a bare `python -c pass` (the interpreter's own start).

    python benchmarks/bench_cli.py [--runs 20] [--results docs/results/cli.json]
"""

import argparse
import random
import statistics
import subprocess
import sys
import time

from ssdmobile.results import Table, write_results
from ssdmobile.table import print_table

INVOCATIONS = [
    [],  # python -c pass
    ["--version"],
    ["--help"],
    ["export", "--help"],
    ["validate", "--help"],
    ["export", "--target", "bogus"],
    ["validate", "--runs", "0"],
    ["eval", "--data", "/nonexistent"],
]


def command(argv: list[str]) -> list[str]:
    return (
        [sys.executable, "-c", "pass"] if not argv else [sys.executable, "-m", "ssdmobile", *argv]
    )


def label(argv: list[str]) -> str:
    return "python -c pass (interpreter start)" if not argv else "ssdmobile " + " ".join(argv)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20, help="timed runs of each invocation")
    ap.add_argument("--results", help="write the results JSON here (docs/results/NAME.json)")
    args = ap.parse_args()
    times = {i: [] for i in range(len(INVOCATIONS))}
    codes = {}
    for _ in range(args.runs):
        order = list(times)
        random.shuffle(order)
        for i in order:
            t0 = time.perf_counter()
            proc = subprocess.run(command(INVOCATIONS[i]), capture_output=True, text=True)
            times[i].append(time.perf_counter() - t0)
            codes[i] = proc.returncode
    headers = ["invocation", "exit code", "median", "p90", "vs interpreter start"]
    base = statistics.median(times[0])
    rows = []
    for i, argv in enumerate(INVOCATIONS):
        t = sorted(times[i])
        med = statistics.median(t)
        rows.append(
            [
                label(argv),
                str(codes[i]),
                f"{med:.3f} s",
                f"{t[int(round(0.9 * (len(t) - 1)))]:.3f} s",
                f"+{med - base:.3f} s" if i else "-",
            ]
        )
    print_table(headers, rows)
    if args.results:
        write_results(
            args.results,
            [
                Table(
                    title=f"wall time of a fresh process, {args.runs} runs each",
                    headers=headers,
                    rows=rows,
                )
            ],
            threads=None,
            images=None,
            notes=[
                "Each run is a new process (the interpreter's start included); invocations "
                "interleaved in a shuffled order.",
                "tests/test_cli_fast.py checks the cause in every test run: none of these imports "
                "torch, numpy or a runtime.",
            ],
        )


if __name__ == "__main__":
    main()
