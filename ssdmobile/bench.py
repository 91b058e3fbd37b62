"""Latency measurement: warm-up, repeated timed runs, median and
p90, threads and machine recorded."""

from __future__ import annotations

import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch


@dataclass
class Timing:
    median_ms: float
    p90_ms: float
    runs: int
    threads: int

    def to_dict(self) -> dict:
        return asdict(self)


def median_p90(times_ms: list[float]) -> tuple[float, float]:
    """The median (mean of the two middle values for an even count) and the p90 =
    sorted[min(n - 1, round_half_even(0.9 * (n - 1)))] of timed runs: the definition the apps'
    LatencyStats share (tests/vectors/latency.json)."""
    ts = sorted(times_ms)
    return statistics.median(ts), ts[min(len(ts) - 1, int(round(0.9 * (len(ts) - 1))))]


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu
            )
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "system": platform.system(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def measure(
    fn: Callable[[], object], runs: int = 50, warmup: int = 5, threads: int | None = None
) -> Timing:
    """Median and p90 wall time of fn() in ms. `threads` sets torch's intra-op threads (the caller
    sets a runtime's own thread option, e.g. onnxruntime's, when it builds the session)."""
    if threads is not None:
        torch.set_num_threads(threads)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return Timing(*median_p90(times), runs, threads or torch.get_num_threads())


def measure_interleaved(
    fns: dict[str, Callable[[], object]],
    runs: int = 50,
    warmup: int = 5,
    threads: int | None = None,
) -> dict[str, Timing]:
    """Like `measure` for several candidates, timed round-robin (run i of every candidate, then run
    i + 1...), so that on a shared machine a burst of load hits all of them alike and their
    ratios stay meaningful even when absolute times do not. Each round runs the candidates in a new
    order (shuffled, seeded): in a fixed order, whatever runs right after a torch eager call pays
    for OpenMP's threads spin-waiting on the cores (measured: an ExecuTorch program timed after the
    host's NMS took 16.3 ms instead of 10.3 ms, every run), and one candidate
    alone would carry it."""
    if threads is not None:
        torch.set_num_threads(threads)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    order, rng = list(fns), random.Random(0)
    for _ in range(runs):
        rng.shuffle(order)
        for name in order:
            t0 = time.perf_counter()
            fns[name]()
            times[name].append((time.perf_counter() - t0) * 1e3)
    out = {}
    for name, ts in times.items():
        out[name] = Timing(*median_p90(ts), runs, threads or torch.get_num_threads())
    return out
