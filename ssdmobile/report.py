"""The validate table: Markdown (report.md), JSON (report.json) and a chart (report.png)."""
from __future__ import annotations

import os
from pathlib import Path

from .fileio import atomic_write, prepare_out_dir, write_json_atomic
from .table import format_table
from .validate import Row, ValidateResult

HEADERS = ["target", "precision", "file size", "AP", "ΔAP", "max abs diff (raw)", "detections match",
           "XNNPACK delegated", "latency median", "latency p90", "speed-up vs eager", "status"]


def _f(v, fmt: str, none: str = "-") -> str:
    return none if v is None else format(v, fmt)


def _delegated(row: Row) -> str:
    d = row.delegation
    if not d:
        return "-"
    total = d["delegated_ops"] + d["non_delegated_ops"]
    return f"all {total} ops" if not d["non_delegated_ops"] else f"{d['delegated_ops']}/{total} ops"


def table_rows(result: ValidateResult) -> list[list[str]]:
    eager = result.eager
    rows = [
        ["eager (float)", "fp32", "-", _f(eager.ap, ".4f"), "reference", "reference", "reference", "-",
         f"{eager.latency.median_ms:.1f} ms", f"{eager.latency.p90_ms:.1f} ms", "1.00x", "reference (core only)"],
        ["eager (float) +nms", "fp32", "-", _f(eager.ap, ".4f"), "reference", "-", "reference", "-",
         f"{eager.latency_nms.median_ms:.1f} ms", f"{eager.latency_nms.p90_ms:.1f} ms", "1.00x",
         "reference (core + decode + NMS)"],
    ]
    for r in result.rows:
        rows.append([
            r.target + (" +nms" if r.nms else ""), r.precision + (f" ({r.variant})" if r.variant else ""),
            _f(r.size_mb, ".1f") + (" MB" if r.size_mb else ""),
            _f(r.ap, ".4f"), _f(r.delta_ap, "+.4f"), _f(r.max_abs_diff, ".1e"), r.det_match or "-", _delegated(r),
            _f(r.latency_median_ms, ".1f") + (" ms" if r.latency_median_ms else ""),
            _f(r.latency_p90_ms, ".1f") + (" ms" if r.latency_p90_ms else ""),
            _f(r.speedup, ".2f") + ("x" if r.speedup else ""), r.status])
    return rows


def markdown(result: ValidateResult) -> str:
    meta = result.meta
    m = meta["machine"]
    lines = [
        f"# ssdmobile validate: {meta['model']}",
        "",
        f"{meta['images']} images, AP over {', '.join(meta['classes'])}; latency: batch 1, {meta['threads']} threads, "
        f"median and p90 of {meta['runs']} runs after {meta['warmup']} warm-up runs, on {m['cpu']} "
        f"({m['cores']} cores visible, load average {meta.get('load_average', ['?'])[0]} at the end), "
        f"{m['system']}, torch {m['torch']}. Every artifact runs in its own runtime "
        "on the same preprocessed real images as the eager model. Raw-output difference and matching detections "
        f"are against the float eager model (match: same label, score within {meta['score_tol']}, "
        f"box within {meta['box_tol_px']} px). Speed-up of +nms rows is against eager core + decode + NMS.",
        "",
        format_table(HEADERS, table_rows(result), markdown=True),
        "",
    ]
    if any(r.target == "coreml" and "verified" in r.notes for r in result.rows):
        lines += ["Core ML: converted and its spec checked here (inputs, outputs, metadata, NMS parameters, "
                  "precision), **not run**: Core ML's `predict` exists only on macOS. Its AP, drift and latency are "
                  "measured by running `ssdmobile validate` on a Mac.", ""]
    if any(r.delegation for r in result.rows):
        lines += ["XNNPACK delegated: of an ExecuTorch program's ops, how many the XNNPACK partitioner took "
                  "(ExecuTorch devtools' delegation info, recorded in the sidecar); the rest run on "
                  "ExecuTorch's portable kernels.", ""]
    if meta.get("max_drift") is not None:
        lines += [f"Gate: |ΔAP| ≤ {meta['max_drift']} (`--max-drift`).", ""]
    lines += [f"Finished in {meta['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def chart(result: ValidateResult, path: Path) -> Path:
    import matplotlib  # lazy: heavy (matplotlib), only when a chart is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: heavy (matplotlib), only when a chart is drawn

    measured = [r for r in result.rows if r.ap is not None]
    eager, meta = result.eager, result.meta
    labels = ["eager", "eager +nms"] + [r.label for r in measured]
    med = [eager.latency.median_ms, eager.latency_nms.median_ms] + [r.latency_median_ms for r in measured]
    p90 = [eager.latency.p90_ms, eager.latency_nms.p90_ms] + [r.latency_p90_ms for r in measured]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 0.45 * len(labels) + 1.8))
    y = range(len(labels))
    colors = ["#888888", "#888888"] + ["#3b7dd8" if not r.nms else "#7a4fc9" for r in measured]
    ax1.barh(list(y), med, xerr=[[0] * len(med), [b - a for a, b in zip(med, p90)]], color=colors, capsize=3)
    ax1.set_yticks(list(y), labels)
    ax1.invert_yaxis()
    ax1.set_xlabel(f"latency ms (median, whisker to p90), {meta['threads']} threads")
    for i, v in enumerate(med):
        ax1.text(v, i, f" {v:.1f}", va="center", fontsize=8)
    dap = [0.0, 0.0] + [r.delta_ap for r in measured]
    ax2.barh(list(y), dap, color=["#888888"] * 2 + ["#d84b3b" if (meta["max_drift"] is not None and
                                                                  abs(d) > meta["max_drift"]) else "#2e9e5b"
                                                      for d in dap[2:]])
    ax2.axvline(0, color="black", lw=0.8)
    if meta["max_drift"] is not None:
        for s in (-1, 1):
            ax2.axvline(s * meta["max_drift"], color="#d84b3b", ls="--", lw=0.8)
    ax2.set_yticks(list(y), [""] * len(labels))
    ax2.invert_yaxis()
    ax2.set_xlabel(f"ΔAP vs float eager (AP {eager.ap:.4f})")
    lim = max([abs(d) for d in dap] + [meta["max_drift"] or 0.002]) * 1.3
    ax2.set_xlim(-lim, lim)
    for i, v in enumerate(dap[2:], start=2):
        ax2.text(v, i, f" {v:+.4f}", va="center", fontsize=8)
    fig.suptitle(f"{meta['model']}: {meta['images']} images"
                 + ("; Core ML not run here (macOS only)" if any(r.target == "coreml" for r in result.rows) else ""))
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110))
    finally:
        plt.close(fig)


def write_report(result: ValidateResult, out_dir: str | os.PathLike) -> dict[str, Path]:
    out = prepare_out_dir(out_dir)
    md = out / "report.md"
    atomic_write(md, lambda tmp: Path(tmp).write_text(markdown(result)))
    js = write_json_atomic(out / "report.json", result.to_dict())
    png = chart(result, out / "report.png")
    return {"md": md, "json": js, "png": png}
